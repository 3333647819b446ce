"""Load a trained model from the MLflow store by run id, and log scan results back to it."""

from __future__ import annotations

import tempfile
from typing import Any

from harness.errors import UserError
from harness.tracking import Tracker

MODEL_ARTIFACT = "model.keras"


def load_run_model(tracker: Tracker, run_id: str) -> Any:
    """The ``model.keras`` artifact of ``run_id``, loaded for inference."""
    import keras

    try:
        run = tracker.client.get_run(run_id)
    except Exception as exc:  # MlflowException RESOURCE_DOES_NOT_EXIST
        raise UserError(f"no run {run_id!r} in {tracker.uri} ({type(exc).__name__})") from None
    names = [a.path for a in tracker.client.list_artifacts(run_id)]
    if MODEL_ARTIFACT not in names:
        raise UserError(
            f"run {run_id} ({run.data.tags.get('mlflow.runName', '?')}) has no {MODEL_ARTIFACT} artifact "
            f"(it has: {', '.join(names) or 'nothing'}); use a rung run from `harness ladder`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = tracker.client.download_artifacts(run_id, MODEL_ARTIFACT, tmp)
        return keras.models.load_model(path, compile=False)  # inference only: no optimizer, no metrics
