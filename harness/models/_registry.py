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
from harness.registry import Registry

if TYPE_CHECKING:
    import keras

ModelFactory = Callable[..., "keras.Model"]
MODELS: Registry[ModelFactory] = Registry("model")


def register_model(
    name: str,
    params: type[ModelParams] = ModelParams,
    tasks: tuple[str, ...] | None = None,
    frameworks: tuple[str, ...] | None = None,
) -> Callable[[ModelFactory], ModelFactory]:
    """``frameworks``: the Keras backends the model trains on, where not every one (None)."""

    def wrap(fn: ModelFactory) -> ModelFactory:
        register_params("model", name, params, tasks, frameworks)
        MODELS.add(name, fn)
        return fn

    return wrap


def list_models() -> list[str]:
    return MODELS.names()


def create_model(params: ModelParams, input_shape: tuple[int, ...], outputs: Any, **kw: Any) -> keras.Model:
    """Build the model ``params.name``; an unknown name lists the valid ones."""
    return MODELS.get(params.name)(params, input_shape, outputs, **kw)
