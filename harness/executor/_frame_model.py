"""An MLflow model from code: a Keras model with named inputs, served on DataFrames of raw rows.

MLflow copies this file into the logged model and runs it when the model is
loaded (``mlflow.pyfunc.load_model``, ``mlflow models serve``): it needs MLflow,
Keras and pandas, never harness. Each DataFrame column feeds the model input of
the same name (reshaped to that input's shape, cast to its dtype); the answer is
one DataFrame column per output unit (a sigmoid model: ``probability``).

Rows are taken as files write them: a category's surrounding spaces are stripped
(UCI's ``39, State-gov, ...``), as harness's readers strip every field before
training, so that a row gets one answer however it is spaced; a numeric column
takes numbers or the text of one. Anything else is refused with an
MlflowException naming the column (and row) -- a 400 from ``mlflow models
serve`` -- never answered with a guess: a missing or unknown column, a category
that is not text, a missing value, a number that is not finite.
Harness never imports this module (``set_model`` registers the model at load).
"""

from __future__ import annotations

import math
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

_BATCH = 4096
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # a larger number becomes inf in the float32 input


def _refuse(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _number(value: Any) -> float | None:
    """``value`` as a finite float32-sized number (text is stripped, as the readers do), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= _FLOAT32_MAX else None


def _numbers(name: str, column: pd.Series) -> np.ndarray:
    out = np.empty(len(column), np.float32)
    for i, value in enumerate(column.tolist()):
        number = _number(value)
        if number is None:
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            raise _refuse(
                f"input column {name!r} must hold finite numbers, but row {column.index[i]} holds {value!r}"
                + ("; fill in the value (the model has no meaning for a missing number)" if missing else "")
            )
        out[i] = number
    return out


def _categories(name: str, column: pd.Series) -> np.ndarray:
    values = column.tolist()
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise _refuse(
                f"input column {name!r} must hold text (categories), but row {column.index[i]} holds {value!r}; "
                "a value not stated is sent as the training data writes it (adult: '?')"
            )
    return np.array([v.strip() for v in values], dtype=object)


class KerasFrameModel(PythonModel):
    def load_context(self, context: Any) -> None:
        import keras

        self.model = keras.models.load_model(context.artifacts["keras_model"], compile=False)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        expected = [t.name for t in self.model.inputs]
        missing = [c for c in expected if c not in frame.columns]
        unknown = [str(c) for c in frame.columns if c not in expected]
        if missing or unknown:
            said = [f"missing input column(s) {', '.join(map(repr, missing))}"] if missing else []
            said += [f"unknown input column(s) {', '.join(map(repr, unknown))}"] if unknown else []
            raise _refuse(f"{'; '.join(said)}: the model takes exactly the columns {', '.join(expected)}")
        import tensorflow as tf  # string inputs: Keras' predict takes no numpy strings, tf tensors it does

        feed = {}
        for t in self.model.inputs:
            if t.dtype == "string":
                values = _categories(t.name, frame[t.name]).astype(str)
            else:
                values = _numbers(t.name, frame[t.name]).astype(t.dtype)
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
