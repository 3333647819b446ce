"""The talk's three-layer CNN: conv, conv stride 2, conv stride 2, dense, logits."""

from __future__ import annotations

import keras

from harness.config import Config
from harness.models._layers import activate, init_kwargs
from harness.models._registry import register_model


@register_model("cnn")
def cnn(cfg: Config, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Depths ``conv1..conv3``, ``filter_sizes``, ``strides``, SAME padding, then ``dense``.

    Dropout (``cfg.dropout``) applies to the dense layer only, as in the talk.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    depths = (cfg.conv1, cfg.conv2, cfg.conv3)
    for i, (depth, size, stride) in enumerate(zip(depths, cfg.filter_sizes, cfg.strides, strict=True), 1):
        x = keras.layers.Conv2D(
            depth,
            size,
            strides=stride,
            padding="same",
            name=f"conv{i}",
            **init_kwargs(cfg, use_bias=not cfg.batchnorm),
        )(x)
        x = activate(x, cfg, f"conv{i}")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(cfg.dense, name="dense", **init_kwargs(cfg, use_bias=not cfg.batchnorm))(x)
    x = activate(x, cfg, "dense")
    if cfg.dropout:
        x = keras.layers.Dropout(cfg.dropout, name="dense_dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits", **init_kwargs(cfg))(x)
    return keras.Model(inputs, logits, name="cnn")
