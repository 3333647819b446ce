"""The benchmark driver: load the data once, run (a), (b), (c), write bench.md and bench.json."""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.bench._overhead import measure_overhead
from harness.bench._report import write_report
from harness.bench._settings import bench_settings
from harness.bench._study_overhead import measure_study_overhead
from harness.bench._throughput import measure_throughput
from harness.bench._time_to_accuracy import measure_time_to_accuracy
from harness.data import ArrayDataset, load_dataset
from harness.hardware import cpu_description
from harness.ladders import load_ladder
from harness.tracking import git_commit, versions


def _progress_printer() -> Callable[[str], None]:
    """Prints progress lines to stdout, each with the seconds since the benchmark started."""
    started = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {line}", flush=True)

    return progress


def _meta(quick: bool, data: ArrayDataset, load_s: float, out_dir: Path) -> dict[str, Any]:
    import tensorflow as tf

    return {
        "quick": quick,
        "command": "harness bench --quick" if quick else "nox -s bench",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_description(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "versions": versions(),
        "git_commit": git_commit(),
        "data_source": data.source,
        "data_checksum": data.checksum,
        "data_load_s": load_s,
        "out_dir": str(out_dir),
    }


def run_benchmarks(data_dir: str | None, out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Run the benchmarks in this process; write ``bench.md`` and ``bench.json`` to ``out_dir``."""
    settings = bench_settings(quick)
    progress = _progress_printer()
    progress(f"harness bench{' --quick' if quick else ''} -> {out_dir}")
    ladder = load_ladder("mnist")
    t = time.perf_counter()
    data = load_dataset(ladder.rungs[0].config.dataset, data_dir)
    load_s = time.perf_counter() - t
    progress(f"data {data.source}: {len(data.x_train)} train, {len(data.x_test)} test, {load_s:.2f} s")
    results: dict[str, Any] = {
        "meta": _meta(quick, data, load_s, out_dir),
        "settings": dataclasses.asdict(settings),
    }
    results["overhead"] = measure_overhead(ladder, data, data_dir, settings, progress)
    results["throughput"] = measure_throughput(ladder, data, settings, progress)
    results["time_to_accuracy"] = measure_time_to_accuracy(ladder, data, settings, progress)
    results["study_overhead"] = measure_study_overhead(quick, progress)
    md, js = write_report(results, out_dir)
    progress(f"wrote {md} and {js}")
    return results
