"""An MLflow model from code: a Keras model with named inputs, served on DataFrames of raw rows.

MLflow copies this file into the logged model and runs it when the model is
loaded (``mlflow.pyfunc.load_model``, ``mlflow models serve``): it needs MLflow,
Keras and pandas, never harness. Each DataFrame column feeds the model input of
the same name (reshaped to that input's shape, cast to its dtype); the answer is
one DataFrame column per output unit (a sigmoid model: ``probability``).
A row with NaN or an infinity in a numeric column is refused (an MlflowException
naming the column and row: a 400 from ``mlflow models serve``), not answered NaN.
Harness never imports this module (``set_model`` registers the model at load).
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

_BATCH = 4096


class KerasFrameModel(PythonModel):
    def load_context(self, context: Any) -> None:
        import keras

        self.model = keras.models.load_model(context.artifacts["keras_model"], compile=False)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        missing = [t.name for t in self.model.inputs if t.name not in frame.columns]
        if missing:
            raise ValueError(f"missing input columns {missing}; expected {[t.name for t in self.model.inputs]}")
        import tensorflow as tf  # string inputs: Keras' predict takes no numpy strings, tf tensors it does

        feed = {}
        for t in self.model.inputs:
            values = frame[t.name].to_numpy()
            values = values.astype(str) if t.dtype == "string" else values.astype(t.dtype)
            if t.dtype != "string" and not np.all(np.isfinite(values)):
                bad = int(np.flatnonzero(~np.isfinite(values))[0])
                raise MlflowException(
                    f"input column {t.name!r} must hold finite numbers, but row {frame.index[bad]} holds "
                    f"{values[bad]}; fill in the value (the model has no meaning for a missing number)",
                    error_code=INVALID_PARAMETER_VALUE,
                )
            feed[t.name] = tf.constant(values.reshape(-1, *t.shape[1:]))
        n = len(frame)
        chunks = [
            np.asarray(self.model({k: v[i : i + _BATCH] for k, v in feed.items()}, training=False))
            for i in range(0, n, _BATCH)
        ]
        out = np.concatenate(chunks).reshape(n, -1) if chunks else np.zeros((0, 1), np.float32)
        names = ["probability"] if out.shape[1] == 1 else [f"output_{i}" for i in range(out.shape[1])]
        return pd.DataFrame(out, columns=names, index=frame.index)


mlflow.models.set_model(KerasFrameModel())
