"""(c) time to a target, DAWNBench's way: ``bench hardware``'s time-to-accuracy runs of one of its experiments
(``tta_experiment`` of bench.yaml: MNIST to 99% test accuracy, the mnist-speed rung) on this CPU, each from
before the data is read to the first evaluation at the target of the task's primary metric."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.bench._hardware import EXPERIMENTS, HardwareRequest, run_hardware
from harness.bench._settings import BenchSettings
from harness.tasks import get_task
from harness.tracking import Tracker


def measure_time_to_accuracy(
    data_dir: str | None, settings: BenchSettings, progress: Callable[[str], None]
) -> dict[str, Any]:
    exp = EXPERIMENTS[settings.tta_experiment]
    assert exp.target is not None
    request = HardwareRequest(
        experiments=(exp,),
        backends=("cpu",),
        repeats=settings.tta_repeats,
        quick=settings.quick,
        data_dir=data_dir,
        command="harness bench (time to accuracy)",
        throughput=False,
    )
    progress(f"(c) time to {exp.target:.3f}: {exp.what}, {request.repeats} repeat(s), data read on the clock")
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        tracker = Tracker(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        parent = run_hardware(request, tracker, progress=lambda line: progress("    " + line))
        runs = tracker.client.search_runs(
            [tracker.experiment_id("bench-hardware")], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
        )
        config = runs[0].data.params if runs else {}
    best = f"best_test_{get_task(exp.config(settings.quick).task.name).primary}"  # the task's own summary key
    repeats: list[dict[str, Any]] = []
    for run in sorted(runs, key=lambda r: int(r.data.tags["bench.repeat"])):
        m = run.data.metrics
        repeats.append(
            {
                "seed": int(run.data.tags["bench.repeat"]),
                "reached": bool(m.get("bench_reached")),
                "time_to_target_s": m.get("bench_time_to_target_s"),
                "step": m.get("bench_step_at_target"),
                "data_load_s": m["bench_data_load_s"],
                best: m[best],
                "examples_per_s": m.get("examples_per_s"),
            }
        )
    times = [float(r["time_to_target_s"]) for r in repeats if r["reached"]]
    every = len(times) == len(repeats) > 0
    median = statistics.median(times) if every else None  # a repeat that misses: no median time to claim
    out = {
        "experiment": exp.name,
        "what": exp.what,
        "rung": {"ladder": exp.ladder, "name": exp.rung},
        "config": config,
        "target": exp.target,
        "target_s": settings.tta_target_s,
        "repeats": repeats,
        "median_s": median,
        "meets_target": median is not None and median < settings.tta_target_s,
    }
    shown = "not every repeat reached it" if median is None else f"median {median:.2f} s"
    progress(f"    {len(times)}/{len(repeats)} reached {exp.target:.3f}; {shown}")
    return out
