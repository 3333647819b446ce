"""The experiment config: five typed sections, and strict overrides by flat or dotted key.

Keys follow Martin Görner's reference code (``lr0``, ``lr1``, ``lr2``,
``dropout``, ``conv1``..``conv3``, ``dense``, ``bnexp``, ``iterations``,
``batch_size``), so ladders, search spaces and Cloud ML Engine files name a
parameter exactly as the talk's trainers did. A key may be written

- dotted, ``model.conv1``, ``optim.lr0``, ``data.split``: always unambiguous;
- flat, ``conv1``, ``lr0``, ``split``: resolved to the one active section that has it;
- ``task``, ``dataset``, ``model``: the names that choose the named sections.

A key that the chosen task, dataset or model does not use is an error that says
which one it belongs to (``conv1`` on an ``mlp``). Choosing another model keeps the
values of the fields the two models share (``dropout``, ``activation``, ...) and
starts the others at the new model's defaults, as a rung that changes one thing
expects.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from collections.abc import Mapping
from typing import Any

from harness.config import _catalog as catalog
from harness.config._sections import (
    DataParams,
    ModelParams,
    Named,
    OptimParams,
    RunParams,
    Section,
    TaskParams,
    shown,
)
from harness.config._types import coerce_type
from harness.config._yaml import load_yaml
from harness.errors import ConfigError

SECTIONS = ("task", "data", "model", "optim", "run")
NAMED = ("task", "data", "model")
FIXED: dict[str, type[Section]] = {"optim": OptimParams, "run": RunParams}
SELECTORS = {"task": "task", "dataset": "data", "model": "model"}  # flat key -> the named section it chooses
DEFAULTS = {"task": "classification", "data": "mnist", "model": "mlp"}


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one training run needs, as sections. Build with :func:`default_config`."""

    task: TaskParams
    data: DataParams
    model: ModelParams
    optim: OptimParams = dataclasses.field(default_factory=OptimParams)
    run: RunParams = dataclasses.field(default_factory=RunParams)

    def check(self) -> Config:
        """The dataset and the model serve the task (checked once all selectors are applied)."""
        catalog.check_serves("data", self.data.name, self.task.name)
        catalog.check_serves("model", self.model.name, self.task.name)
        catalog.check_trains_on("task", self.task.name, self.run.framework)
        catalog.check_trains_on("model", self.model.name, self.run.framework)
        return self

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain types, one mapping per section (YAML, the resolved ladder)."""
        return {s: getattr(self, s).to_dict() for s in SECTIONS}

    def params(self) -> dict[str, Any]:
        """Flattened with dotted names (``model.conv1``): the MLflow params of a run."""
        return {f"{s}.{k}": v for s, fields in self.to_dict().items() for k, v in fields.items()}

    def section(self, name: str) -> Section:
        section: Section = getattr(self, name)
        return section

    def learning_rate(self, step: int) -> float:
        """The schedule in plain Python, for the ``lr`` metric (the training loop uses the Keras one)."""
        o = self.optim
        if o.schedule == "warmup_cosine":
            warmup = int(o.warmup * self.run.iterations)
            if step < warmup:
                return o.lr1 + (o.lr0 - o.lr1) * step / warmup
            done = min(step - warmup, self.run.iterations - warmup) / max(self.run.iterations - warmup, 1)
            alpha = o.lr1 / o.lr0
            return o.lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * done)) + alpha)
        return o.lr0 if o.lr2 == 0 else o.lr1 + o.lr0 * math.exp(-step / o.lr2)

    def key_of(self, key: str) -> str:
        """The dotted name of a flat or dotted key in this config (``lr0`` -> ``optim.lr0``)."""
        section, field = _resolve(self, key, "")
        return f"{section}.{field}"

    def budget_keys(self) -> frozenset[str]:
        """The dotted keys of this config's budget (``run.iterations``, ``data.train_subset``, ...):
        what a scale may change, as opposed to what a run is (``Section.budget``)."""
        return frozenset(f"{name}.{field}" for name in SECTIONS for field in self.section(name).budget)

    def with_seed(self, seed: int) -> Config:
        return dataclasses.replace(self, run=dataclasses.replace(self.run, seed=seed))


def default_config() -> Config:
    """Classification of MNIST with an MLP (softmax regression), the talk's first rung's defaults."""
    return Config(
        task=_named("task", DEFAULTS["task"]),  # type: ignore[arg-type]
        data=_named("data", DEFAULTS["data"]),  # type: ignore[arg-type]
        model=_named("model", DEFAULTS["model"]),  # type: ignore[arg-type]
    ).check()


def config_from(overrides: Mapping[str, Any], where: str = "config") -> Config:
    """:func:`default_config` with ``overrides`` (flat or dotted keys) applied strictly."""
    return apply_overrides(default_config(), overrides, where)


def config_from_sections(sections: Mapping[str, Mapping[str, Any]], where: str = "config") -> Config:
    """The :class:`Config` that :meth:`Config.to_dict` wrote (a run's ``config.yaml``, a worker's job), checked
    as ``config_from`` checks overrides."""
    overrides: dict[str, Any] = {
        "task": sections["task"]["name"],
        "dataset": sections["data"]["name"],
        "model": sections["model"]["name"],
    }
    for section, values in sections.items():
        overrides.update({f"{section}.{k}": v for k, v in values.items() if k != "name"})
    return config_from(overrides, where)


def _named(kind: str, name: str, carry: Named | None = None, where: str = "") -> Named:
    cls = catalog.params_class(kind, name, where)
    kept = {}
    if carry is not None:  # the fields both have, with the same type (mlp's layers list is not squeezenet's count)
        new, old = cls.hints(), type(carry).hints()
        kept = {k: getattr(carry, k) for k in old if k in new and new[k] == old[k] and k != "name"}
    kept["name"] = name
    return cls(**kept)


def _hint(config: Config, section: str, field: str) -> Any:
    return config.section(section).hints()[field]


def _resolve(config: Config, key: str, where: str) -> tuple[str, str]:
    """(section, field) of ``key`` in ``config``, or a ConfigError that says what is wrong."""
    prefix = f"{where}: " if where else ""
    if key in SELECTORS:
        return SELECTORS[key], "name"
    if "." in key:
        section, _, field = key.partition(".")
        if section not in SECTIONS:
            raise ConfigError(f"{prefix}unknown config section {section!r} in {key!r}; valid: {', '.join(SECTIONS)}")
        if field in config.section(section).hints():
            return section, field
        _not_used(config, section, field, key, prefix)
    homes = [s for s in SECTIONS if key != "name" and key in config.section(s).hints()]
    if len(homes) == 1:
        return homes[0], key
    if len(homes) > 1:
        dotted = ", ".join(f"{s}.{key}" for s in homes)
        raise ConfigError(f"{prefix}key {key!r} is ambiguous here; write one of {dotted}")
    for section in NAMED:
        _not_used(config, section, key, key, prefix, unknown_ok=True)
    valid = valid_keys(config)
    close = difflib.get_close_matches(key, valid + list(_every_key()), n=3)
    hint = f"; did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
    raise ConfigError(f"{prefix}unknown config key {key!r}{hint} Valid keys here: {', '.join(valid)}")


def _not_used(config: Config, section: str, field: str, key: str, prefix: str, unknown_ok: bool = False) -> None:
    """Raise: ``field`` belongs to another task/dataset/model than the one chosen."""
    if section in NAMED:
        others = catalog.owners(section, field)
        if others:
            noun = catalog.NOUNS[section]
            current = config.section(section).name  # type: ignore[attr-defined]
            raise ConfigError(
                f"{prefix}key {key!r} is not used by {noun} {current!r}; it is a parameter of "
                f"{noun} {', '.join(others)}"
            )
    if unknown_ok:
        return
    fields = list(config.section(section).hints())
    close = difflib.get_close_matches(field, fields, n=1)
    hint = f" (did you mean {section}.{close[0]}?)" if close else ""
    raise ConfigError(f"{prefix}unknown key {key!r}{hint}; section {section} has: {', '.join(fields)}")


def valid_keys(config: Config) -> list[str]:
    """Every key this config accepts, flat where unambiguous."""
    out = list(SELECTORS)
    for section in SECTIONS:
        out += [f for f in config.section(section).hints() if f != "name"]
    return out


def _every_key() -> set[str]:
    keys = set(SELECTORS)
    for section, base in {**catalog.BASES, **FIXED}.items():
        classes = [catalog.params_class(section, n) for n in catalog.names(section)] if section in NAMED else [base]
        for cls in classes:
            keys.update(k for k in cls.hints() if k != "name")
            keys.update(f"{section}.{k}" for k in cls.hints())
    return keys


def apply_overrides(config: Config, overrides: Mapping[str, Any], where: str) -> Config:
    """A new Config with ``overrides`` applied strictly; errors name ``where`` and the key.

    Selectors (``task``, ``dataset``, ``model`` or ``*.name``) apply first, so a
    rung may choose a model and set its parameters in one mapping; whether the
    dataset and model serve the task is checked once, at the end.
    """
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}: expected a mapping of config keys, but got {overrides!r}")
    items = [(str(k), v) for k, v in overrides.items()]
    selectors = [(k, v) for k, v in items if k in SELECTORS or (k.endswith(".name") and k[:-5] in NAMED)]
    for key, value in sorted(selectors, key=lambda kv: NAMED.index(SELECTORS.get(kv[0], kv[0][:-5]))):
        section = SELECTORS.get(key, key[:-5])
        name = _coerce(value, str, key, where)
        current = config.section(section)
        if name != current.name:  # type: ignore[attr-defined]
            switched = _named(section, name, carry=current, where=where)  # type: ignore[arg-type]
            config = _rebuild(config, {section: switched}, where)
    chosen = {k for k, _ in selectors}
    changes: dict[str, dict[str, Any]] = {}
    for key, value in items:
        if key in chosen:
            continue
        section, field = _resolve(config, key, where)
        changes.setdefault(section, {})[field] = _coerce(value, _hint(config, section, field), key, where)
    replaced = {}
    for section, fields in changes.items():
        try:
            replaced[section] = dataclasses.replace(config.section(section), **fields)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    config = _rebuild(config, replaced, where)
    try:
        return config.check()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _rebuild(config: Config, sections: Mapping[str, Section], where: str) -> Config:
    try:
        return dataclasses.replace(config, **sections)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(value: Any, hint: Any, key: str, where: str) -> Any:
    try:
        return coerce_type(value, hint)
    except TypeError as exc:
        raise ConfigError(f"{where}: key {key!r} expects {exc}, but got {shown(value)}") from None


def coerce(key: str, value: Any, where: str) -> Any:
    """``value`` checked against the type of ``key`` in whichever registered section has it.

    For files read before the experiment is known (search spaces): whether the
    chosen model uses the key is checked later, by :func:`apply_overrides`.
    """
    if key in SELECTORS:
        return _coerce(value, str, key, where)
    hints = _hints_of(key)
    if not hints:
        close = difflib.get_close_matches(key, sorted(_every_key()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"{where}: unknown config key {key!r}{hint}")
    expected = []
    for h in dict.fromkeys(hints):  # one key, several owners (mlp's layers is a list, squeezenet's a count)
        try:
            return coerce_type(value, h)
        except TypeError as exc:
            expected.append(str(exc))
    raise ConfigError(f"{where}: key {key!r} expects {' or '.join(dict.fromkeys(expected))}, but got {shown(value)}")


def _hints_of(key: str) -> list[Any]:
    section, dot, field = key.partition(".")
    sections = [section] if dot else list(SECTIONS)
    field = field if dot else key
    out = []
    for s in sections:
        if s in FIXED:
            classes: list[type[Section]] = [FIXED[s]]
        elif s in NAMED:
            classes = [catalog.params_class(s, n) for n in catalog.names(s)]
        else:
            continue
        out += [cls.hints()[field] for cls in classes if field in cls.hints() and field != "name"]
    return out


def is_key(key: str) -> bool:
    """Whether any registered section has ``key`` (flat or dotted) or it is a selector."""
    return key in SELECTORS or bool(_hints_of(key))


def selector_section(key: str) -> str | None:
    """``model``/``model.name`` -> ``model``; None for any other key."""
    if key in SELECTORS:
        return SELECTORS[key]
    if key.endswith(".name") and key[:-5] in NAMED:
        return key[:-5]
    return None


def parse_cli_overrides(items: list[str], flag: str = "--set") -> dict[str, Any]:
    """``["lr0=0.01", "layers=[200,100]"]`` -> dict; values are parsed as YAML scalars.
    ``flag`` is the option errors name (``--vary`` parses its values here too)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, but got {item!r}")
        out[key.strip()] = load_yaml(raw, f"{flag} {key.strip()}") if raw.strip() else None
    return out


def parse_variants(items: list[str]) -> tuple[dict[str, Any], ...]:
    """``["split=scene,random", "seed=1,2"]`` -> every combination, as override dicts."""
    axes = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise ConfigError(f"--vary expects KEY=V1,V2,..., but got {item!r}")
        try:
            values = [parse_cli_overrides([f"{key}={v}"], "--vary")[key.strip()] for v in raw.split(",")]
        except ConfigError as exc:
            if "," not in raw or not any(c in raw for c in "[]{}"):
                raise
            # the values are split at every comma, so a list value cannot hold one
            pieces = ", ".join(repr(v) for v in raw.split(","))
            raise ConfigError(
                f"{exc}; --vary splits {raw!r} at each comma into the values {pieces}, so a list value "
                "cannot hold a comma (one-entry lists work: [16],[32]); put longer lists in a ladder's rungs"
            ) from None
        axes.append([(key.strip(), v) for v in values])
    return tuple(dict(combo) for combo in itertools.product(*axes)) if axes else ({},)
