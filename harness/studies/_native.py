"""The harness's own search-space format (YAML), parsed strictly.

Example (``search_spaces/mnist_cnn.yaml`` is a complete one)::

    name: mnist-cnn                       # study names default to <name>-<sampler>
    experiment: {ladder: mnist, rung: cnn, scale: standard}   # or {config: {...}}
    fixed: {iterations: 1500}             # Config overrides for every trial
    scale_overrides_fixed: true           # default: --scale smoke sets its iterations/subsets over fixed's
    objective: {metric: accuracy}         # an objective of the task: accuracy | loss | best_test_accuracy | ...
    budget: {max_trials: 12, max_parallel: 2, max_failed: 3}
    sampler: tpe                          # default; --sampler overrides
    sampler_options: {tpe: {n_startup_trials: 4}}
    pruner: none                          # none | median | hyperband, or {name: median, n_warmup_steps: 500}
    params:
      lr0: {type: float, low: 0.0003, high: 0.03, log: true, grid: [0.001, 0.003, 0.01]}
      dense: {type: int, low: 50, high: 300, step: 50}
      optimizer: {type: categorical, choices: [adam, sgd]}
      filter_sizes: {type: categorical, choices: [S, M]}   # words the model declares (value_aliases)

``log: reverse`` samples ``low + high - x`` with ``x`` log-uniform: values crowd towards ``high``
(Cloud ML Engine's UNIT_REVERSE_LOG_SCALE; Optuna records it as ``<name>__reverse_log``).

This is the one parameter schema: a Cloud ML Engine file is translated into it
(:mod:`harness.studies._cmle`) and checked by :func:`read_param`, with the file's own key names
in the messages. Every error names the file and the field (``params.lr0.grid``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from harness.config import coerce, load_yaml, read_int, read_number, strict_keys, value_aliases
from harness.errors import ConfigError
from harness.studies._samplers import check_pruner, check_sampler_options
from harness.studies._space import (
    SAMPLERS,
    Budget,
    ExperimentRef,
    ParamSpec,
    Scale,
    SearchSpace,
    check_param_name,
    is_optuna_value,
    objective_ref,
    space_name_from,
)

TOP = (
    "name",
    "title",
    "experiment",
    "fixed",
    "scale_overrides_fixed",
    "objective",
    "budget",
    "sampler",
    "sampler_options",
    "pruner",
    "params",
)
EXPERIMENT = ("ladder", "rung", "scale", "config")
OBJECTIVE = ("metric", "direction")
BUDGET = ("max_trials", "max_parallel", "max_failed")
NUMERIC = ("type", "low", "high", "log", "step", "grid")
CATEGORICAL = ("type", "choices")
TYPES = ("int", "float", "categorical")


def parse_native(data: dict[str, Any], text: str, source: str) -> SearchSpace:
    strict_keys(data, TOP, source, "field")
    for key in ("objective", "budget", "params"):
        if key not in data:
            raise ConfigError(f"{source}: missing required field {key!r}")
    name = data.get("name", space_name_from(source))
    if not isinstance(name, str) or not name.strip() or any(c.isspace() or c == "/" for c in name):
        raise ConfigError(f"{source}: name must be a word without spaces or '/', but got {name!r}")

    experiment = _experiment(data.get("experiment"), f"{source}: experiment")
    fixed = _mapping(data.get("fixed"), f"{source}: fixed")
    for key, value in fixed.items():
        fixed[key] = coerce(str(key), value, f"{source}: fixed.{key}")
    scale_overrides_fixed = data.get("scale_overrides_fixed", True)
    if not isinstance(scale_overrides_fixed, bool):
        raise ConfigError(
            f"{source}: scale_overrides_fixed: expected true (--scale sets iterations and subsets over fixed) "
            f"or false (fixed stands at every scale), but got {scale_overrides_fixed!r}"
        )

    objective = _mapping(data["objective"], f"{source}: objective")
    strict_keys(objective, OBJECTIVE, f"{source}: objective", "field")
    metric = objective_ref(
        objective.get("metric"),
        objective.get("direction"),
        f"{source}: objective.metric",
        f"{source}: objective.direction",
    )

    budget_raw = _mapping(data["budget"], f"{source}: budget")
    strict_keys(budget_raw, BUDGET, f"{source}: budget", "field")
    if "max_trials" not in budget_raw:
        raise ConfigError(f"{source}: budget.max_trials is required (trials of the study, old and new)")
    budget = Budget(
        max_trials=read_int(budget_raw["max_trials"], f"{source}: budget.max_trials", minimum=1),
        max_parallel=_optional_int(budget_raw.get("max_parallel"), f"{source}: budget.max_parallel"),
        max_failed=_optional_int(budget_raw.get("max_failed"), f"{source}: budget.max_failed"),
    )

    sampler = data.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise ConfigError(f"{source}: sampler: unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    sampler_options = {}
    for sname, options in _mapping(data.get("sampler_options"), f"{source}: sampler_options").items():
        sampler_options[str(sname)] = check_sampler_options(str(sname), options, f"{source}: sampler_options.{sname}")

    pruner_raw = data.get("pruner", "none")
    if isinstance(pruner_raw, Mapping):
        options = dict(pruner_raw)
        pruner = check_pruner(options.pop("name", None), options, f"{source}: pruner")
    else:
        pruner = check_pruner(pruner_raw, None, f"{source}: pruner")

    params_raw = _mapping(data["params"], f"{source}: params")
    if not params_raw:
        raise ConfigError(f"{source}: params must list at least one parameter")
    params = tuple(read_param(str(k), v, f"{source}: params.{k}") for k, v in params_raw.items())
    overlap = sorted(set(fixed) & {p.name for p in params})
    if overlap:
        raise ConfigError(f"{source}: {overlap[0]!r} is both fixed and tuned; keep it in one of fixed or params")
    return SearchSpace(
        name=name.strip(),
        source=source,
        format="native",
        text=text,
        experiment=experiment,
        fixed=fixed,
        scale_overrides_fixed=scale_overrides_fixed,
        objective=metric,
        budget=budget,
        sampler=sampler,
        sampler_options=sampler_options,
        pruner=pruner,
        params=params,
    )


def _experiment(raw: Any, where: str) -> ExperimentRef | None:
    if raw is None:
        return None
    raw = _mapping(raw, where)
    strict_keys(raw, EXPERIMENT, where, "field")
    config = _mapping(raw.get("config"), f"{where}.config")
    if "ladder" not in raw:
        if "rung" in raw or "scale" in raw:
            raise ConfigError(f"{where}: rung and scale need a ladder (experiment.ladder)")
        return ExperimentRef(config=config)
    ladder, rung = raw.get("ladder"), raw.get("rung")
    if not isinstance(ladder, str) or not ladder:
        raise ConfigError(f"{where}.ladder: expected a ladder name or file, but got {ladder!r}")
    if isinstance(rung, bool) or not isinstance(rung, str | int):
        raise ConfigError(f"{where}.rung: expected a rung name or 1-based index, but got {rung!r}")
    scale = raw.get("scale", "standard")
    if not isinstance(scale, str):
        raise ConfigError(f"{where}.scale: expected smoke, standard or full, but got {scale!r}")
    return ExperimentRef(ladder=ladder, rung=str(rung), scale=scale, config=config)


@dataclasses.dataclass(frozen=True)
class Written:
    """How a file writes a parameter: its names for the fields (messages name them: a Cloud ML Engine
    file's users see ``minValue``, not ``low``) and what Optuna sees of a choice."""

    low: str = "low"
    high: str = "high"
    log: str = "log"
    choices: str = "choices"
    grid: str | None = "grid"  # None: the format has no grid points
    scale: str = ""  # the file's word for a log scale, e.g. UNIT_LOG_SCALE; "" for "a log scale"
    # "values": Optuna sees a choice's config value (a label where Optuna cannot store it);
    # "written": it sees the choice as the file writes it (Cloud ML Engine's strings: S, M, L)
    labels: Literal["values", "written"] = "values"


NATIVE = Written()
_SCALES: dict[Any, Scale] = {False: "linear", True: "log", "reverse": "reverse_log"}


def read_param(name: str, raw: Any, where: str, written: Written = NATIVE, name_where: str | None = None) -> ParamSpec:
    """One parameter in the native form (``type``, ``low``/``high``/``log``/``step``/``grid`` or
    ``choices``): every parameter of either file format is checked here, once. ``name_where``: where
    the file writes the name, if not ``where`` (a Cloud ML Engine ``parameterName``)."""
    check_param_name(name, name_where or where)
    raw = _mapping(raw, where)
    kind = raw.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type: expected one of {', '.join(TYPES)}, but got {kind!r}")
    if kind == "categorical":
        strict_keys(raw, CATEGORICAL, where, "field")
        return _categorical(name, raw.get("choices"), where, written)
    strict_keys(raw, NUMERIC, where, "field")
    number = read_int if kind == "int" else read_number
    w = written
    grid = raw.get("grid")
    if grid is not None:
        if not isinstance(grid, list) or not grid:
            raise ConfigError(f"{where}.grid: expected a non-empty list of {kind} values, but got {grid!r}")
        points = [number(v, f"{where}.grid") for v in grid]
        if len(set(points)) != len(points):
            raise ConfigError(f"{where}.grid: grid points must be distinct, but got {grid!r}")
    if "low" not in raw and "high" not in raw and grid is not None:
        low, high = min(points), max(points)
    else:
        for key, said in (("low", w.low), ("high", w.high)):
            if key not in raw:
                hint = f" (or give only {w.grid} points)" if w.grid else ""
                raise ConfigError(f"{where}: missing {said!r}{hint}")
        low, high = number(raw["low"], f"{where}.{w.low}"), number(raw["high"], f"{where}.{w.high}")
    if not low <= high:
        raise ConfigError(f"{where}: {w.low} must be <= {w.high}, but got {w.low}={low!r}, {w.high}={high!r}")
    log = raw.get("log", False)
    if not (isinstance(log, bool) or log == "reverse"):
        raise ConfigError(f"{where}.log: expected true, false or reverse (dense near high), but got {log!r}")
    scale = _SCALES[log]
    if scale != "linear" and low <= 0:
        said = w.scale or f"a {scale.replace('_', ' ')} scale"
        raise ConfigError(f"{where}.{w.log}: {said} needs {w.low} > 0, but got {w.low}={low!r}")
    step = raw.get("step")
    if step is not None:
        step = number(step, f"{where}.step")
        if step <= 0:
            raise ConfigError(f"{where}.step: expected a step > 0, but got {step!r}")
        if scale != "linear" and not (kind == "int" and step == 1):
            raise ConfigError(f"{where}: step and log cannot be combined (Optuna samples a log scale continuously)")
    if grid is not None:
        outside = [p for p in points if not low <= p <= high]
        if outside:
            raise ConfigError(f"{where}.grid: point {outside[0]!r} is outside [low, high] = [{low}, {high}]")
    return ParamSpec(
        name=name,
        kind=kind,
        where=where,
        low=low,
        high=high,
        scale=scale,
        step=step,
        grid=tuple(points) if grid is not None else None,
    ).check_types()


def _categorical(name: str, choices: Any, where: str, written: Written) -> ParamSpec:
    where_choices = f"{where}.{written.choices}"
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where_choices}: expected a non-empty list, but got {choices!r}")
    labels: list[Any] = []
    values: dict[str, Any] = {}
    for i, choice in enumerate(choices):
        value = _choice_value(name, choice, f"{where_choices}[{i}]")
        if written.labels == "written" and is_optuna_value(choice):
            label = choice
            values[str(label)] = value
        elif is_optuna_value(value):
            label = value
        else:  # e.g. a tuple for filter_sizes: Optuna stores a string label
            label = ",".join(str(v) for v in value)
            values[label] = value
        if label in labels:
            raise ConfigError(f"{where_choices}: choices must be distinct, but {choice!r} appears twice")
        labels.append(label)
    return ParamSpec(name=name, kind="categorical", where=where, choices=tuple(labels), values=values)


def _choice_value(name: str, choice: Any, where: str) -> Any:
    """A choice as a config value: a word the parameter classes declare (``value_aliases``: ``S`` ->
    ``(4, 3, 2)``), the value itself, or a string holding a YAML value (``"0.5"``, ``"[3, 3, 3]"``)."""
    if not isinstance(choice, str):
        return coerce(name, choice, where)
    aliases = value_aliases(name)
    if choice in aliases:
        return aliases[choice]
    try:
        return coerce(name, choice, where)
    except ConfigError as exc:
        with contextlib.suppress(ConfigError):
            parsed = load_yaml(choice, where)
            if not isinstance(parsed, str):
                return coerce(name, parsed, where)
        if aliases:
            raise ConfigError(
                f"{where}: {choice!r} is not a value of config key {name!r} (harness maps {', '.join(aliases)} "
                f"for {name})"
            ) from None
        raise exc from None


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, but got {raw!r}")
    return {str(k): v for k, v in raw.items()}


def _optional_int(value: Any, where: str) -> int | None:
    return None if value is None else read_int(value, where, minimum=1)
