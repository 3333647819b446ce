"""Fully connected nets: softmax regression (no hidden layer) up to the 5-layer net."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from harness.config import MAX_LAYERS, MAX_WIDTH, check_sizes
from harness.models._layers import TalkNetParams, activate, init_kwargs
from harness.models._registry import register_model

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class MlpParams(TalkNetParams):
    name: str = "mlp"
    layers: tuple[int, ...] = ()  # hidden widths; () is softmax regression

    def check(self) -> None:
        super().check()
        check_sizes(self.layers, "layers", (0, MAX_LAYERS), (1, MAX_WIDTH), "hidden widths")


@register_model("mlp", params=MlpParams, tasks=("classification",))
def mlp(p: MlpParams, input_shape: tuple[int, ...], outputs: int) -> keras.Model:
    """Flatten, then ``layers`` hidden layers, then ``outputs`` units.

    Dropout follows every hidden layer, as in the talk.
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(p.layers, start=1):
        x = keras.layers.Dense(width, name=f"dense{i}", **init_kwargs(p, use_bias=not p.batchnorm))(x)
        x = activate(x, p, f"dense{i}")
        if p.dropout:
            x = keras.layers.Dropout(p.dropout, name=f"dense{i}_dropout")(x)
    # the output stays float32 under mixed precision (a stable softmax and loss)
    logits = keras.layers.Dense(outputs, name="logits", dtype="float32", **init_kwargs(p))(x)
    return keras.Model(inputs, logits, name="mlp")
