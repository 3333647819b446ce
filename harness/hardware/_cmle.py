"""Cloud ML Engine hardware: a job config's ``scaleTier`` / ``masterType`` -> a backend and its machines.

What each tier and legacy machine type consists of is data: the ``cmle_tiers`` and
``cmle_machine_types`` sections of ``prices.yaml``, in rows of its price table. BASIC = CPU,
BASIC_GPU = one K80, BASIC_TPU = a TPU v2, STANDARD_1 / PREMIUM_1 = CPU clusters (harness
trains on one machine: a note), CUSTOM = ``masterType`` (``standard_p100``, ``complex_model_m_v100``
or a Compute Engine ``n1-*`` type) plus workers; a ``masterType`` without a ``scaleTier`` is such
a CUSTOM job, no tier at all is BASIC.

``harness ladder LADDER --cmle-config FILE`` reads a training job config (no ``hyperparameters``)
with :func:`load_training_job`; a tuning config's tier is read the same way by the search-space
translator (``harness.studies._cmle``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.config import load_mapping, read_config_text, read_int, strict_keys
from harness.errors import ConfigError
from harness.hardware._prices import cmle_mapping, split_count

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


@dataclasses.dataclass(frozen=True)
class Tier:
    """A Cloud ML Engine scale tier / machine type: which backend and what it costs."""

    name: str  # e.g. BASIC_GPU, CUSTOM/complex_model_m_v100
    backend: str  # harness backend: cpu, gpu, multi-gpu, tpu
    machines: tuple[str, ...]  # price-table keys, one per machine ("gpu:V100 x4", "cpu", "tpu:v2")
    description: str


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


def machine_types() -> dict[str, str]:
    """Legacy machine type -> one machine, from ``prices.yaml`` (``cmle_machine_types``)."""
    return {name: " + ".join(entry.parts) for name, entry in cmle_mapping().machine_types.items()}


def tiers() -> dict[str, tuple[tuple[str, ...], str]]:
    """Scale tier -> (machines, master first; description), from ``prices.yaml`` (``cmle_tiers``)."""
    types = machine_types()
    return {name: (tuple(types[m] for m in e.parts), e.what) for name, e in cmle_mapping().tiers.items()}


def api_int(value: Any) -> Any:
    """The API writes its int64 fields as strings ("5"): such a string as an int, anything else as it is."""
    digits = value.strip().lstrip("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit():  # "²" and "٣" are digits to isdigit(), not to int()
        return int(value)
    return value


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
    ti = training_input(data, source, notes, "local run")
    if "hyperparameters" in ti:
        raise ConfigError(
            f"{source}: trainingInput.hyperparameters makes this a tuning config; tune with "
            f"`harness study {source} --experiment LADDER:RUNG` (--cmle-config takes a training job config: "
            "scaleTier, masterType, ... without hyperparameters)"
        )
    return TrainingJob(source, read_tier(ti, f"{source}: trainingInput", notes, "run"), tuple(notes))


def training_input(data: Mapping[str, Any], source: str, notes: list[str], scope: str) -> Mapping[str, Any]:
    """A job config's ``trainingInput``; Cloud-only settings become notes, unknown keys errors."""
    known_keys(data, TOP, TOP_IGNORED, source, notes, "job field", scope)
    ti = data["trainingInput"]
    where_ti = f"{source}: trainingInput"
    if not isinstance(ti, Mapping):
        raise ConfigError(f"{where_ti}: expected a mapping, but got {ti!r}")
    known_keys(ti, TRAINING_INPUT, TRAINING_INPUT_IGNORED, where_ti, notes, "Cloud-only setting", scope)
    return ti


def known_keys(
    data: Mapping[str, Any],
    valid: tuple[str, ...],
    ignored: tuple[str, ...],
    where: str,
    notes: list[str],
    what: str,
    scope: str,
) -> None:
    strict_keys(data, valid + ignored, where, "field")
    for key in data:
        if key in ignored:
            notes.append(f"{where}.{key} is ignored: a {what} that does not apply to a {scope}")


def read_tier(ti: Mapping[str, Any], where: str, notes: list[str], unit: str) -> Tier:
    """The tier ``trainingInput`` asks for; ``unit`` (run, trial) is what trains on one machine."""
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
        workers = read_int(api_int(ti.get("workerCount", 0)), f"{where}.workerCount", 0)
        servers = read_int(api_int(ti.get("parameterServerCount", 0)), f"{where}.parameterServerCount", 0)
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


def _machine(kind: Any, where: str) -> str:
    types = machine_types()
    if isinstance(kind, str) and kind in types:
        return types[kind]
    if isinstance(kind, str) and _COMPUTE_ENGINE.match(kind):
        return f"cpu:{kind}"
    raise ConfigError(f"{where}: unsupported machine type {kind!r}; harness knows {', '.join(types)} and n1-standard-N")


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
    count = read_int(api_int(acc.get("count", 1)), f"{where}.acceleratorConfig.count", 1)
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
