"""What the talk's nets share: their parameters (init, activation, batch norm, dropout) and blocks."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from harness.config import ModelParams, check

Activation = Literal["relu", "sigmoid", "tanh", "elu"]


@dataclasses.dataclass(frozen=True)
class TalkNetParams(ModelParams):
    """Parameters every model of the talk has; switching model keeps their values."""

    activation: Activation = "relu"
    dropout: float = 0.0  # drop probability (the talk's 1 - pkeep)
    batchnorm: bool = False  # batch norm before each activation (conv and dense)
    bnexp: float = 0.999  # batch-norm moving-average decay
    init_stddev: float = 0.1  # truncated-normal stddev of weights
    bias_init: float = 0.0  # the talk uses 0.1 for ReLU layers

    def check(self) -> None:
        check(self.dropout, 0.0 <= self.dropout < 1.0, "dropout", "in [0, 1)")
        check(self.bnexp, 0.0 < self.bnexp < 1.0, "bnexp", "in (0, 1)")
        check(self.init_stddev, self.init_stddev > 0, "init_stddev", "> 0")


def init_kwargs(p: TalkNetParams, use_bias: bool = True) -> dict[str, Any]:
    """Truncated-normal weights (stddev ``init_stddev``), constant biases (``bias_init``)."""
    import keras

    kw: dict[str, Any] = {"kernel_initializer": keras.initializers.TruncatedNormal(stddev=p.init_stddev)}
    if use_bias:
        kw["bias_initializer"] = keras.initializers.Constant(p.bias_init)
    kw["use_bias"] = use_bias
    return kw


def activate(x: Any, p: TalkNetParams, name: str) -> Any:
    """Optional batch norm then the activation.

    As in the talk's batch-norm model: the layer before has no bias (the BN
    offset replaces it) and no BN scale, since a ReLU follows.
    """
    import keras

    if p.batchnorm:
        x = keras.layers.BatchNormalization(momentum=p.bnexp, scale=False, name=f"{name}_bn")(x)
    return keras.layers.Activation(p.activation, name=f"{name}_{p.activation}")(x)
