"""Ladders as data: a base config plus an ordered list of rungs, each a small override.

A ladder file is YAML (see ``mnist.yaml``). Everything is checked strictly on
load: an unknown key, a wrong type, or a key the rung's model, dataset or task
does not use is an error naming the file, the rung and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import harness.data
import harness.models
import harness.tasks
from harness._paths import check_name
from harness.config import (
    Config,
    apply_overrides,
    default_config,
    load_mapping,
    load_yaml,
    read_config_text,
    strict_keys,
)
from harness.errors import ConfigError

SCALES = ("smoke", "standard", "full")
_TOP_KEYS = {"name", "title", "metric", "notes", "base", "scales", "rungs"}
_RUNG_KEYS = {"name", "changes", "reference", "note", "set"}


@dataclasses.dataclass(frozen=True)
class Rung:
    index: int  # 1-based, as in the talk
    name: str
    changes: str  # one line: what this rung changes
    reference: float | None  # the talk's result for ``Ladder.metric``
    note: str
    config: Config  # resolved: base + every rung up to this one


@dataclasses.dataclass(frozen=True)
class Ladder:
    name: str
    title: str
    metric: str  # the per-evaluation metric the references quote (test_accuracy); default: the task's primary
    source: str  # the file it was read from
    scales: dict[str, dict[str, Any]]
    rungs: tuple[Rung, ...]
    notes: tuple[str, ...] = ()  # where the ladder differs from its reference, on purpose; printed in reports
    selected: str = ""  # the --rungs selection that kept only some rungs; "" = all of them

    def configs(self, scale: str, overrides: Mapping[str, Any] | None = None) -> list[tuple[Rung, Config]]:
        """Each rung's config at ``scale``, then the user's overrides on top."""
        if scale not in self.scales:
            raise ConfigError(f"{self.source}: unknown scale {scale!r}; valid: {', '.join(self.scales)}")
        out = []
        for rung in self.rungs:
            cfg = apply_overrides(rung.config, self.scales[scale], f"{self.source}: scales.{scale}")
            cfg = apply_overrides(cfg, overrides or {}, f"command line (rung {rung.index} {rung.name})")
            out.append((rung, cfg))
        return out

    def select(self, spec: str | None) -> Ladder:
        """Keep rungs by 1-based index or name: ``"1,3-5,cnn"``."""
        if not spec:
            return self
        keep: set[int] = set()
        by_name = {r.name: r.index for r in self.rungs}
        n = len(self.rungs)
        for part in spec.split(","):
            part = part.strip()
            lo, dash, hi = part.partition("-")
            if part in by_name:
                keep.add(by_name[part])
            elif lo.isascii() and lo.isdigit() and (not dash or (hi.isascii() and hi.isdigit())):
                # bounds first: a range is never built past the ladder's own length
                first, last = int(lo), int(hi if dash else lo)
                if first > last:
                    raise ConfigError(f"--rungs: range {part!r} runs backwards; write it {last}-{first}")
                if first < 1 or last > n:
                    raise ConfigError(f"--rungs: {part!r} is outside the rungs of {self.name} (1..{n})")
                keep.update(range(first, last + 1))
            else:
                raise ConfigError(
                    f"--rungs: cannot parse {part!r}; use indices or ranges (1..{n}) or names: {', '.join(by_name)}"
                )
        kept = tuple(r for r in self.rungs if r.index in keep)
        return dataclasses.replace(self, rungs=kept, selected="" if len(kept) == n else spec)


def builtin_ladders() -> dict[str, str]:
    """Name -> title of every ladder shipped inside the package."""
    out = {}
    for entry in sorted(resources.files("harness.ladders").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = load_yaml(entry.read_text(encoding="utf-8"), f"harness/ladders/{entry.name}") or {}
            out[entry.name.removesuffix(".yaml")] = str(data.get("title", ""))
    return out


def builtin_rungs() -> dict[str, tuple[str, ...]]:
    """Name -> rung names of every built-in ladder: what ``--experiment LADDER:RUNG`` can name."""
    return {name: tuple(r.name for r in load_ladder(name).rungs) for name in builtin_ladders()}


def load_ladder(name_or_path: str) -> Ladder:
    """A built-in ladder by name, or a ladder file by path."""
    path = Path(name_or_path)
    builtin = builtin_ladders()
    # a built-in name wins over a folder (or file) of that name where the command runs: a data folder
    # called mnist/ must not turn `harness ladder mnist` into "cannot read it (Is a directory)"
    if path.suffix in (".yaml", ".yml") or (name_or_path not in builtin and path.exists()):
        return parse_ladder(read_config_text(path, "ladder file"), str(path))
    if name_or_path not in builtin:
        close = difflib.get_close_matches(name_or_path, list(builtin), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown ladder {name_or_path!r}{hint}; valid ladders: {', '.join(builtin)} "
            "(or give the path of a ladder .yaml file)"
        )
    text = resources.files("harness.ladders").joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
    return parse_ladder(text, f"harness/ladders/{name_or_path}.yaml")


def _text(data: Mapping[str, Any], key: str, where: str, default: str) -> str:
    """``data[key]``, which must be text (YAML turns ``[a, b]`` into a list, ``2`` into a number)."""
    value = data.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, but got {key}={value!r} ({type(value).__name__})")
    return value


def parse_ladder(text: str, source: str) -> Ladder:
    data = load_mapping(text, source, f"keys {', '.join(sorted(_TOP_KEYS))}")
    strict_keys(data, _TOP_KEYS, source)
    for key in ("name", "rungs"):
        if key not in data:
            raise ConfigError(f"{source}: missing required key {key!r}")
    scales = data.get("scales") or {"standard": {}}
    if not isinstance(scales, dict):
        raise ConfigError(f"{source}: scales must be a mapping of scale name to overrides")
    for scale, over in scales.items():
        if scale not in SCALES:
            raise ConfigError(f"{source}: unknown scale {scale!r}; valid: {', '.join(SCALES)}")
        scales[scale] = over or {}
    cfg = apply_overrides(default_config(), data.get("base") or {}, f"{source}: base")
    rungs = data["rungs"]
    if not isinstance(rungs, list) or not rungs:
        raise ConfigError(f"{source}: rungs must be a non-empty list")
    parsed = []
    set_by: dict[str, Rung | None] = {}  # dotted key -> the first rung that sets it (filled in below)
    for i, raw in enumerate(rungs, start=1):
        where = f"{source}: rungs[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping with keys {sorted(_RUNG_KEYS)}")
        strict_keys(raw, _RUNG_KEYS, where)
        name = _text(raw, "name", where, f"rung{i}")
        check_name(name, f"{where}.name", ConfigError)  # it names files and folders (reports, TensorBoard)
        cfg = apply_overrides(cfg, raw.get("set") or {}, f"{where} ({name}).set")
        reference = raw.get("reference")
        if reference is not None and (
            isinstance(reference, bool) or not isinstance(reference, int | float) or not math.isfinite(reference)
        ):
            raise ConfigError(f"{where}: reference must be a finite number, but got reference={reference!r}")
        changes, note = _text(raw, "changes", where, ""), _text(raw, "note", where, "")
        parsed.append(Rung(i, name, changes, reference, note, cfg))
        for key in raw.get("set") or {}:
            set_by.setdefault(cfg.key_of(str(key)), parsed[-1])
    name = _text(data, "name", source, "")
    check_name(name, f"{source}: name", ConfigError)
    task = harness.tasks.get_task(parsed[0].config.task.name)
    metric = _text(data, "metric", source, f"test_{task.primary}")
    valid = [f"test_{m}" for m in task.metric_names]
    if metric not in valid:
        raise ConfigError(f"{source}: metric must be one of {', '.join(valid)} (task {task.name}), but got {metric!r}")
    notes = data.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ConfigError(f"{source}: notes must be a list of strings, but got {notes!r}")
    ladder = Ladder(
        notes=tuple(notes),
        name=name,
        title=_text(data, "title", source, name),
        metric=metric,
        source=source,
        scales=scales,
        rungs=tuple(parsed),
    )
    for scale in scales:  # check every scale's keys now, not halfway through a run
        for _, scaled in ladder.configs(scale):
            _check_scale_keys(source, scale, scales[scale], scaled, set_by)
    return ladder


_NEVER_SCALED = frozenset({"task.name", "model.name"})  # what a ladder compares: no scale may swap them


def _check_scale_keys(
    source: str, scale: str, keys: Mapping[str, Any], scaled: Config, set_by: Mapping[str, Any]
) -> None:
    """A scale changes a rung's budget (steps, data subsets, evaluation sizes), never what the rung is: a
    scale key that a rung sets is refused unless it is a budget key (``Config.budget_keys``), so that the
    rung named ``layers17`` trains 17 layers at every scale."""
    budget = scaled.budget_keys()
    for key in keys:
        dotted = scaled.key_of(str(key))
        rung = set_by.get(dotted)
        if dotted in _NEVER_SCALED:
            why = f"but it chooses the {dotted.partition('.')[0]} of every rung"
        elif rung is not None and dotted not in budget:
            why = f"but rung {rung.index} ({rung.name}) sets {key}"
        else:
            continue
        allowed = ", ".join(sorted(k.partition(".")[2] for k in budget))
        raise ConfigError(
            f"{source}: scales.{scale}.{key}: a scale may change a rung's budget ({allowed}), never what the "
            f"rung is, {why}; remove {key} from scales.{scale} (make the scale cheaper with fewer steps or "
            "less data instead)"
        )
