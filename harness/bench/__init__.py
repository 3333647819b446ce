"""Benchmarks: harness overhead vs plain Keras, training throughput, time to accuracy, study overhead.

Run with ``nox -s bench`` (``harness bench --data-dir ../shared/data``);
``--quick`` only checks that everything runs; ``--only d`` measures one section again.
"""

from harness.bench._run import SECTIONS, parse_sections, run_benchmarks

__all__ = ["SECTIONS", "parse_sections", "run_benchmarks"]
