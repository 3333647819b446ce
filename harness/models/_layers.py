"""Layer helpers shared by the factories: the talk's initialisation and blocks."""

from __future__ import annotations

from typing import Any

import keras

from harness.config import Config


def init_kwargs(cfg: Config, use_bias: bool = True) -> dict[str, Any]:
    """Truncated-normal weights (stddev ``init_stddev``), constant biases (``bias_init``)."""
    kw: dict[str, Any] = {"kernel_initializer": keras.initializers.TruncatedNormal(stddev=cfg.init_stddev)}
    if use_bias:
        kw["bias_initializer"] = keras.initializers.Constant(cfg.bias_init)
    kw["use_bias"] = use_bias
    return kw


def activate(x: Any, cfg: Config, name: str) -> Any:
    """Optional batch norm then the activation.

    As in the talk's batch-norm model: the layer before has no bias (the BN
    offset replaces it) and no BN scale, since a ReLU follows.
    """
    if cfg.batchnorm:
        x = keras.layers.BatchNormalization(momentum=cfg.bnexp, scale=False, name=f"{name}_bn")(x)
    return keras.layers.Activation(cfg.activation, name=f"{name}_{cfg.activation}")(x)
