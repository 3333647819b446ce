"""(e) YOLO training throughput: harness vs a plain-Keras fit of the same model on the same tiles,
and the tile pipeline's own rate (it must never be the bottleneck).

The harness side is ``harness.train.train`` on the yolo ladder's 16x16x2 rung: tiles cut on the
fly from the whole images, YOLO targets made per tile, the task's metrics on every batch (the IoU
logged at evaluation only, as the reference) and the evaluation recorder. The plain side is what a user
would write: the same model (built by the same factory) and loss, compiled and fitted on the same
tiles, pre-cut into memory, with no metrics. Runs alternate (harness, plain, harness, plain, ...)
and the ratio is of the medians.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from harness.bench._plain_keras import Decay, SteadyClock
from harness.bench._yolo_candidates import measure_candidates, render_candidates
from harness.config import Config, apply_overrides
from harness.data import ArrayDataset, load_dataset
from harness.ladders import load_ladder
from harness.models import create_model
from harness.tasks import get_task
from harness.train import fresh_session, train

Progress = Callable[[str], None]
RUNG = "grid16x16x2-swarm"


@dataclasses.dataclass(frozen=True)
class YoloBenchSettings:
    scale: str  # the ladder scale the rung runs at (its data and widths)
    steps: int  # training steps per timed run
    repeats: int  # timed (harness, plain) pairs after the warm-up pairs
    pipeline_batches: int  # batches drawn from the tile pipeline alone
    warmups: int = 1  # untimed (harness, plain) pairs first; quick mode only checks that it runs
    candidate_steps: int = 100  # training steps per candidate run (each in a fresh process)
    candidate_repeats: int = 3  # interleaved runs per candidate


def yolo_settings(quick: bool) -> YoloBenchSettings:
    if quick:
        return YoloBenchSettings(
            scale="smoke", steps=6, repeats=1, pipeline_batches=5, warmups=0, candidate_steps=6, candidate_repeats=1
        )
    return YoloBenchSettings(scale="standard", steps=200, repeats=2, pipeline_batches=100)


def _config(settings: YoloBenchSettings) -> Config:
    overrides = {
        "iterations": settings.steps,
        "eval_every": settings.steps,
        "test_subset": 32,  # one small evaluation at the end: this measures training
        "eval_images": 0,
    }
    return load_ladder("yolo").select(RUNG).configs(settings.scale, overrides)[0][1]


def plain_fit(cfg: Config, data: ArrayDataset, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The same model and loss, ``fit`` on pre-cut tiles in memory; no metrics, no callbacks but the clock."""
    task = get_task(cfg.task.name)
    fresh_session(cfg.run.seed)
    model = create_model(cfg.model, data.input_shape, task.outputs(data, cfg))
    o = cfg.optim
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=Decay(o.lr0, o.lr1, o.lr2)),
        loss=task.loss(cfg),
        steps_per_execution=min(cfg.run.steps_per_execution, cfg.run.iterations),
    )
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .repeat()
        .batch(cfg.run.batch_size, drop_remainder=True)
        .map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    clock = SteadyClock()
    model.fit(ds, epochs=1, steps_per_epoch=cfg.run.iterations, callbacks=[clock, _EndClock(clock)], verbose=0)
    steady = cfg.run.iterations - clock.warmup_steps
    return {
        "examples_per_s": steady * cfg.run.batch_size / clock.train_s if clock.train_s > 0 else 0.0,
        "time_warmup_s": clock.warmup_s,
        "time_train_steady_s": clock.train_s,
    }


class _EndClock(keras.callbacks.Callback):
    """Stops the steady clock at the end of training (the plain fit has no evaluation to stop it)."""

    def __init__(self, clock: SteadyClock) -> None:
        super().__init__()
        self.clock = clock

    def on_train_end(self, logs: Any = None) -> None:
        self.clock.on_test_begin()


def _tiles(cfg: Config, data: ArrayDataset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` tiles (uint8) and packed targets of the task's own training stream."""
    xs, ys = [], []
    for xb, yb in get_task(cfg.task.name).train_dataset(data, cfg).take(-(-n // cfg.run.batch_size)):
        xs.append(np.round(xb.numpy() * 255.0).astype(np.uint8))
        ys.append(yb.numpy())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def pipeline_rate(cfg: Config, data: ArrayDataset, batches: int) -> float:
    """Tiles per second the training stream delivers on its own (after one warm-up batch)."""
    ds = iter(get_task(cfg.task.name).train_dataset(data, cfg))
    next(ds)
    t = time.perf_counter()
    for _ in range(batches):
        next(ds)
    return batches * cfg.run.batch_size / (time.perf_counter() - t)


def measure_yolo(data_dir: str | Path | None, quick: bool, progress: Progress) -> dict[str, Any]:
    settings = yolo_settings(quick)
    cfg = _config(settings)
    t = time.perf_counter()
    data = load_dataset(cfg.data, data_dir)
    progress(f"(e) yolo: {data.source}, {time.perf_counter() - t:.1f} s to load; rung {RUNG} at {settings.scale}")
    x, y = _tiles(cfg, data, settings.steps * cfg.run.batch_size)
    harness_runs, plain_runs = [], []
    for i in range(settings.warmups + settings.repeats):  # warm-up pairs warm caches and are not counted
        h = train(cfg, data).final
        p = plain_fit(cfg, data, x, y)
        warm_up = i < settings.warmups
        if not warm_up:
            harness_runs.append({k: h[k] for k in ("examples_per_s", "time_warmup_s", "time_train_steady_s")})
            plain_runs.append(p)
        progress(
            f"    pair {i}{' (warm-up)' if warm_up else ''}: harness {h['examples_per_s']:.1f}, "
            f"plain {p['examples_per_s']:.1f} tiles/s"
        )
    harness_rate = statistics.median(r["examples_per_s"] for r in harness_runs)
    plain_rate = statistics.median(r["examples_per_s"] for r in plain_runs)
    pipe = pipeline_rate(cfg, data, settings.pipeline_batches)
    progress(f"    tile pipeline alone: {pipe:.0f} tiles/s")
    steps = settings.candidate_steps
    candidate_cfg = apply_overrides(cfg, {"iterations": steps, "eval_every": steps}, "bench (e) candidates")
    candidates = measure_candidates(candidate_cfg, data_dir, settings.candidate_repeats, quick, progress)
    return {
        "rung": RUNG,
        "scale": settings.scale,
        "config": cfg.to_dict(),
        "settings": dataclasses.asdict(settings),
        "harness": harness_runs,
        "plain": plain_runs,
        "harness_tiles_per_s": harness_rate,
        "plain_tiles_per_s": plain_rate,
        "ratio": harness_rate / plain_rate if plain_rate else float("nan"),
        "target_ratio": 0.97,
        "pipeline_tiles_per_s": pipe,
        "pipeline_over_training": pipe / harness_rate if harness_rate else float("nan"),
        "target_pipeline_over_training": 3.0,
        "candidates": candidates,
    }


def render_yolo(e: dict[str, Any]) -> list[str]:
    ok = "met" if e["ratio"] >= e["target_ratio"] else "NOT met"
    ok_pipe = "met" if e["pipeline_over_training"] >= e["target_pipeline_over_training"] else "NOT met"
    cfg = e["config"]
    return [
        f"## (e) YOLO training throughput — rung `{e['rung']}` at {e['scale']} scale",
        "",
        f"Model `{cfg['model']['name']}` {cfg['model']['layers']} layers (first layer "
        f"{cfg['model']['first_layer_filter_depth']} filters), grid {cfg['task']['grid_nn']}x"
        f"{cfg['task']['grid_nn']}x{cfg['task']['cell_n']}, batch {cfg['run']['batch_size']}, "
        f"{e['settings']['steps']} steps per run, {e['settings']['repeats']} timed pairs after "
        f"{e['settings'].get('warmups', 1)} warm-up pair(s). "
        "Harness: `harness.train.train` (tiles cut on the fly, targets per tile, the task's metrics on every "
        "batch, the IoU logged at evaluation only). "
        "Plain Keras: the same model and loss fitted on the same tiles pre-cut into memory, no metrics.",
        "",
        "| harness tiles/s | plain Keras tiles/s | ratio (target ≥ 0.97) | tile pipeline alone tiles/s "
        "| pipeline / training (target ≥ 3) |",
        "|---:|---:|---:|---:|---:|",
        f"| {e['harness_tiles_per_s']:.1f} | {e['plain_tiles_per_s']:.1f} | {e['ratio']:.3f} ({ok}) "
        f"| {e['pipeline_tiles_per_s']:.0f} | {e['pipeline_over_training']:.1f} ({ok_pipe}) |",
        "",
        *(render_candidates(e["candidates"]) if "candidates" in e else []),
    ]
