"""Backends: which tf.distribute strategy runs the model, and what the hardware is.

``auto`` picks all GPUs (MirroredStrategy for several, the default strategy for
one), else the CPU. ``gpu:N`` is MirroredStrategy over the first N GPUs; ``cpu:N``
splits the CPU into N logical devices and mirrors over them (synchronous data
parallelism tested on a machine without GPUs; it must be chosen before TensorFlow
has started, which harness does when it resolves backends before any training).
``tpu`` connects to a TPU through TPUClusterResolver.

``multiworker`` is MultiWorkerMirroredStrategy, synchronous data parallelism over
worker processes talking gRPC. Where ``TF_CONFIG`` is set (each machine of a real
cluster, or a worker harness started), this process *is* one worker and gets the
strategy. ``multiworker:N`` gets no strategy here: the executor starts N local worker
processes on loopback ports for each run (``executor/_multiworker.py``, which
gives each its ``TF_CONFIG`` and the backend ``multiworker``), and this process
only supervises them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import re
from typing import Any

from harness import _framework
from harness.config import BACKENDS, check_backend
from harness.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Hardware:
    backend: str  # the resolved backend: cpu, gpu, multi-gpu, tpu
    hardware: str  # price-table key: "cpu", "gpu:NVIDIA H200 x1", "tpu:v3-8"
    description: str  # for humans and the "device" tag
    local_workers: int = 0  # multiworker:N without TF_CONFIG: worker processes to start per run


_MULTIWORKER = re.compile(r"multiworker(?::(\d+))?")
_COUNTED = re.compile(r"(cpu|gpu):(\d+)")


def tf_config() -> dict[str, Any] | None:
    """``$TF_CONFIG`` parsed, or None; a malformed one is a clear error."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
        cluster, task = cfg["cluster"], cfg["task"]
        str(task["type"]), int(task["index"])
        if not isinstance(cluster, dict) or not cluster:
            raise ValueError("empty cluster")
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f'TF_CONFIG must be JSON like {{"cluster": {{"worker": ["host:port", ...]}}, '
            f'"task": {{"type": "worker", "index": 0}}}}, but got {raw!r} ({e})'
        ) from None
    return dict(cfg)


def is_chief(cfg: dict[str, Any] | None) -> bool:
    """Whether this process logs the run: the "chief" task, else worker 0 of a cluster without one."""
    if cfg is None:
        return True
    task = cfg["task"]
    if "chief" in cfg["cluster"]:
        return bool(task["type"] == "chief")
    return bool(task["type"] == "worker" and int(task["index"]) == 0)


def _multiworker(backend: str, tf: Any) -> tuple[Any, Hardware]:
    m = _MULTIWORKER.fullmatch(backend)
    assert m is not None
    gpus = _gpu_names(tf)
    per_worker = f"gpu:{gpus[0]} x{len(gpus)}" if gpus else "cpu"
    if m.group(1) is not None:  # multiworker:N: this process supervises N local workers, it does not train
        n = int(m.group(1))
        check_local_workers(n)
        # the N workers share this machine: its price, once
        return None, Hardware("multiworker", per_worker, f"{n} local workers (gRPC, loopback) on {_where(gpus)}", n)
    cfg = tf_config()
    if cfg is None:
        raise ConfigError(
            "backend='multiworker' needs a cluster: set TF_CONFIG on every machine, or ask for "
            "local worker processes with backend=multiworker:N (e.g. multiworker:2)"
        )
    workers = sum(len(v) for v in cfg["cluster"].values() if isinstance(v, list))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = cfg["task"]
    return strategy, Hardware(
        "multiworker", per_worker, f"worker {task['type']}:{task['index']} of {workers} on {_where(gpus)}"
    )


WORKER_GB = 0.9  # what one local worker process (TensorFlow, the data, a small model) holds, measured


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def available_gb() -> float | None:
    """Memory the system can give without swapping (psutil, else /proc/meminfo's MemAvailable); None if unknown."""
    try:
        import psutil

        return float(psutil.virtual_memory().available) / 2**30
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_local_workers(n: int) -> None:
    """``multiworker:N`` starts N TensorFlow processes here: refuse an N that would swap or thrash the machine.

    A worker per core at most (2 always fit: the smallest cluster), and ~0.9 GB of free memory each.
    """
    cores, free = usable_cores(), available_gb()
    by_cores = max(cores, 2)
    by_memory = by_cores if free is None else int(free // WORKER_GB)
    fit = min(by_cores, by_memory)
    if n <= fit:
        return
    memory = "" if free is None else f" and {free:.1f} GB free"
    advice = f"use multiworker:{fit}" if fit >= 1 else "use backend=cpu"
    raise ConfigError(
        f"backend='multiworker:{n}' needs ~{n * WORKER_GB:.0f} GB ({WORKER_GB} GB per worker process) and "
        f"{n} cores; this machine has {cores} cores{memory}: at most {fit} workers fit ({advice})"
    )


def _where(gpus: list[str]) -> str:
    return f"{len(gpus)} x {gpus[0]}" if gpus else f"CPU: {cpu_description()}"


@functools.cache
def cpu_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def _gpu_names(tf: Any) -> list[str]:
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name", gpu.name)))
    return names


def _mirrored(kind: str, n: int, tf: Any) -> tuple[Any, Hardware]:
    """``cpu:N`` / ``gpu:N``: MirroredStrategy over N logical CPU devices or the first N GPUs."""
    if kind == "gpu":
        gpus = _gpu_names(tf)
        if not gpus:  # gpu:1 would fail as well: the CPU is the alternative that runs
            raise ConfigError(
                f"backend='gpu:{n}' needs {n} GPUs but TensorFlow sees no GPU here; use backend=cpu "
                "(or install the gpu extra, pip install 'harness[gpu]', on a machine with GPUs)"
            )
        if len(gpus) < n:
            suggestion = f"gpu:{len(gpus)}"
            check_backend(suggestion)  # what the message suggests is itself a valid backend
            raise ConfigError(
                f"backend='gpu:{n}' needs {n} GPUs but TensorFlow sees {len(gpus)}; use backend={suggestion}"
            )
        strategy = tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(n)])
        return strategy, Hardware("multi-gpu", f"gpu:{gpus[0]} x{n}", f"{n} x {gpus[0]} (MirroredStrategy)")
    cpu = tf.config.list_physical_devices("CPU")[0]
    logical = tf.config.get_logical_device_configuration(cpu)
    if not logical or len(logical) != n:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError:
            have = len(logical) if logical else 1
            raise ConfigError(
                f"backend='cpu:{n}': TensorFlow already started with {have} CPU device(s) in this process; "
                "one process can use one cpu:N (run each N as its own command)"
            ) from None
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:n]
    # CPUs have no NCCL: gradients are summed on one device
    strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    # the N logical devices share this machine's cores: its price, once
    return strategy, Hardware("cpu", "cpu", f"CPU: {cpu_description()}, {n} logical devices (MirroredStrategy)")


def accelerators() -> list[str]:
    """The GPUs the process's Keras backend (JAX or PyTorch, without TensorFlow) sees, by name."""
    framework = _framework.current()
    if framework == "jax":
        import jax

        return [str(getattr(d, "device_kind", d)) for d in jax.devices() if d.platform == "gpu"]
    if framework == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def _without_tensorflow(backend: str) -> Hardware:
    """``backend`` on the process's framework's default device, where no tf.distribute strategy exists:
    the CPU, or the one GPU the framework places everything on."""
    gpus = accelerators()
    if backend == "auto":
        backend = "gpu" if gpus else "cpu"
    if backend == "cpu":
        if gpus:  # the framework would place the model on its GPU, not on the CPU the run says
            raise ConfigError(
                f"backend=cpu, but {_framework.current()} places every array on this machine's GPU; "
                "use backend=gpu (or hide the GPU: JAX_PLATFORMS=cpu, CUDA_VISIBLE_DEVICES=)"
            )
        return Hardware("cpu", "cpu", f"CPU: {cpu_description()}")
    if backend == "gpu":
        if not gpus:
            raise ConfigError(f"backend=gpu, but {_framework.current()} sees no GPU here; use backend=cpu")
        return Hardware("gpu", f"gpu:{gpus[0]} x1", f"1 x {gpus[0]}")
    raise ConfigError(
        f"backend={backend} is a tf.distribute strategy, and TensorFlow is not installed here; use backend=gpu or cpu"
    )


XLA_HOST_DEVICES = "--xla_force_host_platform_device_count"  # XLA_FLAGS: JAX's CPU as N devices


def host_devices_flag(n: int) -> str:
    """``XLA_FLAGS`` for a JAX process whose CPU is ``n`` devices (read once, when JAX starts its backend)."""
    kept = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(XLA_HOST_DEVICES)]
    return " ".join([*kept, f"{XLA_HOST_DEVICES}={n}"])


def host_devices_needed(backend: str, framework: str) -> int:
    """The CPU devices JAX must start with for a run on ``backend`` (``cpu:N`` on JAX: N; otherwise 1)."""
    counted = _COUNTED.fullmatch(backend)
    return int(counted.group(2)) if framework == "jax" and counted and counted.group(1) == "cpu" else 1


def host_devices_here() -> int:
    """The CPU devices a JAX started by this process would have (``XLA_FLAGS``; 1 without the flag)."""
    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith(f"{XLA_HOST_DEVICES}="):
            value = flag.split("=", 1)[1]
            return int(value) if value.isascii() and value.isdigit() else 1
    return 1


def _data_parallel(kind: str, n: int) -> tuple[Any, Hardware]:
    """``cpu:N`` / ``gpu:N`` on JAX: keras.distribution's DataParallel over N XLA host devices or the first N
    GPUs. Its strategy only in a process running JAX (with N CPU devices, for cpu:N); elsewhere the run is
    described, and trains in a child process started so."""
    if kind == "cpu":
        hardware = Hardware("cpu", "cpu", f"CPU: {cpu_description()}, {n} XLA host devices (DataParallel)")
    else:
        gpus = accelerators()
        if _framework.installed("tensorflow"):
            import tensorflow as tf

            gpus = _gpu_names(tf)
        if len(gpus) < n:
            raise ConfigError(f"backend='gpu:{n}' needs {n} GPUs, but {len(gpus)} are visible here")
        hardware = Hardware("multi-gpu", f"gpu:{gpus[0]} x{n}", f"{n} x {gpus[0]} (DataParallel)")
    if _framework.current() != "jax" or (kind == "cpu" and host_devices_here() < n):
        return None, hardware  # described here; the executor trains it in a child process started for it
    import jax
    import keras

    try:
        devices = jax.devices(kind)
    except RuntimeError:  # no backend of that kind (no GPU)
        devices = []
    if len(devices) < n:
        more = f" (this process started JAX with {XLA_HOST_DEVICES}={host_devices_here()})" if kind == "cpu" else ""
        raise ConfigError(f"backend='{kind}:{n}' needs {n} {kind.upper()} devices, but JAX sees {len(devices)}{more}")
    return keras.distribution.DataParallel(devices=devices[:n]), hardware


def make_strategy(backend: str, framework: str | None = None) -> tuple[Any, Hardware]:
    """The strategy for ``backend`` and a description of the hardware it runs on (no strategy, None, where
    TensorFlow is not installed: a run on another framework, on its default device). ``framework``: the run's
    (default this process's); ``cpu:N`` and ``gpu:N`` on JAX are keras.distribution's DataParallel."""
    check_backend(backend)
    counted = _COUNTED.fullmatch(backend)
    if counted is not None and (framework or _framework.current()) == "jax":
        return _data_parallel(counted.group(1), int(counted.group(2)))
    if not _framework.installed("tensorflow"):
        return None, _without_tensorflow(backend)
    import tensorflow as tf

    if backend.startswith("multiworker"):
        return _multiworker(backend, tf)
    counted = _COUNTED.fullmatch(backend)
    if counted is not None:
        return _mirrored(counted.group(1), int(counted.group(2)), tf)
    gpus = _gpu_names(tf)
    if backend == "auto":
        backend = "multi-gpu" if len(gpus) > 1 else "gpu" if gpus else "cpu"
    if backend == "cpu":
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0") if gpus else tf.distribute.get_strategy()
        return strategy, Hardware("cpu", "cpu", f"CPU: {cpu_description()}")
    if backend in ("gpu", "multi-gpu"):
        if not gpus:
            raise ConfigError(
                f"backend={backend!r} but TensorFlow sees no GPU; install the gpu extra "
                "(pip install 'harness[gpu]') or use backend=cpu"
            )
        used = gpus if backend == "multi-gpu" else gpus[:1]
        strategy = tf.distribute.MirroredStrategy() if backend == "multi-gpu" else tf.distribute.get_strategy()
        return strategy, Hardware(backend, f"gpu:{used[0]} x{len(used)}", f"{len(used)} x {used[0]}")
    if backend == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as exc:
            raise ConfigError(f"backend='tpu' but no TPU could be reached: {exc}") from None
        strategy = tf.distribute.TPUStrategy(resolver)
        kind = os.environ.get("TPU_ACCELERATOR_TYPE", "tpu")
        return strategy, Hardware("tpu", f"tpu:{kind}", f"TPU {kind}, {strategy.num_replicas_in_sync} cores")
    raise ConfigError(f"unknown backend {backend!r}; valid: {BACKENDS}")
