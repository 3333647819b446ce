"""The search space: one dataclass, whichever file format it was read from.

A :class:`SearchSpace` says what a study tunes (a ladder rung or a plain config,
plus fixed overrides), the objective (by name, and the direction if the file
gives one), the budget, the default sampler and pruner, and the parameters. Every
parameter is a config key (flat as the talk's trainers name it, or dotted); its
candidate values are type-checked with ``harness.config.coerce`` when the file is
read, so an unknown name or a value of the wrong type is an error naming the file
and the field.

One parser produces it: :mod:`harness.studies._native` (the harness YAML format);
:mod:`harness.studies._cmle` translates Cloud ML Engine / AI Platform
``trainingInput.hyperparameters`` files, read unchanged, into that form. ``resolve`` then fixes
the base :class:`Config` (rung at a scale, fixed overrides, command line), checks
that the chosen model, dataset and task use every tuned key, and finds the
objective among the *task's* objectives (``IOU`` is a detection objective).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import harness.data
import harness.models
import harness.tasks  # noqa: F401  (these register the config sections of every task, dataset and model)
from harness.config import Config, apply_overrides, coerce, default_config, is_key, selector_section
from harness.errors import ConfigError
from harness.hardware import Tier
from harness.tasks import Direction, Objective, get_task

ParamKind = Literal["int", "float", "categorical"]
Scale = Literal["linear", "log", "reverse_log"]
OptunaValue = str | int | float | bool | None

SAMPLERS = ("grid", "random", "tpe", "gp", "cmaes")
PRUNERS = ("none", "median", "hyperband")
MAX_GRID_POINTS = 100_000  # grid sampler: points enumerated (and kept in memory by Optuna)
NOT_TUNABLE = ("backend", "run.backend", "task", "dataset", "model")  # one worker: one strategy and dataset


@dataclasses.dataclass(frozen=True)
class ObjectiveRef:
    """The objective as a file names it; :meth:`SearchSpace.resolve` finds it in the task's objectives."""

    name: str  # accuracy, loss, IOU, best_test_accuracy, ... (the task decides what exists)
    direction: Direction | None  # as the file says (CMLE goal, native objective.direction), if it does
    where: str  # the file and field, for messages


def objective_ref(tag: Any, direction: Any, where: str, direction_where: str) -> ObjectiveRef:
    if not isinstance(tag, str) or not tag.strip():
        raise ConfigError(f"{where}: expected an objective metric name such as accuracy or loss, but got {tag!r}")
    if direction is not None and direction not in ("maximize", "minimize"):
        raise ConfigError(f"{direction_where}: expected maximize or minimize, but got {direction!r}")
    return ObjectiveRef(tag.strip(), direction, where)


@dataclasses.dataclass(frozen=True)
class Budget:
    """Counted over all trials of the study, old and new, across every worker."""

    max_trials: int
    max_parallel: int | None = None  # trials running at once, over all workers; None: no limit
    max_failed: int | None = None  # failed trials that stop the study; None: no limit below the budget

    def __post_init__(self) -> None:
        if self.max_trials < 0:
            raise ValueError(f"max_trials must be >= 0, but got {self.max_trials=}")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ValueError(f"max_parallel must be >= 1 or None, but got {self.max_parallel=}")
        if self.max_failed is not None and self.max_failed < 1:
            raise ValueError(f"max_failed must be >= 1 or None, but got {self.max_failed=}")


@dataclasses.dataclass(frozen=True)
class PrunerSpec:
    name: str = "none"  # none | median | hyperband
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in PRUNERS:
            raise ValueError(f"pruner must be one of {PRUNERS}, but got {self.name=}")


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One tuned Config key and how to sample it.

    ``choices`` are what Optuna sees (None, bool, int, float or str); ``values``
    maps a choice to the Config value when they differ (e.g. ``'S'`` -> ``(4, 3, 2)``).
    """

    name: str
    kind: ParamKind
    where: str  # file and field, for messages
    low: float | None = None
    high: float | None = None
    scale: Scale = "linear"
    step: float | None = None
    grid: tuple[OptunaValue, ...] | None = None  # grid points (ints and floats); None = none given
    choices: tuple[OptunaValue, ...] = ()
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # str(choice) -> Config value

    def __post_init__(self) -> None:
        if self.kind == "categorical":
            if not self.choices:
                raise ValueError(f"a categorical parameter needs choices, but got {self.choices=}")
            return
        if self.low is None or self.high is None or not self.low <= self.high:
            raise ValueError(f"{self.name}: needs low <= high, but got {self.low=} and {self.high=}")
        if self.scale != "linear" and self.low <= 0:
            raise ValueError(f"{self.name}: a {self.scale} scale needs low > 0, but got {self.low=}")

    @property
    def optuna_name(self) -> str:
        """The name in the Optuna study; a reverse-log parameter is sampled in a mirrored space."""
        return f"{self.name}__reverse_log" if self.scale == "reverse_log" else self.name

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        assert self.low is not None and self.high is not None
        log = self.scale != "linear"
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=log, step=self.step)

    def suggest(self, trial: Any) -> Any:
        """Ask the trial for this parameter; return the Config value."""
        if self.kind == "categorical":
            return self.to_config(trial.suggest_categorical(self.optuna_name, list(self.choices)))
        assert self.low is not None and self.high is not None
        log = self.scale != "linear"
        if self.kind == "int":
            step = int(self.step or 1)
            raw: float = trial.suggest_int(self.optuna_name, int(self.low), int(self.high), step=step, log=log)
        else:
            raw = trial.suggest_float(self.optuna_name, float(self.low), float(self.high), step=self.step, log=log)
        return self.to_config(raw)

    def to_config(self, raw: Any) -> Any:
        """An Optuna value (choice label or sampled number) -> the Config value."""
        if self.kind == "categorical":
            return self.values.get(str(raw), raw) if self.values else raw
        if self.scale == "reverse_log":  # mirror: dense near the top of [low, high]
            assert self.low is not None and self.high is not None
            value = self.low + self.high - raw
            return round(value) if self.kind == "int" else value
        return raw

    def shown(self, trial_params: Mapping[str, Any]) -> OptunaValue:
        """The trial's value as the space file writes it: a choice's label (``S``), an int as an int."""
        raw = trial_params[self.optuna_name]
        if self.kind == "categorical":
            return raw
        value = self.to_config(raw)
        return round(value) if self.kind == "int" else float(value)

    def grid_count(self) -> int:
        """How many grid points :meth:`grid_points` would list, counted without listing them."""
        if self.kind == "categorical":
            return len(self.choices)
        if self.grid is not None:
            return len(self.grid)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        if self.step is not None:
            return math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return len(self.grid_points())  # raises: a float without grid points

    def grid_points(self) -> list[OptunaValue]:
        """The values the grid sampler visits (Optuna's side)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.grid is not None:
            return list(self.grid)
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is not None:
            assert self.low is not None and self.high is not None
            n = math.floor((self.high - self.low) / self.step + 1e-9) + 1
            return [round(self.low + i * self.step, 12) for i in range(n)]
        raise ConfigError(
            f"{self.where}: float parameter {self.name!r} has no grid points, so the grid sampler "
            "cannot use it; give it `grid: [...]` (or a `step`), or use --sampler random/tpe"
        )

    def config_candidates(self) -> list[Any]:
        """Config values to validate up front: the bounds, grid points and every choice."""
        if self.kind == "categorical":
            return [self.to_config(c) for c in self.choices]
        assert self.low is not None and self.high is not None
        numbers: list[Any] = [self.low, self.high, *(self.grid or ())]
        return [int(v) if self.kind == "int" else float(v) for v in numbers]

    def check_types(self) -> ParamSpec:
        """Every candidate value has the Config field's type (an int field refuses 0.5)."""
        for value in self.config_candidates():
            coerce(self.name, value, self.where)
        return self

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind}
        if self.kind == "categorical":
            out["choices"] = list(self.choices)
            if self.values:
                out["values"] = {k: _plain(v) for k, v in self.values.items()}
        else:
            out.update(low=self.low, high=self.high, scale=self.scale)
            if self.step is not None:
                out["step"] = self.step
            if self.grid is not None:
                out["grid"] = list(self.grid)
        return out


@dataclasses.dataclass(frozen=True)
class ExperimentRef:
    """What a space tunes: a ladder rung, or a plain config (Config defaults + ``config``)."""

    ladder: str | None = None
    rung: str | None = None  # name or 1-based index
    scale: str = "standard"
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.ladder:
            return f"{self.ladder}:{self.rung}@{self.scale}"
        return "config"

    @classmethod
    def parse(cls, text: str, where: str) -> ExperimentRef:
        """``LADDER:RUNG`` (e.g. ``mnist:cnn`` or ``mnist:6``) from the command line."""
        ladder, sep, rung = text.partition(":")
        if not sep or not ladder.strip() or not rung.strip():
            raise ConfigError(f"{where}: expected LADDER:RUNG such as mnist:cnn, but got {text!r}")
        return cls(ladder=ladder.strip(), rung=rung.strip())


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A search space as read from a file (not yet resolved against a ladder)."""

    name: str
    source: str  # the file it was read from
    format: Literal["native", "cmle"]
    text: str  # the file, verbatim
    experiment: ExperimentRef | None  # None: the file does not say (Cloud ML Engine files)
    fixed: Mapping[str, Any]  # Config overrides for every trial
    objective: ObjectiveRef
    budget: Budget
    sampler: str  # default sampler name (--sampler overrides)
    sampler_options: Mapping[str, Mapping[str, Any]]  # per sampler name: constructor options
    pruner: PrunerSpec
    params: tuple[ParamSpec, ...]
    tier: Tier | None = None
    notes: tuple[str, ...] = ()  # warnings about settings harness cannot honour exactly
    # --scale on the command line sets the scale's budget keys (iterations, subsets) over ``fixed``'s;
    # false: the file's fixed budget stands at every scale (the study's output says so)
    scale_overrides_fixed: bool = True

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"parameter names must be unique, but got {names=}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, but got {self.sampler=}")

    def param(self, name: str) -> ParamSpec:
        return next(p for p in self.params if p.name == name)

    def grid(self) -> dict[str, list[OptunaValue]]:
        """Optuna name -> grid points; an error names every float without grid points.

        The grid is counted before it is built: a wide integer range or a tiny float
        step would otherwise fill memory before any trial runs.
        """
        size = self.grid_size()
        if size > MAX_GRID_POINTS:
            counts = ", ".join(f"{p.name} {p.grid_count():,}" for p in self.params)
            raise ConfigError(
                f"{self.source}: the grid has {size:,} points ({counts}), more than the {MAX_GRID_POINTS:,} "
                "the grid sampler will enumerate; give wider steps or fewer grid points, or use random/tpe"
            )
        return {p.optuna_name: p.grid_points() for p in self.params}

    def grid_size(self) -> int:
        return math.prod(p.grid_count() for p in self.params)

    def resolve(
        self,
        experiment: ExperimentRef | None = None,
        scale: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ResolvedSpace:
        """Fix the base Config: experiment (file, else ``experiment``), scale, fixed, command line.

        Every parameter's bounds, grid points and choices are applied to the base config
        once here, so a value the Config refuses fails now, not in the middle of a study.
        """
        ref = experiment or self.experiment
        if ref is None:
            from harness.ladders import builtin_rungs

            # a guess would tune the wrong model quietly: the rungs it could name, instead
            rungs = "; ".join(f"{name}: {', '.join(names)}" for name, names in builtin_rungs().items())
            why = (
                "--experiment LADDER:RUNG is required for a Cloud ML Engine file (it does not say what it tunes)"
                if self.format == "cmle"
                else "the file does not say which experiment it tunes; pass --experiment LADDER:RUNG"
            )
            raise ConfigError(f"{self.source}: {why}, e.g. --experiment mnist:cnn; built-in rungs: {rungs}")
        if scale:
            ref = dataclasses.replace(ref, scale=scale)
        base, scale_keys = _experiment_config(ref, self.source)
        tier_backend = None
        if self.tier is not None and "backend" not in self.fixed and "backend" not in (overrides or {}):
            tier_backend = self.tier.backend
            base = apply_overrides(base, {"backend": tier_backend}, f"{self.source}: scale tier {self.tier.name}")
        fixed, scale_notes = self._fixed_at(scale, base, scale_keys) if scale else (dict(self.fixed), ())
        base = apply_overrides(base, fixed, f"{self.source}: fixed")
        base = apply_overrides(base, overrides or {}, "command line (--set)")
        for p in self.params:
            for value in p.config_candidates():
                apply_overrides(base, {p.name: value}, f"{p.where} (tuning {ref.label}: {base.model.name} model)")
        task = get_task(base.task.name)
        objective = task.objective(self.objective.name, self.objective.where)
        if self.objective.direction is not None and self.objective.direction != objective.direction:
            raise ConfigError(
                f"{self.objective.where}: direction {self.objective.direction!r} contradicts objective "
                f"{objective.name!r}, which task {task.name} {objective.direction}s"
            )
        keys = {p.name: base.key_of(p.name) for p in self.params}
        return ResolvedSpace(self, ref, base, dict(overrides or {}), tier_backend, objective, keys, scale_notes)

    def _fixed_at(
        self, scale: str, base: Config, scale_keys: Mapping[str, Any]
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """``fixed`` under ``--scale``: the budget keys the scale sets (iterations, subsets) win over the
        file's, as the scale wins over a ladder rung's, unless the file says ``scale_overrides_fixed: false``;
        a note says which either way, for the study's output."""
        budget = base.budget_keys()
        scaled = {}  # dotted key -> the scale's value, for the scale's budget keys
        for key, value in scale_keys.items():
            with contextlib.suppress(ConfigError):  # a key of another model: the ladder's own check says so
                if base.key_of(str(key)) in budget:
                    scaled[base.key_of(str(key))] = value
        fixed, met = dict(self.fixed), []
        for key, value in self.fixed.items():
            try:
                dotted = base.key_of(str(key))
            except ConfigError:
                continue  # applying ``fixed`` names the problem
            if dotted in scaled and scaled[dotted] != value:
                met.append((key, value, scaled[dotted]))
                if self.scale_overrides_fixed:
                    del fixed[key]
        if not met:
            return fixed, ()
        if self.scale_overrides_fixed:
            changes = ", ".join(f"{k}={v} → {s}" for k, v, s in met)
            return fixed, (
                f"--scale {scale} sets the budget over {self.source}'s fixed values: {changes} "
                "(write scale_overrides_fixed: false in the file to keep its own)",
            )
        kept = ", ".join(f"{k}={v}" for k, v, _ in met)
        instead = ", ".join(f"{k}={s}" for k, _, s in met)
        return fixed, (
            f"{self.source} says scale_overrides_fixed: false: its fixed {kept} stand at --scale {scale} "
            f"(the scale alone would set {instead})",
        )


@dataclasses.dataclass(frozen=True)
class ResolvedSpace:
    """A search space with its base Config: ready to turn trial parameters into configs."""

    space: SearchSpace
    experiment: ExperimentRef
    base: Config
    overrides: Mapping[str, Any]  # the command line's --set, already in ``base``
    tier_backend: str | None  # backend asked for by a Cloud ML Engine scale tier (may fall back)
    objective: Objective  # the base config's task's objective that the file names
    keys: Mapping[str, str]  # parameter name -> dotted config key (its MLflow param)
    scale_notes: tuple[str, ...] = ()  # how --scale met the file's fixed budget (the study prints them)

    @property
    def direction(self) -> Direction:
        return self.objective.direction

    def config_for(self, values: Mapping[str, Any], where: str) -> Config:
        return apply_overrides(self.base, values, where)

    def describe(self) -> dict[str, Any]:
        """Everything that defines the study's trials; its hash must not change on resume."""
        s = self.space
        return {
            "space": s.name,
            "experiment": self.experiment.label,
            "objective": {"metric": s.objective.name, "key": self.objective.final_key, "direction": self.direction},
            "base_config": self.base.to_dict(),
            "params": {p.name: p.describe() for p in s.params},
        }

    def fingerprint(self) -> str:
        from harness.tracking import space_fingerprint

        return space_fingerprint(self.describe())


def _experiment_config(ref: ExperimentRef, source: str) -> tuple[Config, Mapping[str, Any]]:
    """The experiment's config, and the keys its ladder's scale sets ({} without a ladder)."""
    from harness.ladders import SCALES, load_ladder

    if ref.ladder is None:
        return apply_overrides(default_config(), ref.config, f"{source}: experiment.config"), {}
    if ref.scale not in SCALES:
        raise ConfigError(f"{source}: unknown scale {ref.scale!r}; valid: {', '.join(SCALES)}")
    ladder = load_ladder(ref.ladder)
    rung = str(ref.rung)
    try:
        chosen = ladder.select(rung)
    except ConfigError as exc:
        raise ConfigError(f"{source}: experiment rung {rung!r}: {exc}") from None
    if len(chosen.rungs) != 1:
        raise ConfigError(f"{source}: experiment rung must name one rung of {ladder.name}, but got {rung!r}")
    cfg = chosen.configs(ref.scale)[0][1]
    return apply_overrides(cfg, ref.config, f"{source}: experiment.config"), ladder.scales[ref.scale]


def check_param_name(name: Any, where: str) -> str:
    """A tunable config key, or an error naming the file and field.

    Whether the chosen model, dataset or task uses it is checked when the space is
    resolved against its experiment.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: expected a config key as parameter name, but got {name!r}")
    if not is_key(name):
        coerce(name, None, where)  # raises: unknown config key, with close matches
    if name in NOT_TUNABLE or selector_section(name) is not None:
        raise ConfigError(f"{where}: {name!r} cannot be tuned (one worker holds one {name}); fix it instead")
    return name


def is_optuna_value(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def space_name_from(source: str) -> str:
    """``search_spaces/mnist_cnn_hptune.yaml`` -> ``mnist-cnn-hptune``."""
    return Path(source).stem.replace("_", "-").lower()
