"""(b) Steady-state training throughput of the bigger CNN through ``harness.train.train``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.bench._settings import BenchSettings
from harness.data import ArrayDataset
from harness.ladders import Ladder
from harness.tasks import get_task
from harness.train import train


def measure_throughput(
    ladder: Ladder, data: ArrayDataset, settings: BenchSettings, progress: Callable[[str], None]
) -> dict[str, Any]:
    rung, cfg = ladder.select(settings.throughput_rung).configs("standard", settings.throughput)[0]
    progress(f"(b) throughput: rung {rung.index} {rung.name}, {cfg.run.iterations} steps, eval at the end")
    t = time.perf_counter()
    result = train(cfg, data)
    wall_s = time.perf_counter() - t
    final = result.final
    primary = f"final_test_{get_task(cfg.task.name).primary}"  # the task's own summary key
    progress(f"    {final['examples_per_s']:.0f} examples/s steady, warm-up {final['time_warmup_s']:.2f} s")
    return {
        "rung": {"index": rung.index, "name": rung.name},
        "config": cfg.to_dict(),
        "wall_s": wall_s,
        "examples_per_s": final["examples_per_s"],
        "time_warmup_s": final["time_warmup_s"],
        "time_setup_s": final["time_setup_s"],
        "time_train_steady_s": final["time_train_steady_s"],
        "time_eval_s": final["time_eval_s"],
        "time_total_s": final["time_total_s"],
        "steps": final["steps"],
        primary: final[primary],
        "params_count": final["params_count"],
    }
