"""Decorator registry of model factories (timm style).

A factory takes the resolved :class:`~harness.config.Config`, the input shape
and the number of classes and returns an uncompiled ``keras.Model`` that
outputs logits. Variants are ``functools.partial`` of a factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import keras

    from harness.config import Config

ModelFactory = Callable[..., "keras.Model"]
_FACTORIES: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    def wrap(fn: ModelFactory) -> ModelFactory:
        if name in _FACTORIES:
            raise ValueError(f"model {name!r} is registered twice")
        _FACTORIES[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_FACTORIES)


def create_model(cfg: Config, input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> keras.Model:
    """Build ``cfg.model``; an unknown name lists the valid ones."""
    if cfg.model not in _FACTORIES:
        raise ConfigError(f"unknown model {cfg.model!r}; valid models: {', '.join(list_models())}")
    return _FACTORIES[cfg.model](cfg, input_shape, num_classes, **kw)
