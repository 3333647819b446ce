"""Backends: which tf.distribute strategy runs the model, and what the hardware is.

``auto`` picks all GPUs (MirroredStrategy for several, the default strategy for
one), else the CPU. ``tpu`` connects to a TPU through TPUClusterResolver.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
from typing import Any

from harness.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Hardware:
    backend: str  # the resolved backend: cpu, gpu, multi-gpu, tpu
    hardware: str  # price-table key: "cpu", "gpu:NVIDIA H200 x1", "tpu:v3-8"
    description: str  # for humans and the "device" tag


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


def make_strategy(backend: str) -> tuple[Any, Hardware]:
    """The strategy for ``backend`` and a description of the hardware it runs on."""
    import tensorflow as tf

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
    raise ConfigError(f"unknown backend {backend!r}; valid: auto, cpu, gpu, multi-gpu, tpu")
