"""Benchmarks: harness overhead vs plain Keras, training throughput, time to accuracy, study overhead;
and ``harness bench hardware`` (_hardware): experiments x backends, each measurement an MLflow run.

Run with ``nox -s bench`` (``harness bench --data-dir ../shared/data``);
``--quick`` only checks that everything runs; ``--only d`` measures one section again.

Names are imported lazily: most modules here import TensorFlow, and ``harness bench`` checks
``--only`` (``_settings``) before it starts TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EXPERIMENTS": "_hardware",
    "HardwareRequest": "_hardware",
    "backends_arg": "_hardware",
    "parse_batch_sizes": "_hardware",
    "parse_experiments": "_hardware",
    "run_hardware": "_hardware",
    "SECTIONS": "_settings",
    "parse_sections": "_settings",
    "run_benchmarks": "_run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f"harness.bench.{_EXPORTS[name]}"), name)
