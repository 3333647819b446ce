"""The talk's three-layer CNN: conv, conv stride 2, conv stride 2, dense, logits.

The PlanesNet reference classifier (trainer/model.py:23, 29-37, 61-73) is this net with
kernel sizes ``filter_sizes`` S = 4-3-2, depths conv1, 2*conv1, 4*conv1, strides 1-2-2
and batch norm without bias before every ReLU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import MAX_KERNEL, MAX_WIDTH, check, check_range, check_sizes
from harness.models._layers import TalkNetParams, activate, init_kwargs
from harness.models._registry import register_model

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class CnnParams(TalkNetParams):
    name: str = "cnn"
    conv1: int = 4  # depth of each conv layer
    conv2: int = 8
    conv3: int = 12
    filter_sizes: tuple[int, ...] = (5, 5, 4)  # kernel size of conv1..conv3
    strides: tuple[int, ...] = (1, 2, 2)
    dense: int = 200  # width of the dense layer after the convs

    # the PlanesNet reference trainer's hp-filter-sizes S/M/L: kernel sides of conv1..conv3
    # (trainer/model.py:23; ../shared/reference/planespotting.md section 8)
    value_aliases: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "filter_sizes": {"S": (4, 3, 2), "M": (5, 4, 3), "L": (6, 5, 4)}
    }

    def check(self) -> None:
        super().check()
        for key in ("conv1", "conv2", "conv3", "dense"):
            value = getattr(self, key)
            check(value, value > 0, key, "> 0")
            check_range(value, key, 1, MAX_WIDTH)
        sizes, strides = self.filter_sizes, self.strides
        check(sizes, len(sizes) == 3 and min(sizes) > 0, "filter_sizes", "three positive sizes")
        check(strides, len(strides) == 3 and min(strides) > 0, "strides", "three positive strides")
        check_sizes(sizes, "filter_sizes", (3, 3), (1, MAX_KERNEL), "kernel sides")
        check_sizes(strides, "strides", (3, 3), (1, MAX_KERNEL), "strides")


@register_model("cnn", params=CnnParams, tasks=("classification",))
def cnn(p: CnnParams, input_shape: tuple[int, ...], outputs: int) -> keras.Model:
    """Depths ``conv1..conv3``, ``filter_sizes``, ``strides``, SAME padding, then ``dense``.

    Dropout applies to the dense layer only, as in the talk.
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    depths = (p.conv1, p.conv2, p.conv3)
    for i, (depth, size, stride) in enumerate(zip(depths, p.filter_sizes, p.strides, strict=True), 1):
        x = keras.layers.Conv2D(
            depth, size, strides=stride, padding="same", name=f"conv{i}", **init_kwargs(p, use_bias=not p.batchnorm)
        )(x)
        x = activate(x, p, f"conv{i}")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(p.dense, name="dense", **init_kwargs(p, use_bias=not p.batchnorm))(x)
    x = activate(x, p, "dense")
    if p.dropout:
        x = keras.layers.Dropout(p.dropout, name="dense_dropout")(x)
    # the output stays float32 under mixed precision (a stable softmax and loss)
    logits = keras.layers.Dense(outputs, name="logits", dtype="float32", **init_kwargs(p))(x)
    return keras.Model(inputs, logits, name="cnn")
