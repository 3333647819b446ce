"""Checking a value against a field's type hint (the strict half of every override)."""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Any, Literal, get_args, get_origin

_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
MAX_INT = 2**63 - 1  # what TensorFlow, numpy and MLflow's params hold; a bigger int is a typo, not a size


def coerce_type(value: Any, hint: Any) -> Any:
    """``value`` normalised to ``hint``; ``TypeError(expected)`` when it does not fit."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce_type(value, inner[0]) if len(inner) == 1 else value
    if origin is Literal:
        if value not in args:
            raise TypeError("one of " + ", ".join(repr(a) for a in args))
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"a list of {getattr(args[0], '__name__', args[0])}")
        return tuple(coerce_type(v, args[0]) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError("a bool (true/false)")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("an int")
        if abs(value) > MAX_INT:
            raise TypeError(f"an int within +-{MAX_INT:,}")
        return value
    if hint is float:
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("a number")
        try:
            number = float(value)
        except OverflowError:  # an int past 1e308
            number = math.inf
        if not math.isfinite(number):  # .nan, .inf, 1e999: every check after this would pass or mislead
            raise TypeError("a finite number")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    raise TypeError(f"a {hint}")  # pragma: no cover - every field type used is handled above


def plain(value: Any) -> Any:
    """YAML/MLflow-friendly: tuples become lists."""
    return list(value) if isinstance(value, tuple) else value
