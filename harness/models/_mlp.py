"""Fully connected nets: softmax regression (no hidden layer) up to the 5-layer net."""

from __future__ import annotations

import keras

from harness.config import Config
from harness.models._layers import activate, init_kwargs
from harness.models._registry import register_model


@register_model("mlp")
def mlp(cfg: Config, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Flatten, then ``cfg.layers`` hidden layers, then ``num_classes`` logits.

    Dropout (``cfg.dropout``) follows every hidden layer, as in the talk.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(cfg.layers, start=1):
        x = keras.layers.Dense(width, name=f"dense{i}", **init_kwargs(cfg, use_bias=not cfg.batchnorm))(x)
        x = activate(x, cfg, f"dense{i}")
        if cfg.dropout:
            x = keras.layers.Dropout(cfg.dropout, name=f"dense{i}_dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits", **init_kwargs(cfg))(x)
    return keras.Model(inputs, logits, name="mlp")
