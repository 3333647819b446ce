"""Keras' ResNet-50 with random weights and a float32 logits layer: the network of published
accelerator throughputs (MLPerf, the TensorFlow benchmarks report ResNet-50 images/s).

Keras' ImageNet preprocessing (caffe-style mean subtraction) is left out: the classification
pipeline feeds floats in [0, 1], which is fine for random weights, because these runs measure
throughput, not accuracy.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from harness.config import ModelParams
from harness.errors import ConfigError
from harness.models._registry import register_model

if TYPE_CHECKING:
    import keras

MIN_SIDE = 32  # five stride-2 stages; Keras refuses smaller inputs


@dataclasses.dataclass(frozen=True)
class ResNetParams(ModelParams):
    """No options: the benchmark's ResNet-50 is Keras' own, unchanged."""

    name: str = "resnet50"


@register_model("resnet50", params=ResNetParams, tasks=("classification",))
def resnet50(p: ResNetParams, input_shape: tuple[int, ...], outputs: int) -> keras.Model:
    """``keras.applications.ResNet50`` without its top, global average pooling, then ``outputs`` logits."""
    import keras

    if len(input_shape) != 3 or min(input_shape[:2]) < MIN_SIDE:
        raise ConfigError(
            f"resnet50 needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels [H, W, C], "
            f"but the dataset's input shape is {list(input_shape)}"
        )
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=input_shape, pooling="avg")
    # the output stays float32 under mixed precision (a stable softmax and loss)
    logits = keras.layers.Dense(outputs, dtype="float32", name="logits")(base.output)
    return keras.Model(base.input, logits, name="resnet50")
