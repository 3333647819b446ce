"""Benchmarks: harness overhead vs plain Keras, training throughput, time to accuracy, study overhead;
and ``harness bench hardware`` (_hardware): experiments x backends, each measurement an MLflow run.

Run with ``nox -s bench`` (``harness bench --data-dir ../shared/data``);
``--quick`` only checks that everything runs; ``--only d`` measures one section again.

Names are imported lazily (typed for mypy by the ``TYPE_CHECKING`` imports): most modules here import
TensorFlow or Keras at their top (``_hardware``, and every section ``_run`` drives), and ``harness bench``
checks ``--only`` (``_settings``) before it starts TensorFlow; importing ``_settings`` runs this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports

if TYPE_CHECKING:
    from harness.bench._hardware import (
        EXPERIMENTS,
        HardwareRequest,
        backends_arg,
        parse_batch_sizes,
        parse_experiments,
        run_hardware,
    )
    from harness.bench._report import read_results, write_pages
    from harness.bench._run import run_benchmarks
    from harness.bench._settings import SECTIONS, parse_sections, parse_study_trials

_EXPORTS = {
    "EXPERIMENTS": "_hardware",
    "HardwareRequest": "_hardware",
    "backends_arg": "_hardware",
    "parse_batch_sizes": "_hardware",
    "parse_experiments": "_hardware",
    "run_hardware": "_hardware",
    "SECTIONS": "_settings",
    "parse_sections": "_settings",
    "parse_study_trials": "_settings",
    "read_results": "_report",
    "write_pages": "_report",
    "run_benchmarks": "_run",
}

__all__ = [  # the keys of _EXPORTS, written out so that linters see the TYPE_CHECKING names used
    "EXPERIMENTS",
    "SECTIONS",
    "HardwareRequest",
    "backends_arg",
    "parse_batch_sizes",
    "parse_experiments",
    "parse_sections",
    "parse_study_trials",
    "read_results",
    "run_benchmarks",
    "run_hardware",
    "write_pages",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
