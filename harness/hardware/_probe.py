"""What this machine offers: devices, the TensorFlow build, XLA, precisions, and each backend's price.

Every answer comes from trying the thing (a tiny XLA function, a tiny layer under each
dtype policy), not from version tables. TPUs are only looked for, never dialled: finding
one means contacting a cluster resolver, which is what ``backend=tpu`` does when asked.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from harness.hardware._backend import _gpu_names, cpu_description
from harness.hardware._prices import price_per_hour

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class BackendRow:
    backend: str
    available: bool
    hardware: str  # price-table key
    price_per_hour: float | None
    note: str


@dataclasses.dataclass(frozen=True)
class MachineReport:
    tensorflow: str
    keras: str
    build: str  # "CUDA 12.5, cuDNN 9" or "CPU only"
    devices: tuple[str, ...]
    xla: str  # "works" or the error
    precisions: Mapping[str, str]  # policy -> "works" or the error
    backends: tuple[BackendRow, ...]


def _try(fn: Any) -> str:
    try:
        fn()
    except Exception as exc:  # any failure is the answer: say what it was
        return f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return "works"


def _xla(tf: Any) -> None:
    value = tf.function(lambda x: tf.reduce_sum(x * 2.0), jit_compile=True)(tf.ones([4]))
    if float(value) != 8.0:
        raise ValueError(f"XLA computed {float(value)}, expected 8.0")


def _precision(name: str) -> None:
    import keras
    import numpy as np

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        y = keras.layers.Dense(4)(np.ones((2, 3), dtype="float32"))
        if not np.isfinite(np.asarray(keras.ops.convert_to_numpy(y), dtype="float32")).all():
            raise ValueError("non-finite output")
    finally:
        keras.config.set_dtype_policy(previous)


def probe(prices: dict[str, float]) -> MachineReport:
    import keras
    import tensorflow as tf

    info = tf.sysconfig.get_build_info()
    build = (
        f"CUDA {info.get('cuda_version', '?')}, cuDNN {info.get('cudnn_version', '?')}"
        if info.get("is_cuda_build")
        else "CPU only (no CUDA in this TensorFlow build)"
    )
    gpus = _gpu_names(tf)
    devices = (f"CPU: {cpu_description()}", *(f"GPU {i}: {name}" for i, name in enumerate(gpus)))
    rows = [BackendRow("cpu", True, "cpu", price_per_hour("cpu", prices), "")]
    for backend, need in (("gpu", 1), ("multi-gpu", 2)):
        used = gpus if backend == "multi-gpu" else gpus[:1]
        key = f"gpu:{used[0]} x{len(used)}" if len(gpus) >= need else ""
        note = "" if len(gpus) >= need else f"needs {need}+ GPU(s) visible to TensorFlow; found {len(gpus)}"
        rows.append(BackendRow(backend, len(gpus) >= need, key, price_per_hour(key, prices) if key else None, note))
    per_worker = f"gpu:{gpus[0]} x{len(gpus)}" if gpus else "cpu"
    rows.append(
        BackendRow(
            "multiworker:N",
            True,
            per_worker,
            price_per_hour(per_worker, prices),
            "N local worker processes (gRPC on loopback) sharing this machine; its price, once",
        )
    )
    from harness.hardware._backend import tf_config

    cluster = tf_config()
    rows.append(
        BackendRow(
            "multiworker",
            cluster is not None,
            per_worker if cluster else "",
            price_per_hour(per_worker, prices) if cluster else None,
            "TF_CONFIG set: this machine is one worker of its cluster" if cluster else "needs TF_CONFIG",
        )
    )
    tpu = os.environ.get("TPU_NAME") or os.environ.get("TPU_ACCELERATOR_TYPE")
    rows.append(
        BackendRow(
            "tpu",
            bool(tpu),
            f"tpu:{os.environ.get('TPU_ACCELERATOR_TYPE', '?')}" if tpu else "",
            None,
            "TPU_NAME set: backend=tpu connects to it" if tpu else "no TPU_NAME/TPU_ACCELERATOR_TYPE set",
        )
    )
    return MachineReport(
        tensorflow=tf.__version__,
        keras=keras.__version__,
        build=build,
        devices=devices,
        xla=_try(lambda: _xla(tf)),
        precisions={name: _try(lambda name=name: _precision(name)) for name in PRECISIONS},
        backends=tuple(rows),
    )


def render(report: MachineReport) -> str:
    lines = [
        f"TensorFlow {report.tensorflow}, Keras {report.keras}; build: {report.build}",
        "devices: " + "; ".join(report.devices),
        f"XLA (jit_compile=true): {report.xla}",
        "precisions (--set precision=...): " + ", ".join(f"{k} {v}" for k, v in report.precisions.items()),
        "",
        f"{'backend':<10} {'here':<5} {'price $/h':>9}  hardware / note",
    ]
    for row in report.backends:
        price = "n/a" if row.price_per_hour is None else f"{row.price_per_hour:.4f}"
        lines.append(f"{row.backend:<10} {'yes' if row.available else 'no':<5} {price:>9}  {row.hardware or row.note}")
    return "\n".join(lines)
