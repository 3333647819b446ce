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
  the tier's price at list prices, host VMs included. What each tier and legacy machine
  type consists of is data: the ``cmle_tiers`` and ``cmle_machine_types`` sections of
  ``harness/hardware/prices.yaml``, in rows of its price table. BASIC = CPU, BASIC_GPU =
  one K80, BASIC_TPU = a TPU v2, STANDARD_1 / PREMIUM_1 = CPU clusters (each trial runs
  on one machine: a warning), CUSTOM = ``masterType`` such as ``standard_p100`` or
  ``complex_model_m_v100`` (4 x V100) or a Compute Engine ``n1-*`` type, plus workers;
  a ``masterType`` without a ``scaleTier`` is such a CUSTOM job, no tier at all is BASIC.
  A backend this machine lacks falls back to ``auto`` with a warning; costs use the
  hardware actually used.
- The file does not say what it tunes: ``--experiment LADDER:RUNG`` is required (the
  error lists the built-in ladders' rungs; the talk's ``mlengine/`` configs tuned
  ``mnist:cnn-batchnorm``).

A plain training job config (``trainingInput`` without ``hyperparameters``) is no study:
``harness ladder LADDER --cmle-config FILE`` reads it with :func:`load_training_job` and
runs the ladder on the tier's backend, each run priced at the tier's list price. A tier
this machine cannot run (a GPU tier without a GPU) falls back to ``auto`` with a warning, as a
study's does, each run then priced as the hardware it used.

Categorical strings that are not Config values are mapped by the words the parameter
classes declare (``value_aliases``, e.g. the cnn model's ``filter_sizes`` ``S``/``M``/``L``,
the PlanesNet reference trainer's kernel sizes), read from the config catalog
(:func:`harness.config.value_aliases`). Anything else that cannot be honoured is an
error or a warning (``SearchSpace.notes``), never silently dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.config import coerce, load_mapping, load_yaml, read_config_text, value_aliases
from harness.errors import ConfigError
from harness.hardware import cmle_mapping, split_count
from harness.studies._samplers import check_pruner
from harness.studies._space import (
    Budget,
    ParamSpec,
    Scale,
    SearchSpace,
    Tier,
    check_param_name,
    objective_ref,
    space_name_from,
    strict_keys,
)

ALGORITHMS = {"GRID_SEARCH": "grid", "RANDOM_SEARCH": "random", "ALGORITHM_UNSPECIFIED": "tpe"}
SCALE_TYPES: dict[str, Scale] = {
    "UNIT_LINEAR_SCALE": "linear",
    "UNIT_LOG_SCALE": "log",
    "UNIT_REVERSE_LOG_SCALE": "reverse_log",
    "NONE": "linear",
}
TYPES = ("INTEGER", "DOUBLE", "CATEGORICAL", "DISCRETE")
GOALS = {"MAXIMIZE": "maximize", "MINIMIZE": "minimize"}

TOP = ("trainingInput",)
TOP_IGNORED = ("jobId", "labels", "etag", "createTime", "state")
CUSTOM_ONLY = (  # trainingInput keys that only scaleTier CUSTOM takes
    "masterType",
    "workerType",
    "parameterServerType",
    "workerCount",
    "parameterServerCount",
    "masterConfig",
)
TRAINING_INPUT = ("scaleTier", *CUSTOM_ONLY, "hyperparameters")
TRAINING_INPUT_IGNORED = (  # Cloud-only settings: what to install, where to run, what to read
    "runtimeVersion",
    "pythonVersion",
    "region",
    "jobDir",
    "packageUris",
    "pythonModule",
    "args",
    "scheduling",
    "serviceAccount",
    "network",
    "useChiefInTfConfig",
    "enableWebAccess",
    "encryptionConfig",
    "workerConfig",
    "parameterServerConfig",
    "evaluatorConfig",
    "evaluatorType",
    "evaluatorCount",
)
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
PARAM = ("parameterName", "type", "minValue", "maxValue", "scaleType", "categoricalValues", "discreteValues")

# A machine is its price-table keys joined by " + " (host VM + GPUs), as price_per_hour reads them.
_COMPUTE_ENGINE = re.compile(r"^n1-(standard|highmem|highcpu)-\d+$")  # -> the price-table row cpu:<type>
ACCELERATORS = {  # acceleratorConfig.type -> price-table key (tests check each is a row)
    "NVIDIA_TESLA_K80": "gpu:K80",
    "NVIDIA_TESLA_P4": "gpu:P4",
    "NVIDIA_TESLA_P100": "gpu:P100",
    "NVIDIA_TESLA_V100": "gpu:V100",
    "NVIDIA_TESLA_T4": "gpu:T4",
    "NVIDIA_TESLA_A100": "gpu:A100",
    "TPU_V2": "tpu:v2-8",
    "TPU_V3": "tpu:v3-8",
}


def machine_types() -> dict[str, str]:
    """Legacy machine type -> one machine, from ``prices.yaml`` (``cmle_machine_types``)."""
    return {name: " + ".join(entry.parts) for name, entry in cmle_mapping().machine_types.items()}


def tiers() -> dict[str, tuple[tuple[str, ...], str]]:
    """Scale tier -> (machines, master first; description), from ``prices.yaml`` (``cmle_tiers``)."""
    types = machine_types()
    return {name: (tuple(types[m] for m in e.parts), e.what) for name, e in cmle_mapping().tiers.items()}


def cmle_param_name(name: str) -> str:
    """``hp-lr2`` -> ``lr2``; ``hp-filter-sizes`` -> ``filter_sizes``."""
    return name.removeprefix("hp-").removeprefix("hp_").replace("-", "_")


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    """A training job config without ``hyperparameters``: the hardware a ladder's runs train on."""

    source: str
    tier: Tier
    notes: tuple[str, ...]  # settings that do not apply here

    @property
    def where(self) -> str:
        """The file and tier, as messages name them."""
        return f"{self.source}: trainingInput.scaleTier {self.tier.name} ({self.tier.description})"


def load_training_job(path: str | Path) -> TrainingJob:
    """``harness ladder --cmle-config FILE``: a job config's tier; a tuning config is refused."""
    source = str(path)
    text = read_config_text(Path(path), "Cloud ML Engine config")
    data = load_mapping(text, source, "a Cloud ML Engine job config (trainingInput: scaleTier, masterType, ...)")
    if "trainingInput" not in data:
        raise ConfigError(
            f"{source}: expected a Cloud ML Engine job config with trainingInput (scaleTier, masterType, ...), "
            f"but got keys {', '.join(map(str, data))}"
        )
    notes: list[str] = []
    ti = _training_input(data, source, notes, "local run")
    if "hyperparameters" in ti:
        raise ConfigError(
            f"{source}: trainingInput.hyperparameters makes this a tuning config; tune with "
            f"`harness study {source} --experiment LADDER:RUNG` (--cmle-config takes a training job config: "
            "scaleTier, masterType, ... without hyperparameters)"
        )
    return TrainingJob(source, _tier(ti, f"{source}: trainingInput", notes, "run"), tuple(notes))


def _training_input(data: Mapping[str, Any], source: str, notes: list[str], scope: str) -> Mapping[str, Any]:
    _known(data, TOP, TOP_IGNORED, source, notes, "job field", scope)
    ti = data["trainingInput"]
    where_ti = f"{source}: trainingInput"
    if not isinstance(ti, Mapping):
        raise ConfigError(f"{where_ti}: expected a mapping, but got {ti!r}")
    _known(ti, TRAINING_INPUT, TRAINING_INPUT_IGNORED, where_ti, notes, "Cloud-only setting", scope)
    return ti


def parse_cmle(data: dict[str, Any], text: str, source: str) -> SearchSpace:
    notes: list[str] = []
    ti = _training_input(data, source, notes, "local study")
    where_ti = f"{source}: trainingInput"
    if "hyperparameters" not in ti:
        raise ConfigError(
            f"{where_ti}: missing hyperparameters: this is a training job config, not a tuning config; run a "
            f"ladder on its hardware with `harness ladder LADDER --cmle-config {source}`"
        )
    tier = _tier(ti, where_ti, notes, "trial")

    where_hp = f"{where_ti}.hyperparameters"
    hp = ti["hyperparameters"]
    if not isinstance(hp, Mapping):
        raise ConfigError(f"{where_hp}: expected a mapping, but got {hp!r}")
    strict_keys(hp, HYPERPARAMETERS, where_hp)
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
    max_failed = _int(hp.get("maxFailedTrials", 0), f"{where_hp}.maxFailedTrials", 0)
    budget = Budget(
        max_trials=_int(hp.get("maxTrials", 1), f"{where_hp}.maxTrials", 1),
        max_parallel=_int(hp.get("maxParallelTrials", 1), f"{where_hp}.maxParallelTrials", 1),
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


def _known(
    data: Mapping[str, Any],
    valid: tuple[str, ...],
    ignored: tuple[str, ...],
    where: str,
    notes: list[str],
    what: str,
    scope: str,
) -> None:
    strict_keys(data, valid + ignored, where)
    for key in data:
        if key in ignored:
            notes.append(f"{where}.{key} is ignored: a {what} that does not apply to a {scope}")


def _machine(kind: Any, where: str) -> str:
    types = machine_types()
    if isinstance(kind, str) and kind in types:
        return types[kind]
    if isinstance(kind, str) and _COMPUTE_ENGINE.match(kind):
        return f"cpu:{kind}"
    raise ConfigError(f"{where}: unsupported machine type {kind!r}; harness knows {', '.join(types)} and n1-standard-N")


def _tier(ti: Mapping[str, Any], where: str, notes: list[str], unit: str) -> Tier:
    # a masterType without a scaleTier is the CUSTOM job it describes (the reference's single-P100 config.yaml);
    # with neither, Cloud ML Engine's default tier, BASIC
    name = ti.get("scaleTier", "CUSTOM" if "masterType" in ti else "BASIC")
    named = tiers()
    if name != "CUSTOM" and (not isinstance(name, str) or name not in named):
        known = ", ".join((*named, "CUSTOM"))
        raise ConfigError(f"{where}.scaleTier: unsupported scale tier {name!r}; harness maps {known}")
    label = str(name)
    if name == "CUSTOM":
        if "masterType" not in ti:
            raise ConfigError(f"{where}.masterType: scaleTier CUSTOM needs a masterType (e.g. standard_p100)")
        master = _machine(ti["masterType"], f"{where}.masterType")
        master = _accelerated(master, ti.get("masterConfig"), f"{where}.masterConfig", notes)
        workers = _int(ti.get("workerCount", 0), f"{where}.workerCount", 0)
        servers = _int(ti.get("parameterServerCount", 0), f"{where}.parameterServerCount", 0)
        worker = _machine(ti.get("workerType", ti["masterType"]), f"{where}.workerType") if workers else "cpu"
        server = _machine(ti.get("parameterServerType", "standard"), f"{where}.parameterServerType")
        machines = (master, *(worker,) * workers, *(server,) * servers)
        label = f"CUSTOM/{ti['masterType']}"
        description = f"{ti['masterType']} ({master})"
        if workers or servers:
            description += f" + {workers} workers + {servers} parameter servers"
    else:
        machines, description = named[name]
        for key in CUSTOM_ONLY:
            if key in ti:
                raise ConfigError(f"{where}.{key}: only scaleTier CUSTOM takes {key}, but scaleTier is {name}")
    if name in ("STANDARD_1", "PREMIUM_1") or (name == "CUSTOM" and len(machines) > 1):
        notes.append(
            f"{where}.scaleTier {label}: harness trains each {unit} on one machine; the tier's other "
            "machines (workers, parameter servers) are counted in its list price only"
        )
    # CUSTOM trains on its master; a named tier on its accelerator (BASIC_TPU's TPU is not its master VM)
    trains_on = next((m for m in machines if _backend(m) != "cpu"), machines[0]) if name != "CUSTOM" else machines[0]
    return Tier(name=label, backend=_backend(trains_on), machines=machines, description=description)


def _accelerated(master: str, config: Any, where: str, notes: list[str]) -> str:
    if config is None:
        return master
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: expected a mapping, but got {config!r}")
    for key in config:
        if key != "acceleratorConfig":
            notes.append(f"{where}.{key} is ignored: a Cloud-only setting that does not apply here")
    acc = config.get("acceleratorConfig")
    if acc is None:
        return master
    if not isinstance(acc, Mapping) or acc.get("type") not in ACCELERATORS:
        raise ConfigError(f"{where}.acceleratorConfig: expected type one of {', '.join(ACCELERATORS)}, but got {acc!r}")
    count = _int(acc.get("count", 1), f"{where}.acceleratorConfig.count", 1)
    key = ACCELERATORS[acc["type"]]
    host = [part for part in master.split(" + ") if part.startswith("cpu")]  # the accelerators are replaced
    return " + ".join([*host, f"{key} x{count}" if key.startswith("gpu") else key])


def _backend(machine: str) -> str:
    for part in machine.split(" + "):
        kind, _, rest = part.partition(":")
        if kind == "gpu":
            return "multi-gpu" if split_count(rest)[1] > 1 else "gpu"
        if kind == "tpu":
            return kind
    return "cpu"


def _param(raw: Any, where: str, algorithm: str, notes: list[str]) -> ParamSpec:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with parameterName and type, but got {raw!r}")
    strict_keys(raw, PARAM, where)
    cmle_name = raw.get("parameterName")
    if not isinstance(cmle_name, str) or not cmle_name:
        raise ConfigError(f"{where}.parameterName: expected a name such as hp-lr2, but got {cmle_name!r}")
    name = check_param_name(cmle_param_name(cmle_name), f"{where}.parameterName ({cmle_name!r})")
    where = f"{where} ({cmle_name})"
    kind = raw.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type: expected one of {', '.join(TYPES)}, but got {kind!r}")
    scale_type = raw.get("scaleType")
    if scale_type is not None and scale_type not in SCALE_TYPES:
        raise ConfigError(f"{where}.scaleType: expected one of {', '.join(SCALE_TYPES)}, but got {scale_type!r}")
    if kind in ("CATEGORICAL", "DISCRETE"):
        for key in ("minValue", "maxValue"):
            if key in raw:
                raise ConfigError(f"{where}.{key}: a {kind} parameter takes no {key}")
        if scale_type is not None and SCALE_TYPES[scale_type] != "linear":
            notes.append(f"{where}.scaleType {scale_type} is ignored: {kind} values are taken as listed")
        if kind == "CATEGORICAL":
            return _categorical(name, raw, where)
        return _discrete(name, raw, where)
    for key in ("categoricalValues", "discreteValues"):
        if key in raw:
            raise ConfigError(f"{where}.{key}: an {kind} parameter takes minValue and maxValue, not {key}")
    for key in ("minValue", "maxValue"):
        if key not in raw:
            raise ConfigError(f"{where}: missing {key}")
    if kind == "INTEGER":
        low: float = _int(raw["minValue"], f"{where}.minValue")
        high: float = _int(raw["maxValue"], f"{where}.maxValue")
    else:
        low, high = _number(raw["minValue"], f"{where}.minValue"), _number(raw["maxValue"], f"{where}.maxValue")
        if algorithm == "GRID_SEARCH":
            raise ConfigError(
                f"{where}: a DOUBLE parameter ({name!r}) cannot be searched with GRID_SEARCH (it has no grid "
                "points); use type DISCRETE with discreteValues, or another algorithm"
            )
    if not low <= high:
        raise ConfigError(f"{where}: minValue must be <= maxValue, but got {low!r} and {high!r}")
    scale: Scale = SCALE_TYPES[scale_type or "NONE"]
    if scale != "linear" and low <= 0:
        raise ConfigError(f"{where}.scaleType: {scale_type} needs minValue > 0, but got minValue={low!r}")
    return ParamSpec(
        name=name, kind="int" if kind == "INTEGER" else "float", where=where, low=low, high=high, scale=scale
    ).check_types()


def _categorical(name: str, raw: Mapping[str, Any], where: str) -> ParamSpec:
    values = raw.get("categoricalValues")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}.categoricalValues: expected a non-empty list of strings, but got {values!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}.categoricalValues: values must be distinct, but got {values!r}")
    mapping = {v: _categorical_value(name, v, f"{where}.categoricalValues") for v in values}
    return ParamSpec(name=name, kind="categorical", where=where, choices=tuple(values), values=mapping)


def _categorical_value(name: str, label: str, where: str) -> Any:
    aliases = value_aliases(name)  # declared by the parameter classes that have the key
    if label in aliases:
        return aliases[label]
    try:
        return coerce(name, label, where)
    except ConfigError:
        pass
    try:  # "0.5", "[3, 3, 3]": a YAML scalar or list
        return coerce(name, load_yaml(label, where), where)
    except ConfigError:
        known = f" (harness maps {', '.join(aliases)} for {name})" if aliases else ""
        raise ConfigError(f"{where}: {label!r} is not a value of config key {name!r}{known}") from None


def _discrete(name: str, raw: Mapping[str, Any], where: str) -> ParamSpec:
    values = raw.get("discreteValues")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}.discreteValues: expected a non-empty list of numbers, but got {values!r}")
    numbers = [_number(v, f"{where}.discreteValues") for v in values]
    if sorted(set(numbers)) != numbers:
        raise ConfigError(f"{where}.discreteValues: values must be distinct and increasing, but got {values!r}")
    choices = tuple(coerce(name, int(v) if float(v).is_integer() else v, f"{where}.discreteValues") for v in values)
    return ParamSpec(name=name, kind="categorical", where=where, choices=choices)


def _int(value: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():  # the API's int64 fields are strings
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, but got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, but got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, but got {value!r}")
    return float(value)
