"""Reading YAML files strictly: one place for the errors every file format shares.

Ladders, search spaces and the price table all start the same way: parse the
text, insist on a mapping, refuse keys that are not known. The messages name the
file (or the key path inside it) and what was expected, with a "did you mean"
hint for a misspelt key.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

from harness.errors import ConfigError


def load_mapping(text: str, source: str, expected: str) -> dict[str, Any]:
    """``text`` parsed as a YAML mapping; ``expected`` says what the mapping should hold."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping ({expected}), but got {type(data).__name__}")
    return data


def strict_keys(data: Mapping[Any, Any], valid: Collection[str], where: str, noun: str = "key") -> None:
    """Raise on the first key of ``data`` not in ``valid``, naming it, a close match and the valid ones."""
    unknown = [str(k) for k in data if str(k) not in valid]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(valid), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        shown = ", ".join(valid if isinstance(valid, list | tuple) else sorted(valid))
        raise ConfigError(f"{where}: unknown {noun} {unknown[0]!r}{hint}; valid {noun}s: {shown}")
