"""Sinks and displays that show runs and studies while they train.

``ProgressSink`` (a metric sink): on a terminal, a rich progress bar per run (step i/N, elapsed, time
left, the latest and best value of the metric), replaced in place; elsewhere (CI, a log file) a plain
line at most every ``every_s`` seconds, and one at the last evaluation, so that long rungs are never
silent. ``TrialProgress``: a study's trials as they end (trial i/N, best objective so far, elapsed,
time left), a rich display on a terminal that a trial's ``ProgressSink`` joins as a second bar, and
one plain line per finished trial elsewhere.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def _fmt(value: float, percent: bool) -> str:
    return f"{100 * value:.2f}%" if percent else f"{value:.4g}"


def _left(seconds: float) -> str:
    return "" if math.isnan(seconds) else f"about {seconds:.0f} s left"


class ProgressSink:
    """Shows ``metric`` (latest and best) and the step against ``total`` steps, with a time-left estimate.

    ``shared``: a rich ``Progress`` another display owns and shows (a study's :class:`TrialProgress`);
    the bar is then one task of it, removed at ``close``, since rich shows one live display at a time.
    """

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
        shared: Any = None,
    ) -> None:
        self.label, self.total, self.metric = label, total, metric
        self.maximize, self.percent, self.every_s = maximize, percent, every_s
        self.out = out or sys.stdout
        self.live = shared is not None or (self.out.isatty() if live is None else live)
        self.best = math.nan
        self._last_print = -math.inf
        self._shared = shared
        self._bar: Any = None
        self._task: Any = None

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        value = metrics.get(self.metric)
        if value is not None and math.isfinite(value):
            better = value > self.best if self.maximize else value < self.best
            self.best = value if math.isnan(self.best) or better else self.best
        name = self.metric.removeprefix("test_")
        shown = "" if value is None else f"{name} {_fmt(value, self.percent)} (best {_fmt(self.best, self.percent)})"
        wall = float(metrics.get("wall_s", 0.0))
        left = wall / step * (self.total - step) if step and step < self.total else math.nan
        if self.live:
            self._show_live(step, shown, left)
            return
        now = time.monotonic()
        if now - self._last_print >= self.every_s or step >= self.total:
            self._last_print = now
            eta = "" if math.isnan(left) else f", {_left(left)}"
            print(f"    {self.label}: step {step}/{self.total}  {shown}  {wall:.0f} s{eta}", file=self.out, flush=True)

    def _show_live(self, step: int, shown: str, left: float) -> None:
        if self._bar is None and self._shared is not None:
            self._bar = self._shared
            self._task = self._bar.add_task(f"  {self.label}", total=self.total, shown="", left="")
        elif self._bar is None:
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
        self._bar.update(self._task, completed=step, shown=shown, left=_left(left))

    def close(self) -> None:
        if self._bar is not None:
            if self._shared is not None:
                self._bar.remove_task(self._task)  # the study's display goes on
            else:
                self._bar.stop()
            self._bar = None


class TrialProgress:
    """A study's progress: trial i/N, the best objective so far and its trial number, elapsed, time left.

    Whoever watches the study calls ``update`` when trials end (the count of finished trials, the
    trials that ended since the last call, and the best so far). ``done`` and ``best`` are what a
    resumed study had already; the time left is estimated from the trials this display saw end.
    On a terminal: one rich display, the study's bar first; ``step_sink`` gives a trial running in
    this process a bar of its own in the same display. Elsewhere: one plain line per ended trial.
    """

    def __init__(
        self,
        label: str,
        total: int,
        done: int = 0,
        best: tuple[int, float] | None = None,
        out: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        if total < 1 or done < 0:
            raise ValueError(f"need total >= 1 and done >= 0, but got {total=} and {done=}")
        self.label, self.total, self.done, self.best = label, total, done, best
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self._done_at_start = done
        self._started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
                TextColumn("{task.fields[shown]}"),
                console=Console(file=self.out),
            )
            self._bar.start()
            shown = self._best_text()
            self._task = self._bar.add_task(label, total=total, completed=min(done, total), shown=shown, left="")

    def _best_text(self) -> str:
        return "no complete trial yet" if self.best is None else f"best {self.best[1]:.4f} (#{self.best[0]})"

    def update(self, done: int, ended: Sequence[tuple[int, str, float | None]], best: tuple[int, float] | None) -> None:
        """``ended``: (trial number, state, objective or None) of each trial that ended since the last call."""
        self.done, self.best = done, best
        elapsed = time.monotonic() - self._started
        ran = done - self._done_at_start
        left = elapsed / ran * (self.total - done) if ran > 0 and done < self.total else math.nan
        if self.live:
            if self._bar is not None:  # else closed: nothing to show
                self._bar.update(self._task, completed=min(done, self.total), shown=self._best_text(), left=_left(left))
            return
        eta = "" if math.isnan(left) else f", {_left(left)}"
        first = done - len(ended) + 1
        for i, (number, state, value) in enumerate(ended, first):
            shown = "" if value is None else f" {value:.4f}"
            print(  # the count the budget sees, then Optuna's trial number (from 0, retries included)
                f"trials {i}/{self.total}: #{number} {state}{shown}  {self._best_text()}  {elapsed:.0f} s{eta}",
                file=self.out,
                flush=True,
            )

    def note(self, text: str) -> None:
        """One line about the study (not a trial): above the bars on a terminal, else a plain line."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.out, flush=True)

    def step_sink(
        self, label: str, total: int, metric: str, maximize: bool = True, percent: bool = True
    ) -> ProgressSink:
        """A :class:`ProgressSink` for a trial that trains in this process: a bar of this display on a terminal."""
        return ProgressSink(label, total, metric, maximize, percent, out=self.out, live=self.live, shared=self._bar)

    def close(self) -> None:
        """Stops the rich display, leaving its last state on the terminal; closing twice is harmless."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
