"""One registry type for everything harness looks up by name: tasks, datasets, models, config sections.

``Registry[T]`` maps names to items: ``add`` refuses a name twice, ``get`` answers an
unknown name with the closest valid one and the full list, and ``scoped`` restores the
registry on exit (tests register plug-ins inside it and leave nothing behind).

Plug-ins installed in the environment are found through the entry-point group
``harness.plugins`` (``[project.entry-points."harness.plugins"]`` in a plug-in's
pyproject.toml). Each entry names a module, imported, or a function, called once with
no arguments; either registers its tasks, datasets and models with the public
decorators (``register_task``, ``register_dataset``, ``register_model``). They are
loaded the first time any registry is read, so the CLI, ``harness worker`` and every
child process harness starts (each reads a registry before it runs anything) see the
same plug-ins, with nothing to call.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata
import inspect
import weakref
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from harness.errors import ConfigError, UserError

T = TypeVar("T")

PLUGIN_GROUP = "harness.plugins"


class PluginError(UserError):
    """An installed plug-in failed to load."""


class Registry(Generic[T]):
    """Items by name, for one kind of thing (its ``noun`` names it in errors: "task", "dataset")."""

    def __init__(self, noun: str, error: type[UserError] = ConfigError) -> None:
        if not noun:
            raise ValueError("a registry needs a noun for its errors")
        self.noun = noun
        self._error = error
        self._items: dict[str, T] = {}
        _REGISTRIES.add(self)

    def add(self, name: str, item: T) -> None:
        """Register ``item`` as ``name``; a name registered twice is a programming error."""
        if not name:
            raise ValueError(f"a {self.noun} needs a name, but got {name!r}")
        if name in self._items:
            raise ValueError(f"{self.noun} {name!r} is registered twice")
        self._items[name] = item

    def get(self, name: str, where: str = "") -> T:
        """The item called ``name``; an unknown name says the closest valid one and lists them all."""
        load_plugins()
        found = self._items.get(name)
        if found is None:
            raise self._error(unknown_name(self.noun, name, self.names(), where))
        return found

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._items)

    def values(self) -> list[T]:
        load_plugins()
        return [self._items[name] for name in sorted(self._items)]

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Whatever is registered inside the block is gone after it (installed plug-ins stay)."""
        load_plugins()
        saved = dict(self._items)
        try:
            yield self
        finally:
            self._items = saved

    def __repr__(self) -> str:
        return f"Registry({self.noun!r}, {sorted(self._items)})"


_REGISTRIES: weakref.WeakSet[Registry[Any]] = weakref.WeakSet()


@contextlib.contextmanager
def scoped() -> Iterator[None]:
    """Every registry at once: register a plug-in's task, dataset and model in the block, none remain after it."""
    with contextlib.ExitStack() as stack:
        for registry in list(_REGISTRIES):
            stack.enter_context(registry.scoped())
        yield


def unknown_name(noun: str, name: str, valid: list[str], where: str = "") -> str:
    """``unknown task 'x'; did you mean 'y'? valid tasks: ...`` (the one wording for every registry)."""
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    prefix = f"{where}: " if where else ""
    return f"{prefix}unknown {noun} {name!r}{hint} valid {noun}s: {', '.join(valid) or 'none registered'}"


_loaded = False


def load_plugins() -> None:
    """Import every installed ``harness.plugins`` entry point, once per process (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a plug-in that registers things reads the registries while it loads
    for entry in sorted(importlib.metadata.entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        where = f"plug-in {entry.name!r} ({entry.value}"
        if entry.dist is not None:
            where += f", from {entry.dist.name} {entry.dist.version}"
        where += ")"
        try:
            target = entry.load()
            if not inspect.ismodule(target):
                if not callable(target):
                    raise TypeError(f"{entry.value} is neither a module nor a function")
                target()
        except UserError:
            raise
        except Exception as exc:  # a broken plug-in is the user's environment, said in one line
            raise PluginError(f"{where} failed to load: {type(exc).__name__}: {exc}") from exc
