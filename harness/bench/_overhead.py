"""(a) The harness's full ladder path vs the plain-Keras baseline, interleaved A/B."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from harness.bench._plain_keras import PlainSpec, fit_numpy, fit_tf_data
from harness.bench._settings import BenchSettings
from harness.config import Config
from harness.data import ArrayDataset
from harness.ladders import Ladder, LadderRequest, run_ladder
from harness.tasks import get_task
from harness.tracking import Tracker, ladder_experiment

Progress = Callable[[str], None]
TARGET_RATIO = 1.03  # issue 23: harness / plain Keras, median wall time


def new_store(root: Path, ladder: Ladder) -> tuple[Tracker, str, float]:
    """A fresh SQLite tracking store with the ladder's experiment; returns the seconds it took.

    Created before any timing: MLflow's one-off schema migration is not what a run costs.
    """
    t = time.perf_counter()
    tracker = Tracker(f"sqlite:///{root}/mlflow.db")
    exp_id = tracker.experiment_id(ladder_experiment(ladder.name))
    return tracker, exp_id, time.perf_counter() - t


def harness_run(
    ladder: Ladder, overrides: dict[str, Any], data: ArrayDataset, tracker: Tracker, exp_id: str, root: Path
) -> dict[str, float]:
    """One ``run_ladder`` of a one-rung, one-seed ladder, exactly as ``harness ladder`` runs it,
    from the same in-memory dataset as the baseline."""
    request = LadderRequest(
        ladder=ladder,
        scale="standard",
        overrides=overrides,
        datasets={data.name: data},
        tensorboard_dir=root / "tensorboard",
        command="harness bench (overhead)",
    )
    keras.backend.clear_session()  # as the baseline starts: a clean Keras state (and a gc), off the clock
    t = time.perf_counter()
    parent_id = run_ladder(request, tracker, progress=lambda s: None)
    total_s = time.perf_counter() - t
    metrics = _child_metrics(tracker, exp_id, parent_id)
    primary = f"final_test_{get_task(ladder.rungs[0].config.task.name).primary}"  # the baseline's key too
    return {
        "wall_s": total_s,
        "examples_per_s": metrics["examples_per_s"],
        "time_warmup_s": metrics["time_warmup_s"],
        "time_train_steady_s": metrics["time_train_steady_s"],
        primary: metrics[primary],
        "params_count": metrics["params_count"],
    }


def _child_metrics(tracker: Tracker, exp_id: str, parent_id: str) -> dict[str, float]:
    runs = tracker.client.search_runs([exp_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    if len(runs) != 1:
        raise RuntimeError(f"expected one child run under {parent_id}, found {len(runs)}")
    return dict(runs[0].data.metrics)


def measure_overhead(
    ladder: Ladder, data: ArrayDataset, data_dir: str | None, settings: BenchSettings, progress: Progress
) -> dict[str, Any]:
    one_rung = ladder.select(settings.overhead_rung)
    cfg: Config = one_rung.configs("standard", settings.overhead)[0][1]
    spec = PlainSpec.from_config(cfg)
    progress(
        f"(a) overhead: rung {one_rung.rungs[0].index} {cfg.model.name}, {cfg.run.iterations} steps, "
        f"eval every {cfg.run.eval_every}; warm-up of each, then {settings.repeats} A/B pair(s)"
    )
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        tracker, exp_id, store_s = new_store(Path(tmp), one_rung)
        progress(f"    tracking store {tracker.uri} created in {store_s:.2f} s (not timed)")
        harness_args = (one_rung, settings.overhead, data, tracker, exp_id, Path(tmp))
        harness_run(*harness_args)  # warm-up: lazy imports (matplotlib), first writes, first graphs
        fit_tf_data(data, spec)
        progress("    warm-up done")
        harness: list[dict[str, float]] = []
        baseline: list[dict[str, float]] = []
        for i in range(settings.repeats):
            harness.append(harness_run(*harness_args))
            progress(f"    repeat {i + 1} harness  {harness[-1]['wall_s']:7.2f} s")
            baseline.append(fit_tf_data(data, spec))
            progress(f"    repeat {i + 1} baseline {baseline[-1]['wall_s']:7.2f} s")
    h_med = statistics.median(r["wall_s"] for r in harness)
    b_med = statistics.median(r["wall_s"] for r in baseline)
    out: dict[str, Any] = {
        "rung": {"index": one_rung.rungs[0].index, "name": one_rung.rungs[0].name},
        "config": cfg.to_dict(),
        "repeats": settings.repeats,
        "harness": harness,
        "baseline": baseline,
        "harness_median_s": h_med,
        "baseline_median_s": b_med,
        "ratio": h_med / b_med,
        "target_ratio": TARGET_RATIO,
        "harness_examples_per_s_median": statistics.median(r["examples_per_s"] for r in harness),
        "baseline_examples_per_s_median": statistics.median(r["examples_per_s"] for r in baseline),
        "store_create_s": store_s,
        "numpy_fit": None,
    }
    progress(f"    median harness {h_med:.2f} s, baseline {b_med:.2f} s, ratio {out['ratio']:.3f}")
    if settings.numpy_row:
        out["numpy_fit"] = fit_numpy(data, spec)
        progress(f"    plain Keras on numpy arrays {out['numpy_fit']['wall_s']:7.2f} s")
    return out
