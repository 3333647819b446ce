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

from harness import _framework
from harness.hardware._backend import _gpu_names, accelerators, cpu_description
from harness.hardware._prices import PriceRow, PriceTable, price_per_hour, price_rows

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class BackendRow:
    backend: str
    available: bool
    hardware: str  # price-table key
    price_per_hour: float | None
    note: str
    price_rows: tuple[tuple[PriceRow, int], ...] = ()  # the rows that make the price, each with its count


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


def _row(backend: str, available: bool, key: str, note: str, prices: PriceTable) -> BackendRow:
    if not key:
        return BackendRow(backend, available, key, None, note)
    return BackendRow(backend, available, key, price_per_hour(key, prices), note, price_rows(key, prices))


def _probe_without_tensorflow(prices: PriceTable) -> MachineReport:
    """What a machine without TensorFlow offers: Keras on JAX or PyTorch, on the CPU or one GPU."""
    import keras

    framework = _framework.current()
    gpus = accelerators()
    devices = (f"CPU: {cpu_description()}", *(f"GPU {i}: {name}" for i, name in enumerate(gpus)))
    rows = [
        _row("cpu", not gpus, "cpu", f"{framework} would place the arrays on the GPU" if gpus else "", prices),
        _row(
            "gpu", bool(gpus), f"gpu:{gpus[0]} x1" if gpus else "", "" if gpus else f"{framework} sees no GPU", prices
        ),
    ]
    need_tf = "a tf.distribute strategy: needs TensorFlow, not installed here"
    rows += [_row(b, False, "", need_tf, prices) for b in ("cpu:N", "multi-gpu", "gpu:N", "multiworker:N", "tpu")]
    return MachineReport(
        tensorflow="not installed",
        keras=f"{keras.__version__} on {framework}",
        build=f"Keras on {framework} (no TensorFlow: run.framework={framework})",
        devices=devices,
        xla="n/a (JAX compiles every step with XLA)" if framework == "jax" else "n/a",
        precisions={name: _try(lambda name=name: _precision(name)) for name in PRECISIONS},
        backends=tuple(rows),
    )


def probe(prices: PriceTable) -> MachineReport:
    import keras

    if not _framework.installed("tensorflow"):
        return _probe_without_tensorflow(prices)
    import tensorflow as tf

    info = tf.sysconfig.get_build_info()
    build = (
        f"CUDA {info.get('cuda_version', '?')}, cuDNN {info.get('cudnn_version', '?')}"
        if info.get("is_cuda_build")
        else "CPU only (no CUDA in this TensorFlow build)"
    )
    gpus = _gpu_names(tf)
    devices = (f"CPU: {cpu_description()}", *(f"GPU {i}: {name}" for i, name in enumerate(gpus)))
    rows = [_row("cpu", True, "cpu", "", prices)]
    rows.append(_row("cpu:N", True, "cpu", "MirroredStrategy over N logical CPU devices (tests, no speed-up)", prices))
    for backend, need in (("gpu", 1), ("multi-gpu", 2)):
        used = gpus if backend == "multi-gpu" else gpus[:1]
        key = f"gpu:{used[0]} x{len(used)}" if len(gpus) >= need else ""
        note = "" if len(gpus) >= need else f"needs {need}+ GPU(s) visible to TensorFlow; found {len(gpus)}"
        rows.append(_row(backend, len(gpus) >= need, key, note, prices))
    note = f"MirroredStrategy over the first N of {len(gpus)} GPU(s)" if gpus else "needs GPUs visible to TensorFlow"
    rows.append(_row("gpu:N", bool(gpus), f"gpu:{gpus[0]} xN" if gpus else "", note, prices))
    per_worker = f"gpu:{gpus[0]} x{len(gpus)}" if gpus else "cpu"
    note = "N local worker processes (gRPC on loopback) sharing this machine; its price, once"
    rows.append(_row("multiworker:N", True, per_worker, note, prices))
    from harness.hardware._backend import tf_config

    cluster = tf_config()
    note = "TF_CONFIG set: this machine is one worker of its cluster" if cluster else "needs TF_CONFIG"
    rows.append(_row("multiworker", cluster is not None, per_worker if cluster else "", note, prices))
    tpu = os.environ.get("TPU_NAME") or os.environ.get("TPU_ACCELERATOR_TYPE")
    key = f"tpu:{os.environ.get('TPU_ACCELERATOR_TYPE', '?')}" if tpu else ""
    note = "TPU_NAME set: backend=tpu connects to it" if tpu else "no TPU_NAME/TPU_ACCELERATOR_TYPE set"
    rows.append(_row("tpu", bool(tpu), key, note, prices))
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
        lines.extend(f"{'':<28}{_cite(priced, count)}" for priced, count in row.price_rows)
    return "\n".join(lines)


def _cite(row: PriceRow, count: int) -> str:
    """Where a price comes from, so that a reader can check it."""
    times = f"{count} x " if count != 1 else ""
    said = f"read {row.date} from {row.source}" if row.source else "no source or date given (a flat `key: price` row)"
    return f"= {times}{row.key} at {row.price:.4f} $/h, {said}"
