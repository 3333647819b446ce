"""Benchmarks: harness overhead vs plain Keras, training throughput, time to accuracy, study overhead;
and ``harness bench hardware`` (_hardware): experiments x backends, each measurement an MLflow run.

Run with ``nox -s bench`` (``harness bench --data-dir ../shared/data``);
``--quick`` only checks that everything runs; ``--only d`` measures one section again.
"""

from harness.bench._hardware import (
    EXPERIMENTS,
    HardwareRequest,
    backends_arg,
    parse_batch_sizes,
    parse_experiments,
    run_hardware,
)
from harness.bench._run import SECTIONS, parse_sections, run_benchmarks

__all__ = [
    "EXPERIMENTS",
    "SECTIONS",
    "HardwareRequest",
    "backends_arg",
    "parse_batch_sizes",
    "parse_experiments",
    "parse_sections",
    "run_benchmarks",
    "run_hardware",
]
