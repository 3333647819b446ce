"""The one run executor: a config in, a complete MLflow run out (ladders, studies, benchmarks)."""

from harness.executor._executor import Executor, Placement, RunOutcome
from harness.executor._model import MODEL_ARTIFACT, MODEL_URI_TAG, log_model, model_name

__all__ = ["MODEL_ARTIFACT", "MODEL_URI_TAG", "Executor", "Placement", "RunOutcome", "log_model", "model_name"]
