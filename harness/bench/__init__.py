"""Benchmarks: harness overhead vs plain Keras, training throughput, time to accuracy.

Run with ``nox -s bench`` (``harness bench --data-dir ../shared/data``);
``--quick`` only checks that everything runs.
"""

from harness.bench._run import run_benchmarks

__all__ = ["run_benchmarks"]
