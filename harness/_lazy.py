"""Lazy re-exports for a package whose modules are heavy to import (PEP 562).

``__getattr__ = lazy_exports(__name__, {"Name": "_module", ...})`` in a package's
``__init__`` makes ``from harness.pkg import Name`` import ``harness.pkg._module`` only
when ``Name`` is first asked for, so that a command checking its input imports no
TensorFlow or MLflow it does not need. The package also imports the names under
``TYPE_CHECKING``, so that mypy and readers see them typed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving each name of ``exports`` from its private module of ``package``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
