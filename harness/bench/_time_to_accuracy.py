"""(c) Wall time from the start of ``train`` to a target test accuracy, on the best MNIST rung."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras

from harness.bench._settings import BenchSettings
from harness.data import ArrayDataset
from harness.ladders import Ladder
from harness.train import train


class StopAtAccuracy(keras.callbacks.Callback):
    """Stops ``fit`` at the first evaluation whose ``val_accuracy`` reaches ``target``."""

    def __init__(self, target: float) -> None:
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if float((logs or {}).get("val_accuracy", 0.0)) >= self.target:
            self.model.stop_training = True


def measure_time_to_accuracy(
    ladder: Ladder, data: ArrayDataset, settings: BenchSettings, progress: Callable[[str], None]
) -> dict[str, Any]:
    # the best rung is the one with the highest reference result, wherever it sits in the ladder
    best = max((r for r in ladder.rungs if r.reference is not None), key=lambda r: r.reference or 0.0)
    rung, cfg = ladder.select(best.name).configs("standard", settings.tta)[0]
    target = settings.tta_target
    progress(
        f"(c) time to {target:.3f}: rung {rung.index} {rung.name}, eval every {cfg.run.eval_every}, "
        f"cap {cfg.run.iterations} steps"
    )
    t = time.perf_counter()
    result = train(cfg, data, extra_callbacks=[StopAtAccuracy(target)])
    wall_s = time.perf_counter() - t
    hit = next((row for row in result.history if row["test_accuracy"] >= target), None)
    out = {
        "rung": {"index": rung.index, "name": rung.name, "reference": rung.reference},
        "config": cfg.to_dict(),
        "target": target,
        "reached": hit is not None,
        "time_to_target_s": None if hit is None else hit["wall_s"],
        "step": None if hit is None else int(hit["step"]),
        "wall_s": wall_s,
        "best_test_accuracy": result.final["best_test_accuracy"],
        "examples_per_s": result.final["examples_per_s"],
        "history": result.history,
    }
    if hit is None:
        progress(f"    not reached in {cfg.run.iterations} steps (best {out['best_test_accuracy']:.4f})")
    else:
        progress(f"    reached {hit['test_accuracy']:.4f} at step {out['step']} after {hit['wall_s']:.1f} s")
    return out
