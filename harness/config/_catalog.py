"""The parameter classes that tasks, datasets and models register (timm-style, by decorator).

``harness.tasks``, ``harness.data`` and ``harness.models`` call
:func:`register_params` from their own ``register_*`` decorators, so that a new
model arrives as one new file: its factory and its parameter class, registered
together. The config layer reads this catalog to resolve and check keys; it never
imports the packages that fill it: the drivers (``harness.ladders``,
``harness.studies``) import ``harness.tasks``, ``harness.data`` and ``harness.models``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness import _framework
from harness.config._sections import DataParams, ModelParams, Named, TaskParams
from harness.errors import ConfigError
from harness.registry import Registry

BASES: dict[str, type[Named]] = {"task": TaskParams, "data": DataParams, "model": ModelParams}
NOUNS = {"task": "task", "data": "dataset", "model": "model"}


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    params: type[Named]
    tasks: tuple[str, ...] | None  # tasks a dataset or model serves; None = any (and for tasks themselves)
    frameworks: tuple[str, ...] | None = None  # Keras backends a task or model trains on; None = any


# one registry per kind; its noun ("task", "dataset", "model") is the word its errors use
REGISTRIES: dict[str, Registry[Entry]] = {kind: Registry(noun) for kind, noun in NOUNS.items()}


def register_params(
    kind: str,
    name: str,
    params: type[Named],
    tasks: tuple[str, ...] | None = None,
    frameworks: tuple[str, ...] | None = None,
) -> None:
    """Record ``params`` as the parameter class of the ``kind`` called ``name``."""
    if kind not in BASES:
        raise ValueError(f"kind must be one of {tuple(BASES)}, but got {kind=}")
    if not (isinstance(params, type) and issubclass(params, BASES[kind])):
        raise TypeError(f"the params of {kind} {name!r} must subclass {BASES[kind].__name__}, but got {params=}")
    if frameworks is not None and not set(frameworks) <= set(_framework.FRAMEWORKS):
        raise ValueError(f"frameworks must be among {_framework.FRAMEWORKS}, but got {frameworks=}")
    REGISTRIES[kind].add(name, Entry(name, params, tasks, frameworks))


def names(kind: str) -> list[str]:
    return REGISTRIES[kind].names()


def entry(kind: str, name: str, where: str = "") -> Entry:
    """The registered ``kind`` called ``name``; an unknown name lists the valid ones."""
    return REGISTRIES[kind].get(name, where)


def params_class(kind: str, name: str, where: str = "") -> type[Named]:
    return entry(kind, name, where).params


def owners(kind: str, key: str) -> list[str]:
    """Names of the registered ``kind`` entries whose parameter class has the field ``key``."""
    return sorted(e.name for e in REGISTRIES[kind].values() if key != "name" and key in e.params.hints())


def value_aliases(key: str) -> dict[str, Any]:
    """The words a search space may write for a value of config key ``key`` (flat or dotted), as the
    registered parameter classes that have that field declare them (``Named.value_aliases``)."""
    section, _, field = key.rpartition(".")
    kinds = [k for k in BASES if k == section] if section else list(BASES)
    out: dict[str, Any] = {}
    for kind in kinds:
        for e in REGISTRIES[kind].values():
            out.update(e.params.value_aliases.get(field, {}))
    return out


def check_trains_on(kind: str, name: str, framework: str) -> None:
    """A task or model that declared its frameworks must train on ``framework``."""
    frameworks = entry(kind, name).frameworks
    if frameworks is not None and framework not in frameworks:
        raise ConfigError(
            f"{NOUNS[kind]} {name!r} does not train on framework={framework} yet (it trains on: "
            f"{', '.join(frameworks)}); set framework={frameworks[0]} for it"
        )


def check_serves(kind: str, name: str, task: str) -> None:
    """A dataset or model that declared its tasks must serve ``task``."""
    tasks = entry(kind, name).tasks
    if tasks is not None and task not in tasks:
        raise ConfigError(
            f"{NOUNS[kind]} {name!r} does not serve task {task!r} (it serves: {', '.join(tasks)}); "
            "set task, dataset and model that fit together"
        )
