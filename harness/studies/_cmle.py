"""Cloud ML Engine / AI Platform job configs, read as they are.

The ``gcloud ml-engine jobs submit training --config config-hptune.yaml`` files of
the talks' reference trainers run here unchanged, as studies
(``harness study FILE --experiment LADDER:RUNG``)::

    trainingInput:
      scaleTier: CUSTOM
      masterType: complex_model_m_v100
      hyperparameters:
        goal: MINIMIZE
        hyperparameterMetricTag: loss
        maxTrials: 50
        maxParallelTrials: 10
        params:
          - parameterName: hp-lr2
            type: INTEGER
            minValue: 800
            maxValue: 30000
            scaleType: UNIT_LINEAR_SCALE

Mapping:

- ``parameterName``: the ``hp-`` prefix of the reference trainers' command-line flags
  is dropped and dashes become underscores (``hp-lr2`` -> ``lr2``,
  ``hp-filter-sizes`` -> ``filter_sizes``); the result must be a Config key.
- ``type``: INTEGER and DOUBLE -> int/float ranges; CATEGORICAL -> the strings, each
  mapped to a Config value; DISCRETE -> the listed numbers (a categorical for Optuna).
- ``scaleType``: UNIT_LINEAR_SCALE (or unset), UNIT_LOG_SCALE, and UNIT_REVERSE_LOG_SCALE,
  which Optuna lacks: it samples ``low + high - x`` with ``x`` log-uniform, so values
  crowd towards ``high`` (Optuna records it as ``<name>__reverse_log``).
- ``algorithm``: GRID_SEARCH -> grid (every INTEGER value, every CATEGORICAL and
  DISCRETE value; a DOUBLE is an error, as on Cloud ML Engine), RANDOM_SEARCH ->
  random, ALGORITHM_UNSPECIFIED (Bayesian optimisation on Cloud ML Engine) -> TPE.
- ``goal`` + ``hyperparameterMetricTag``: an objective of the tuned experiment's task
  (case-insensitive): for classification ``accuracy`` -> final test accuracy, ``loss`` ->
  final test cross-entropy (the reference trainers logged it x 100: reports show both
  scales); ``IOU`` is the detection task's. A goal that contradicts the metric is an error.
- ``maxTrials`` / ``maxParallelTrials`` / ``maxFailedTrials`` (0 or unset: no limit)
  -> the budget; ``enableTrialEarlyStopping`` -> the median pruner.
- ``scaleTier`` / ``masterType`` / ``workerCount`` ... -> a backend for each trial and
  the tier's price at list prices, host VMs included (:mod:`harness.hardware._cmle`: what each
  tier and legacy machine type consists of). A backend this machine lacks falls back to ``auto``
  with a warning; costs use the hardware actually used.
- The file does not say what it tunes: ``--experiment LADDER:RUNG`` is required (the
  error lists the built-in ladders' rungs; the talk's ``mlengine/`` configs tuned
  ``mnist:cnn-batchnorm``).

Each parameter is translated into the native form (:mod:`harness.studies._native`) and checked
there, by the same functions as a harness file's, with this file's key names in the messages
(``params[2] (hp-lr2).minValue``). Categorical strings that are not Config values are mapped by the
words the parameter classes declare (``value_aliases``, e.g. the cnn model's ``filter_sizes``
``S``/``M``/``L``). Anything else that cannot be honoured is an error or a warning
(``SearchSpace.notes``), never silently dropped. A plain training job config (no
``hyperparameters``) is no study: ``harness ladder LADDER --cmle-config FILE``
(:func:`harness.hardware.load_training_job`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.config import read_int, read_number, strict_keys
from harness.errors import ConfigError
from harness.hardware import api_int, read_tier, training_input
from harness.studies._native import Written, read_param
from harness.studies._samplers import check_pruner
from harness.studies._space import Budget, ParamSpec, SearchSpace, objective_ref, space_name_from

ALGORITHMS = {"GRID_SEARCH": "grid", "RANDOM_SEARCH": "random", "ALGORITHM_UNSPECIFIED": "tpe"}
SCALE_TYPES = {  # scaleType -> the native ``log``
    "UNIT_LINEAR_SCALE": False,
    "UNIT_LOG_SCALE": True,
    "UNIT_REVERSE_LOG_SCALE": "reverse",
    "NONE": False,
}
KINDS = {  # type -> the native type and the keys it takes, as their native names
    "INTEGER": ("int", {"minValue": "low", "maxValue": "high"}),
    "DOUBLE": ("float", {"minValue": "low", "maxValue": "high"}),
    "CATEGORICAL": ("categorical", {"categoricalValues": "choices"}),
    "DISCRETE": ("categorical", {"discreteValues": "choices"}),
}
GOALS = {"MAXIMIZE": "maximize", "MINIMIZE": "minimize"}
HYPERPARAMETERS = (
    "goal",
    "hyperparameterMetricTag",
    "maxTrials",
    "maxParallelTrials",
    "maxFailedTrials",
    "enableTrialEarlyStopping",
    "algorithm",
    "params",
    "resumePreviousJobId",
)
VALUES = ("minValue", "maxValue", "categoricalValues", "discreteValues")  # which of them a type takes: KINDS
PARAM = ("parameterName", "type", "scaleType", *VALUES)


def cmle_param_name(name: str) -> str:
    """``hp-lr2`` -> ``lr2``; ``hp-filter-sizes`` -> ``filter_sizes``."""
    return name.removeprefix("hp-").removeprefix("hp_").replace("-", "_")


def parse_cmle(data: dict[str, Any], text: str, source: str) -> SearchSpace:
    notes: list[str] = []
    ti = training_input(data, source, notes, "local study")
    where_ti = f"{source}: trainingInput"
    if "hyperparameters" not in ti:
        raise ConfigError(
            f"{where_ti}: missing hyperparameters: this is a training job config, not a tuning config; run a "
            f"ladder on its hardware with `harness ladder LADDER --cmle-config {source}`"
        )
    tier = read_tier(ti, where_ti, notes, "trial")

    where_hp = f"{where_ti}.hyperparameters"
    hp = ti["hyperparameters"]
    if not isinstance(hp, Mapping):
        raise ConfigError(f"{where_hp}: expected a mapping, but got {hp!r}")
    strict_keys(hp, HYPERPARAMETERS, where_hp, "field")
    goal = hp.get("goal")
    if goal not in GOALS:
        raise ConfigError(f"{where_hp}.goal: expected MAXIMIZE or MINIMIZE, but got {goal!r}")
    if "hyperparameterMetricTag" not in hp:
        raise ConfigError(f"{where_hp}: missing hyperparameterMetricTag (accuracy or loss)")
    metric = objective_ref(
        hp["hyperparameterMetricTag"], GOALS[goal], f"{where_hp}.hyperparameterMetricTag", f"{where_hp}.goal"
    )
    algorithm = hp.get("algorithm", "ALGORITHM_UNSPECIFIED")
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"{where_hp}.algorithm: expected one of {', '.join(ALGORITHMS)}, but got {algorithm!r}")

    def count(key: str, default: int, minimum: int) -> int:  # the API writes int64 fields as strings
        return read_int(api_int(hp.get(key, default)), f"{where_hp}.{key}", minimum)

    max_failed = count("maxFailedTrials", 0, 0)
    budget = Budget(
        max_trials=count("maxTrials", 1, 1),
        max_parallel=count("maxParallelTrials", 1, 1),
        max_failed=max_failed or None,
    )
    early = hp.get("enableTrialEarlyStopping", False)
    if not isinstance(early, bool):
        raise ConfigError(f"{where_hp}.enableTrialEarlyStopping: expected true or false, but got {early!r}")
    if "resumePreviousJobId" in hp:
        notes.append(
            f"{where_hp}.resumePreviousJobId is ignored: a harness study resumes by its name "
            "(run the same command again, or pass --name)"
        )
    raw_params = hp.get("params")
    if not isinstance(raw_params, list) or not raw_params:
        raise ConfigError(f"{where_hp}.params: expected a non-empty list of parameters, but got {raw_params!r}")
    params = tuple(_param(p, f"{where_hp}.params[{i}]", algorithm, notes) for i, p in enumerate(raw_params))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"{where_hp}.params: parameter {dup!r} appears twice")
    return SearchSpace(
        name=space_name_from(source),
        source=source,
        format="cmle",
        text=text,
        experiment=None,
        fixed={},
        objective=metric,
        budget=budget,
        sampler=ALGORITHMS[algorithm],
        sampler_options={},
        pruner=check_pruner("median" if early else "none", None, f"{where_hp}.enableTrialEarlyStopping"),
        params=params,
        tier=tier,
        notes=tuple(notes),
    )


def _param(raw: Any, where: str, algorithm: str, notes: list[str]) -> ParamSpec:
    """One ``params`` entry translated into the native form and checked there."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with parameterName and type, but got {raw!r}")
    strict_keys(raw, PARAM, where, "field")
    cmle_name = raw.get("parameterName")
    if not isinstance(cmle_name, str) or not cmle_name:
        raise ConfigError(f"{where}.parameterName: expected a name such as hp-lr2, but got {cmle_name!r}")
    name_where, where = f"{where}.parameterName ({cmle_name!r})", f"{where} ({cmle_name})"
    kind = raw.get("type")
    if kind not in KINDS:
        raise ConfigError(f"{where}.type: expected one of {', '.join(KINDS)}, but got {kind!r}")
    scale_type = raw.get("scaleType")
    if scale_type is not None and scale_type not in SCALE_TYPES:
        raise ConfigError(f"{where}.scaleType: expected one of {', '.join(SCALE_TYPES)}, but got {scale_type!r}")
    native_kind, keys = KINDS[kind]
    for key in VALUES:
        if key in raw and key not in keys:
            article = "an" if kind == "INTEGER" else "a"
            raise ConfigError(f"{where}.{key}: {article} {kind} parameter takes {' and '.join(keys)}, not {key}")
    log = SCALE_TYPES[scale_type or "NONE"]
    translated: dict[str, Any] = {"type": native_kind, **{keys[k]: api_int(v) for k, v in raw.items() if k in keys}}
    if native_kind == "categorical":
        if log is not False:
            notes.append(f"{where}.scaleType {scale_type} is ignored: {kind} values are taken as listed")
        values = translated.get("choices")
        if kind == "CATEGORICAL" and isinstance(values, list) and not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{where}.categoricalValues: expected a list of strings, but got {values!r}")
        if kind == "DISCRETE":
            translated["choices"] = _discrete(values, f"{where}.discreteValues")
    else:
        if kind == "DOUBLE" and algorithm == "GRID_SEARCH":
            raise ConfigError(
                f"{where}: a DOUBLE parameter ({cmle_param_name(cmle_name)!r}) cannot be searched with GRID_SEARCH "
                "(it has no grid points); use type DISCRETE with discreteValues, or another algorithm"
            )
        translated["log"] = log
    written = Written(
        low="minValue",
        high="maxValue",
        log="scaleType",
        choices=next(iter(keys)),
        grid=None,
        scale=str(scale_type or ""),
        labels="written" if kind == "CATEGORICAL" else "values",  # trials show the file's word: S, not 4,3,2
    )
    return read_param(cmle_param_name(cmle_name), translated, where, written, name_where)


def _discrete(values: Any, where: str) -> Any:
    """discreteValues: numbers, increasing as Cloud ML Engine requires; 32.0 is the integer 32."""
    if not isinstance(values, list) or not values:
        return values  # the native reader says what it expected
    numbers = [read_number(v, f"{where}[{i}]") for i, v in enumerate(values)]
    if sorted(set(numbers)) != numbers:
        raise ConfigError(f"{where}: values must be distinct and increasing, but got {values!r}")
    return [int(n) if n.is_integer() else n for n in numbers]
