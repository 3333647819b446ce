"""Logging a trained model so that any client opens it, harness installed or not.

Two forms in every run:

- ``model.keras``: the trained network, *uncompiled* (no optimizer, schedule or
  metrics), so stock ``keras.models.load_model`` opens it in a process that never
  imports harness;
- an MLflow model named ``model``, logged through the client as an MLflow 3
  LoggedModel of the run: the UI's Models column shows it and
  ``mlflow.pyfunc.load_model("runs:/<run id>/model")`` serves it. A model of
  tensors is logged in the Keras flavour; a model of named columns (a table's raw
  rows, whose example is a DataFrame) as a pyfunc from code (``_frame_model.py``)
  that feeds each DataFrame column to the input of that name.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.tracking import RunHandle

MODEL_ARTIFACT = "model.keras"
MLFLOW_MODEL = "model"


def export_model(model: Any) -> Any:
    """The same layers and weights as an uncompiled functional model (nothing harness-specific left)."""
    import keras

    return keras.Model(model.inputs, model.outputs, name=model.name)


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("tensorflow", "keras"):
        try:
            out.append(f"{package}=={version(package)}")
        except PackageNotFoundError:  # tensorflow-cpu or a nightly: let MLflow say nothing rather than lie
            continue
    return out


def _signature(model: Any, example: np.ndarray) -> Any:
    """Input and output tensor specs from the model's own shapes (no predict call: it would retrace)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    outputs = model.outputs[0].shape
    return ModelSignature(
        inputs=Schema([TensorSpec(example.dtype, (-1, *example.shape[1:]))]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, *outputs[1:]))]),
    )


def _save_frame_model(keras_path: Path, local: Path, meta: Any, model: Any, example: Any) -> None:
    """A pyfunc from code around ``model.keras``: DataFrames of raw rows in, one column per output out."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    outputs = model.outputs[0].shape[-1]
    names = ["probability"] if outputs == 1 else [f"output_{i}" for i in range(outputs)]
    import pandas as pd

    signature = infer_signature(example, pd.DataFrame(np.zeros((len(example), outputs), np.float32), columns=names))
    mlflow.pyfunc.save_model(
        str(local),
        python_model=str(Path(__file__).with_name("_frame_model.py")),
        artifacts={"keras_model": str(keras_path)},
        mlflow_model=meta,
        signature=signature,
        input_example=example,  # two raw rows: the request a user copies from the UI
        pip_requirements=[*_requirements(), "pandas"],
    )


def log_model(run: RunHandle, experiment_id: str, model: Any, example: Any, step: int) -> None:
    """``model.keras`` and the MLflow model (its signature: ``example``, a batch of model inputs)."""
    import mlflow.keras
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    exported = export_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MODEL_ARTIFACT
        exported.save(path)
        run.log_artifact(path)

        client = run.client
        logged = client.create_logged_model(experiment_id, name=MLFLOW_MODEL, source_run_id=run.run_id)
        try:
            meta = Model(
                artifact_path=logged.artifact_location,
                run_id=run.run_id,
                model_id=logged.model_id,
                model_uuid=logged.model_id,
            )
            local = Path(tmp) / "mlflow_model"
            if isinstance(example, np.ndarray):
                mlflow.keras.save_model(
                    exported,
                    str(local),
                    mlflow_model=meta,
                    signature=_signature(exported, example),
                    pip_requirements=_requirements(),
                )
            else:  # named columns: a DataFrame of raw rows
                _save_frame_model(path, local, meta, exported, example)
            client.log_model_artifacts(logged.model_id, str(local))
            client.log_outputs(run.run_id, [LoggedModelOutput(logged.model_id, step)])
            client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        except BaseException:
            client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            raise
