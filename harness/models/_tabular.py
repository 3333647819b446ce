"""Models for tables of mixed columns: linear (wide), DNN (deep) and wide & deep.

Every model starts with its own preprocessing layers, built from the task's
:class:`TabularSchema` (training statistics, no ``adapt`` pass): ``Normalization``
of each numeric column; each categorical column arrives as its index in the
training vocabulary (``TabularSchema.encode``, the rule in ``_vocabulary``: 0 for a
value training never saw), then a one-hot encoding (wide) or an embedding (deep).
No string tensors, so the models train on TensorFlow, JAX and PyTorch alike; the
served model (a pyfunc) looks raw rows up with the same rule. The output is
``P(class 1)`` from a float32 sigmoid.
:class:`TabularSchema` is to these models what ``YoloHead`` is to the YOLO ones:
the spec the task hands the factory.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from harness.config import MAX_LAYERS, MAX_WIDTH, ModelParams, check, check_range, check_sizes
from harness.models._registry import register_model
from harness.models._vocabulary import encode

if TYPE_CHECKING:
    import keras

Kind = Literal["numeric", "categorical"]


@dataclasses.dataclass(frozen=True)
class ColumnStats:
    """One input column as the preprocessing layers need it (training statistics only)."""

    name: str
    kind: Kind
    mean: float = 0.0  # numeric: Normalization's mean and variance
    variance: float = 1.0
    vocabulary: tuple[str, ...] = ()  # categorical: index i + 1 is vocabulary[i]; most frequent first


@dataclasses.dataclass(frozen=True)
class TabularSchema:
    """What a tabular model is built from (the task computes it from the training rows)."""

    columns: tuple[ColumnStats, ...]

    def encode(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw columns (name -> values) as the model's inputs: one ``[N, 1]`` array per column,
        float32 numbers, or int32 vocabulary indices for a categorical column."""
        out = {}
        for col in self.columns:
            values = np.asarray(columns[col.name]).reshape(-1)
            if col.kind == "numeric":
                out[col.name] = values.astype(np.float32).reshape(-1, 1)
            else:
                out[col.name] = encode(values.tolist(), col.vocabulary).reshape(-1, 1)
        return out

    def vocabularies(self) -> dict[str, list[str]]:
        """Categorical input -> its vocabulary (what the served model looks raw rows up in)."""
        return {c.name: list(c.vocabulary) for c in self.columns if c.kind == "categorical"}


@dataclasses.dataclass(frozen=True)
class LinearParams(ModelParams):
    """Logistic regression on one-hot categoricals and normalised numerics."""

    name: str = "linear"


@dataclasses.dataclass(frozen=True)
class DnnParams(ModelParams):
    """The deep part: embeddings + normalised numerics through ``hidden`` ReLU layers."""

    name: str = "dnn"
    hidden: tuple[int, ...] = (100, 70, 50, 25)  # the talk's DNNClassifier hidden_units
    embedding_dim: int = 8  # per categorical column; 0 = one-hot instead
    dropout: float = 0.0  # after every hidden layer
    batchnorm: bool = False  # before every hidden activation

    def check(self) -> None:
        check(self.hidden, len(self.hidden) > 0 and all(w > 0 for w in self.hidden), "hidden", "positive widths")
        check_sizes(self.hidden, "hidden", (1, MAX_LAYERS), (1, MAX_WIDTH), "hidden widths")
        check(self.embedding_dim, self.embedding_dim >= 0, "embedding_dim", ">= 0 (0 = one-hot)")
        check_range(self.embedding_dim, "embedding_dim", 0, MAX_WIDTH, " (0 = one-hot)")
        check(self.dropout, 0.0 <= self.dropout < 1.0, "dropout", "in [0, 1)")


@dataclasses.dataclass(frozen=True)
class WideDeepParams(DnnParams):
    """Wide & deep: the linear model's logit plus the DNN's, one sigmoid."""

    name: str = "wide_deep"


@dataclasses.dataclass(frozen=True)
class _Inputs:
    raw: dict[str, Any]  # column name -> keras.Input (what the model takes)
    numeric: Any  # normalised numerics, [B, n_numeric]
    lookups: dict[str, Any]  # categorical column -> its vocabulary index, [B, 1]
    sizes: dict[str, int]  # categorical column -> number of indices (vocabulary + 1 OOV)


def _inputs(schema: TabularSchema) -> _Inputs:
    import keras

    raw: dict[str, Any] = {}
    numeric = []
    lookups: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for col in schema.columns:
        if col.kind == "numeric":
            raw[col.name] = keras.Input(shape=(1,), name=col.name, dtype="float32")
            norm = keras.layers.Normalization(mean=col.mean, variance=col.variance, name=f"{col.name}_norm")
            numeric.append(norm(raw[col.name]))
        else:
            raw[col.name] = lookups[col.name] = keras.Input(shape=(1,), name=col.name, dtype="int32")
            sizes[col.name] = len(col.vocabulary) + 1  # + the out-of-vocabulary index 0
    merged = keras.layers.Concatenate(name="numeric")(numeric) if len(numeric) > 1 else numeric[0]
    return _Inputs(raw, merged, lookups, sizes)


def _one_hot(inp: _Inputs) -> Any:
    import keras

    parts = [inp.numeric]
    for name, index in inp.lookups.items():
        parts.append(
            keras.layers.CategoryEncoding(inp.sizes[name], output_mode="one_hot", name=f"{name}_onehot")(index)
        )
    return keras.layers.Concatenate(name="wide_features")(parts)


def _wide_logit(inp: _Inputs) -> Any:
    import keras

    return keras.layers.Dense(1, name="wide_logit")(_one_hot(inp))


def _deep_logit(inp: _Inputs, p: DnnParams) -> Any:
    import keras

    if p.embedding_dim:
        parts = [inp.numeric]
        for name, index in inp.lookups.items():
            emb = keras.layers.Embedding(inp.sizes[name], p.embedding_dim, name=f"{name}_embedding")(index)
            parts.append(keras.layers.Flatten(name=f"{name}_flat")(emb))
        x = keras.layers.Concatenate(name="deep_features")(parts)
    else:
        x = _one_hot(inp)
    for i, width in enumerate(p.hidden, start=1):
        x = keras.layers.Dense(width, use_bias=not p.batchnorm, name=f"dense{i}")(x)
        if p.batchnorm:
            x = keras.layers.BatchNormalization(name=f"dense{i}_bn")(x)
        x = keras.layers.Activation("relu", name=f"dense{i}_relu")(x)
        if p.dropout:
            x = keras.layers.Dropout(p.dropout, name=f"dense{i}_dropout")(x)
    return keras.layers.Dense(1, name="deep_logit")(x)


def _probability(logit: Any) -> Any:
    import keras

    return keras.layers.Activation("sigmoid", dtype="float32", name="probability")(logit)


@register_model("linear", params=LinearParams, tasks=("tabular",))
def linear(p: LinearParams, input_shape: tuple[int, ...], outputs: TabularSchema) -> keras.Model:
    import keras

    inp = _inputs(outputs)
    return keras.Model(inp.raw, _probability(_wide_logit(inp)), name="linear")


@register_model("dnn", params=DnnParams, tasks=("tabular",))
def dnn(p: DnnParams, input_shape: tuple[int, ...], outputs: TabularSchema) -> keras.Model:
    import keras

    inp = _inputs(outputs)
    return keras.Model(inp.raw, _probability(_deep_logit(inp, p)), name="dnn")


@register_model("wide_deep", params=WideDeepParams, tasks=("tabular",))
def wide_deep(p: WideDeepParams, input_shape: tuple[int, ...], outputs: TabularSchema) -> keras.Model:
    import keras

    inp = _inputs(outputs)
    logit = keras.layers.Add(name="wide_plus_deep")([_wide_logit(inp), _deep_logit(inp, p)])
    return keras.Model(inp.raw, _probability(logit), name="wide_deep")
