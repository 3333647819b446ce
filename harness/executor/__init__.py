"""The one run executor: a config in, a complete MLflow run out (ladders, studies, benchmarks)."""

from harness.executor._executor import Executor, Placement, RunOutcome
from harness.executor._model import MLFLOW_MODEL, MODEL_ARTIFACT, log_model

__all__ = ["MLFLOW_MODEL", "MODEL_ARTIFACT", "Executor", "Placement", "RunOutcome", "log_model"]
