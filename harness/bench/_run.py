"""The benchmark driver: load the data once, run (a) to (d) or a subset, write bench.md, bench.html and bench.json."""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.bench._overhead import measure_overhead
from harness.bench._replay import measure_replay
from harness.bench._report import write_report
from harness.bench._settings import SECTIONS, bench_ladder, bench_settings
from harness.bench._study_overhead import measure_study_overhead
from harness.bench._throughput import measure_throughput
from harness.bench._time_to_accuracy import measure_time_to_accuracy
from harness.bench._yolo import measure_yolo
from harness.data import ArrayDataset, load_dataset
from harness.errors import UserError
from harness.hardware import cpu_description
from harness.ladders import load_ladder
from harness.tracking import git_commit, versions


def _progress_printer() -> Callable[[str], None]:
    """Prints progress lines to stdout, each with the seconds since the benchmark started."""
    started = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {line}", flush=True)

    return progress


def _meta(quick: bool, data: ArrayDataset | None, load_s: float, out_dir: Path, command: str) -> dict[str, Any]:
    import tensorflow as tf

    return {
        "quick": quick,
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_description(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "versions": versions(),
        "git_commit": git_commit(),
        "data_source": data.source if data is not None else None,
        "data_checksum": data.checksum if data is not None else None,
        "data_load_s": load_s,
        "out_dir": str(out_dir),
    }


def _earlier(out_dir: Path, quick: bool, keep: tuple[str, ...]) -> dict[str, Any]:
    """Sections of the earlier bench.json in ``out_dir`` that this run does not measure again,
    each stamped with when and at which commit it was measured. Quick and standard never mix."""
    path = out_dir / "bench.json"
    if not keep or not path.exists():
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read the earlier results to keep ({exc}); rerun without --only") from None
    if not isinstance(old, dict) or old.get("meta", {}).get("quick") != quick:
        return {}
    stamp = {k: old["meta"].get(k) for k in ("date", "git_commit", "command", "data_source", "data_checksum")}
    return {key: {"measured": stamp, **old[key]} for key in keep if key in old}


def run_benchmarks(
    data_dir: str | None,
    out_dir: Path,
    quick: bool = False,
    only: tuple[str, ...] | None = None,
    study_trials: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Run the benchmarks in this process; write ``bench.md`` and ``bench.json`` to ``out_dir``.

    ``only`` (section keys) measures a subset again and keeps the other sections of the
    earlier ``bench.json`` there, each marked with the date and commit it was measured at.
    ``study_trials``: the study sizes of section (d) (default: the mode's own).
    """
    sections = only or tuple(SECTIONS)
    settings = bench_settings(quick)
    progress = _progress_printer()
    command = "harness bench" + (" --quick" if quick else "")
    if only and set(only) != set(SECTIONS):
        command += " --only " + ",".join(SECTIONS[k][0] for k in only)
    if study_trials and "study_overhead" in sections:
        command += " --study-trials " + ",".join(map(str, study_trials))
    progress(f"{command} -> {out_dir}")
    kept = _earlier(out_dir, quick, tuple(k for k in SECTIONS if k not in sections))
    ladder = load_ladder(bench_ladder())
    data, load_s = None, 0.0
    if set(sections) & {"overhead", "throughput"}:  # (c) reads its data on its own clock
        t = time.perf_counter()
        data = load_dataset(ladder.rungs[0].config.data.name, data_dir)
        load_s = time.perf_counter() - t
        progress(f"data {data.source}: {len(data.x_train)} train, {len(data.x_test)} test, {load_s:.2f} s")
    meta = _meta(quick, data, load_s, out_dir, command)
    results: dict[str, Any] = {"meta": meta, "settings": dataclasses.asdict(settings)}
    stamp = {k: meta[k] for k in ("date", "git_commit", "command", "data_source", "data_checksum")}
    measure: dict[str, Callable[[ArrayDataset], dict[str, Any]]] = {
        "overhead": lambda d: measure_overhead(ladder, d, data_dir, settings, progress),
        "throughput": lambda d: measure_throughput(ladder, d, settings, progress),
    }
    for key in SECTIONS:
        if key not in sections:
            if key in kept:
                results[key] = kept[key]
        elif key == "study_overhead":  # no dataset: a trivial objective
            results[key] = {"measured": stamp, **measure_study_overhead(quick, progress, counts=study_trials)}
        elif key == "yolo":  # its own dataset: whole aerial images
            results[key] = {"measured": stamp, **measure_yolo(data_dir, quick, progress)}
        elif key == "time_to_accuracy":  # its data is read on the clock, every repeat
            results[key] = {"measured": stamp, **measure_time_to_accuracy(data_dir, settings, progress)}
        elif key == "replay":  # the landscape in the tracking store (or a synthetic one)
            results[key] = {"measured": stamp, **measure_replay(quick, progress)}
        else:
            assert data is not None
            results[key] = {"measured": stamp, **measure[key](data)}
    md, page, js = write_report(results, out_dir)
    progress(f"wrote {md}, {page} and {js}")
    return results
