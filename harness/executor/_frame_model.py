"""An MLflow model from code: a Keras model with named inputs, served on DataFrames of raw rows.

MLflow copies this file into the logged model and runs it when the model is
loaded (``mlflow.pyfunc.load_model``, ``mlflow models serve``): it needs MLflow,
Keras and pandas, never harness, and no TensorFlow (any Keras backend serves it).
Each DataFrame column feeds the model input of the same name (reshaped to that
input's shape); the answer is one DataFrame column per output unit (a sigmoid
model: ``probability``).

Rows are taken as files write them. A categorical column (one named in the
``vocabularies`` artifact) is looked up by ``_vocabulary.encode``, the module
harness trained with, shipped beside this file: a category's surrounding spaces
are stripped (UCI's ``39, State-gov, ...``), so that a row gets one answer
however it is spaced, and a category training never saw gets the
out-of-vocabulary index, as in training. A numeric column takes numbers or the
text of one. Anything else is refused with an
MlflowException naming the column (and row) -- a 400 from ``mlflow models
serve`` -- never answered with a guess: a missing or unknown column, a category
that is not text, a missing value, a number that is not finite.
Harness never imports this module (``set_model`` registers the model at load).
"""

from __future__ import annotations

import importlib
import json
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


def _categories(name: str, column: pd.Series, vocabulary: list[str], encode: Any) -> np.ndarray:
    values = column.tolist()
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise _refuse(
                f"input column {name!r} must hold text (categories), but row {column.index[i]} holds {value!r}; "
                "a value not stated is sent as the training data writes it (adult: '?')"
            )
    return np.asarray(encode(values, vocabulary))


class KerasFrameModel(PythonModel):
    def load_context(self, context: Any) -> None:
        import keras

        self.model = keras.models.load_model(context.artifacts["keras_model"], compile=False)
        with open(context.artifacts["vocabularies"], encoding="utf-8") as f:
            self.vocabularies: dict[str, list[str]] = json.load(f)
        # shipped as code beside this file (code_paths), so importable by its own name only once loaded
        self.encode = importlib.import_module("_vocabulary").encode

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        expected = [t.name for t in self.model.inputs]
        missing = [c for c in expected if c not in frame.columns]
        unknown = [str(c) for c in frame.columns if c not in expected]
        if missing or unknown:
            said = [f"missing input column(s) {', '.join(map(repr, missing))}"] if missing else []
            said += [f"unknown input column(s) {', '.join(map(repr, unknown))}"] if unknown else []
            raise _refuse(f"{'; '.join(said)}: the model takes exactly the columns {', '.join(expected)}")
        feed = {}
        for t in self.model.inputs:
            if t.name in self.vocabularies:
                values = _categories(t.name, frame[t.name], self.vocabularies[t.name], self.encode)
            else:
                values = _numbers(t.name, frame[t.name])
            feed[t.name] = values.astype(t.dtype).reshape(-1, *t.shape[1:])
        n = len(frame)
        chunks = [
            np.asarray(self.model({k: v[i : i + _BATCH] for k, v in feed.items()}, training=False))
            for i in range(0, n, _BATCH)
        ]
        out = np.concatenate(chunks).reshape(n, -1) if chunks else np.zeros((0, 1), np.float32)
        names = ["probability"] if out.shape[1] == 1 else [f"output_{i}" for i in range(out.shape[1])]
        return pd.DataFrame(out, columns=names, index=frame.index)


mlflow.models.set_model(KerasFrameModel())
