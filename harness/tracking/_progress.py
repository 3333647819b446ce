"""A metric sink that shows a run's evaluations while it trains.

On a terminal: a rich progress bar per run (step i/N, elapsed, time left, the latest and best value of
the metric), replaced in place. Elsewhere (CI, a log file): a plain line at most every
``every_s`` seconds, and one at the last evaluation, so that long rungs are never silent.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO


def _fmt(value: float, percent: bool) -> str:
    return f"{100 * value:.2f}%" if percent else f"{value:.4g}"


class ProgressSink:
    """Shows ``metric`` (latest and best) and the step against ``total`` steps, with a time-left estimate."""

    def __init__(
        self,
        label: str,
        total: int,
        metric: str,
        maximize: bool = True,
        percent: bool = True,
        out: TextIO | None = None,
        live: bool | None = None,
        every_s: float = 10.0,
    ) -> None:
        self.label, self.total, self.metric = label, total, metric
        self.maximize, self.percent, self.every_s = maximize, percent, every_s
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.best = math.nan
        self._last_print = -math.inf
        self._bar: Any = None
        self._task: Any = None

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        value = metrics.get(self.metric)
        if value is not None and math.isfinite(value):
            better = value > self.best if self.maximize else value < self.best
            self.best = value if math.isnan(self.best) or better else self.best
        name = self.metric.removeprefix("test_")
        shown = "" if value is None else f"{name} {_fmt(value, self.percent)} (best {_fmt(self.best, self.percent)})"
        if self.live:
            self._show_live(step, shown)
            return
        now = time.monotonic()
        if now - self._last_print >= self.every_s or step >= self.total:
            self._last_print = now
            wall = float(metrics.get("wall_s", 0.0))
            left = wall / step * (self.total - step) if step else math.nan
            eta = "" if math.isnan(left) or step >= self.total else f", about {left:.0f} s left"
            print(f"    {self.label}: step {step}/{self.total}  {shown}  {wall:.0f} s{eta}", file=self.out, flush=True)

    def _show_live(self, step: int, shown: str) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("    {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[shown]}"),
                console=Console(file=self.out),
                transient=True,  # the run's one-line summary replaces it when the run ends
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, shown="")
        self._bar.update(self._task, completed=step, shown=shown)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
