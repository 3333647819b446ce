"""A GPU's peak memory, asked of the framework Keras runs on (each keeps its own allocator's count).

- TensorFlow: ``tf.config.experimental`` resets and reads the peak of ``GPU:0``.
- PyTorch: ``torch.cuda`` resets and reads the peak allocated.
- JAX: the device's ``memory_stats()`` has a peak but no reset, so the peak is the process's since it
  started (a benchmark's measurement runs in a process of its own only where its framework differs).
"""

from __future__ import annotations

from harness import _framework


def reset_gpu_peak() -> None:
    """Start counting the first GPU's peak memory from now, where the framework can."""
    framework = _framework.current()
    if framework == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")
    elif framework == "torch":
        import torch

        torch.cuda.reset_peak_memory_stats()


def gpu_peak_mb() -> float:
    """The first GPU's peak memory in MiB (nan where the framework does not say)."""
    framework = _framework.current()
    if framework == "tensorflow":
        import tensorflow as tf

        return float(tf.config.experimental.get_memory_info("GPU:0")["peak"]) / 2**20
    if framework == "torch":
        import torch

        return float(torch.cuda.max_memory_allocated()) / 2**20
    import jax

    gpus = [d for d in jax.local_devices() if d.platform == "gpu"]
    stats = (gpus[0].memory_stats() or {}) if gpus else {}
    return float(stats["peak_bytes_in_use"]) / 2**20 if "peak_bytes_in_use" in stats else float("nan")


def gpu_count() -> int:
    """The GPUs the framework sees (TensorFlow's where it is installed: its strategies place the runs)."""
    if _framework.installed("tensorflow"):
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    from harness.hardware._backend import accelerators

    return len(accelerators())
