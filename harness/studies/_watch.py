"""The study-level display: the study's finished trials, read through Optuna's API as they change.

The process that runs a study (its own worker, ``--parallel K`` worker processes, or workers on
other machines) feeds a :class:`harness.tracking.TrialProgress` from the study's storage: after
each trial it runs itself, and at most every ``every_s`` seconds while it waits for workers
elsewhere. A trial that runs in this process also gets a step bar (``trial_sink``).
"""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING, Any

from harness.report import flat_objective
from harness.studies._trials import superseded_numbers
from harness.tasks import Objective, get_task
from harness.tracking import ProgressSink, TrialProgress

if TYPE_CHECKING:
    from harness.config import Config
    from harness.studies._context import StudyContext


def complete_values(study: Any) -> list[float]:
    """The objective of every COMPLETE trial of ``study``."""
    from optuna.trial import TrialState

    return [
        float(t.value)
        for t in study.get_trials(deepcopy=False)
        if t.state == TrialState.COMPLETE and t.value is not None
    ]


# complete trials that all tie before the display says so: two equal accuracies can be chance, three rarely
FLAT_AFTER = 3


class StudyWatch:
    """Shows trial i/N (the trials the budget counts), the best objective so far and the time left; once
    :data:`FLAT_AFTER` complete trials all scored the same, a note that the sampler has nothing to learn."""

    def __init__(
        self,
        study: Any,
        label: str,
        total: int,
        maximize: bool,
        live: bool | None = None,
        out: Any = None,
        every_s: float = 1.0,
        experiment: str = "",
        objective: str = "objective",
    ) -> None:
        if every_s < 0:
            raise ValueError(f"every_s must be >= 0, but got {every_s=}")
        self.study, self.maximize, self.every_s = study, maximize, every_s
        self.experiment, self.objective = experiment, objective
        finished, best = self._read()
        self._seen = {t.number for t in finished}  # a resumed study's trials are the display's start
        self._polled = time.monotonic()
        self._flat_said = False
        self.display = TrialProgress(label, total, len(finished), best, out=out, live=live)

    @classmethod
    def of(cls, ctx: StudyContext, label: str = "", live: bool | None = None) -> StudyWatch:
        maximize = ctx.resolved.direction == "maximize"
        return cls(
            ctx.study,
            label or f"study {ctx.name}",
            ctx.current_budget().max_trials,
            maximize,
            live,
            experiment=ctx.resolved.experiment.label,
            objective=ctx.resolved.objective.final_key,
        )

    def _read(self) -> tuple[list[Any], tuple[int, float] | None]:
        """The finished trials the budget counts (a failed trial queued again does not), and the best."""
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        gone = superseded_numbers(trials)
        finished = [t for t in trials if t.state.is_finished() and t.number not in gone]
        complete = [t for t in finished if t.state == TrialState.COMPLETE and t.value is not None]
        if not complete:
            return finished, None
        pick = max if self.maximize else min
        best = pick(complete, key=lambda t: t.value)  # the first of equals, as Optuna's best_trial
        return finished, (best.number, float(best.value))

    def poll(self, force: bool = False) -> None:
        """Read the study (at most every ``every_s`` seconds unless ``force``); show the trials that ended."""
        now = time.monotonic()
        if not force and now - self._polled < self.every_s:
            return
        self._polled = now
        finished, best = self._read()
        new = [t for t in finished if t.number not in self._seen]
        if not new:
            return
        self._seen.update(t.number for t in new)
        new.sort(key=lambda t: (t.datetime_complete or datetime.datetime.max, t.number))
        ended = [(t.number, t.state.name, None if t.value is None else float(t.value)) for t in new]
        self.display.update(len(finished), ended, best)
        values = complete_values(self.study)
        if not self._flat_said and len(values) >= FLAT_AFTER:
            flat = flat_objective(values, self.experiment, self.objective)
            if flat:
                self._flat_said = True
                self.display.note(f"note: {flat}")

    def trial_sink(self, name: str, cfg: Config, objective: Objective) -> ProgressSink:
        """The step bar of a trial that trains in this process: the objective's metric per evaluation."""
        metric = objective.step_key
        percent = metric.removeprefix("test_") in get_task(cfg.task.name).percent
        return self.display.step_sink(name, cfg.run.iterations, metric, objective.direction == "maximize", percent)

    def close(self) -> None:
        self.display.close()

    def __enter__(self) -> StudyWatch:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None:
                self.poll(force=True)  # the trials that ended since the last look
        finally:
            self.close()
