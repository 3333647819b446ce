"""Decorator registry of model factories (timm style), each with its parameter class.

``@register_model("cnn", params=CnnParams)`` registers a factory
``fn(params, input_shape, outputs) -> keras.Model`` that returns an uncompiled
model whose last layer has ``outputs`` units (the task says how many and what
they mean: logits for classification). ``params`` is the model's section of the
config; ``tasks`` the tasks the model serves (None: any).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.config import ModelParams, register_params
from harness.errors import ConfigError

if TYPE_CHECKING:
    import keras

ModelFactory = Callable[..., "keras.Model"]
_FACTORIES: dict[str, ModelFactory] = {}


def register_model(
    name: str, params: type[ModelParams] = ModelParams, tasks: tuple[str, ...] | None = None
) -> Callable[[ModelFactory], ModelFactory]:
    def wrap(fn: ModelFactory) -> ModelFactory:
        if name in _FACTORIES:
            raise ValueError(f"model {name!r} is registered twice")
        register_params("model", name, params, tasks)
        _FACTORIES[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_FACTORIES)


def create_model(params: ModelParams, input_shape: tuple[int, ...], outputs: Any, **kw: Any) -> keras.Model:
    """Build the model ``params.name``; an unknown name lists the valid ones."""
    if params.name not in _FACTORIES:
        raise ConfigError(f"unknown model {params.name!r}; valid models: {', '.join(list_models())}")
    return _FACTORIES[params.name](params, input_shape, outputs, **kw)
