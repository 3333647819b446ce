"""Reading YAML files strictly: one place for the errors every file format shares.

Ladders, search spaces and the price table all start the same way: read the file
(bounded in size, UTF-8), parse the text (bounded in nesting and in what its
aliases expand to, no duplicate keys), insist on a mapping, refuse keys that are
not known. The messages name the file (or the key path inside it) and what was
expected, with a "did you mean" hint for a misspelt key.

The bounds exist because a config file is user input: a few hundred bytes of
nested aliases ("billion laughs") expand to billions of values once harness walks
them, and a huge file costs minutes of parsing before any check runs. Real
configs are a few kilobytes with a handful of levels.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB
MAX_DEPTH = 32  # levels of nested lists and mappings
MAX_NODES = 100_000  # values once every alias is expanded


def read_config_text(path: str | Path, what: str) -> str:
    """The text of a config file, refused clearly if unreadable, too big or not UTF-8.

    ``what`` names the kind of file in messages (``"ladder file"``, ``"search space"``).
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # never more than the limit, whatever the file claims
    except OSError as exc:
        raise ConfigError(f"{what} {p}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{what} {p}: larger than {MAX_CONFIG_BYTES:,} bytes; a config file is expected to be a few kilobytes"
        )
    return decode_text(raw, f"{what} {p}")


def decode_text(raw: bytes, source: str) -> str:
    """``raw`` as UTF-8 (a leading BOM allowed), or a ConfigError naming the offending byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}, line {line}); "
            "save the file as UTF-8"
        ) from None


def load_yaml(text: str, source: str) -> Any:
    """``text`` parsed as YAML with PyYAML's safe loader, within the bounds above.

    Duplicate keys in a mapping are an error (PyYAML silently keeps the last one).
    """
    import yaml

    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES:,} characters; expected a small config")
    loader = _Loader(text)
    loader.source = source
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).replace('in "<unicode string>", ', "").split())
        raise ConfigError(f"{source}: not valid YAML ({detail})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply (more than {MAX_DEPTH} levels)") from None
    finally:
        loader.dispose()


def load_mapping(text: str, source: str, expected: str) -> dict[str, Any]:
    """``text`` parsed as a YAML mapping; ``expected`` says what the mapping should hold."""
    data = load_yaml(text, source)
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


def read_int(value: Any, where: str, minimum: int | None = None) -> int:
    """An integer field (a bool is not one), at least ``minimum`` if given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, but got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, but got {value!r}")
    return value


def read_number(value: Any, where: str) -> float:
    """A finite number field; a string that reads as one counts (YAML 1.1 reads ``1e-3`` as a string)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, but got {value!r}")
    number = float(value) if isinstance(value, float) or abs(value) < 2**1023 else math.inf  # 10**400: too big
    if not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, but got {value!r}")
    return number


def _loader_base() -> type:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_loader_base()):  # type: ignore[misc]
    """PyYAML's safe loader, refusing duplicate keys with their line."""

    source = "<yaml>"

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys
            if key in seen:
                raise ConfigError(
                    f"{self.source}: line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                    f"(first on line {seen[key] + 1}); each key may appear once"
                )
            seen[key] = key_node.start_mark.line
        return dict(super().construct_mapping(node, deep=deep))

    def construct_yaml_timestamp(self, node: Any) -> Any:
        # an impossible date (2026-13-01) raises a bare ValueError inside PyYAML
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise ConfigError(
                f"{self.source}: line {node.start_mark.line + 1}: {node.value!r} is not a valid date ({exc})"
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _check_size(root: Any, source: str) -> None:
    """Refuse a node graph deeper than MAX_DEPTH or expanding to more than MAX_NODES values.

    Aliases make the graph a DAG (or a cycle); sizes are memoised per node so the
    check costs the document's size, not its expansion.
    """
    import yaml

    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH:
            line = node.start_mark.line + 1
            raise ConfigError(f"{source}: nested too deeply (more than {MAX_DEPTH} levels, line {line})")
        if key in open_nodes:
            raise ConfigError(f"{source}: an alias refers to itself (line {node.start_mark.line + 1})")
        total = 1
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            open_nodes.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else [c for kv in node.value for c in kv]
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_NODES:
                    raise ConfigError(
                        f"{source}: expands to more than {MAX_NODES:,} values (aliases included, line "
                        f"{node.start_mark.line + 1}); a config is expected to be small"
                    )
            open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root, 0)
