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

from harness.config._sections import DataParams, ModelParams, Named, TaskParams
from harness.errors import ConfigError

BASES: dict[str, type[Named]] = {"task": TaskParams, "data": DataParams, "model": ModelParams}
NOUNS = {"task": "task", "data": "dataset", "model": "model"}


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    params: type[Named]
    tasks: tuple[str, ...] | None  # tasks a dataset or model serves; None = any (and for tasks themselves)


_ENTRIES: dict[str, dict[str, Entry]] = {kind: {} for kind in BASES}


def register_params(kind: str, name: str, params: type[Named], tasks: tuple[str, ...] | None = None) -> None:
    """Record ``params`` as the parameter class of the ``kind`` called ``name``."""
    if kind not in BASES:
        raise ValueError(f"kind must be one of {tuple(BASES)}, but got {kind=}")
    if not (isinstance(params, type) and issubclass(params, BASES[kind])):
        raise TypeError(f"the params of {kind} {name!r} must subclass {BASES[kind].__name__}, but got {params=}")
    if name in _ENTRIES[kind]:
        raise ValueError(f"{NOUNS[kind]} {name!r} is registered twice")
    _ENTRIES[kind][name] = Entry(name, params, tasks)


def names(kind: str) -> list[str]:
    return sorted(_ENTRIES[kind])


def entry(kind: str, name: str, where: str = "") -> Entry:
    """The registered ``kind`` called ``name``; an unknown name lists the valid ones."""
    found = _ENTRIES[kind].get(name)
    if found is None:
        noun = NOUNS[kind]
        valid = ", ".join(names(kind)) or "none registered"
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}unknown {noun} {name!r}; valid {noun}s: {valid}")
    return found


def params_class(kind: str, name: str, where: str = "") -> type[Named]:
    return entry(kind, name, where).params


def owners(kind: str, key: str) -> list[str]:
    """Names of the registered ``kind`` entries whose parameter class has the field ``key``."""
    return sorted(e.name for e in _ENTRIES[kind].values() if key != "name" and key in e.params.hints())


def check_serves(kind: str, name: str, task: str) -> None:
    """A dataset or model that declared its tasks must serve ``task``."""
    tasks = entry(kind, name).tasks
    if tasks is not None and task not in tasks:
        raise ConfigError(
            f"{NOUNS[kind]} {name!r} does not serve task {task!r} (it serves: {', '.join(tasks)}); "
            "set task, dataset and model that fit together"
        )
