"""The study's trials as the budget counts them: tally, re-queued trials, stale and orphaned trials."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.studies._settings import HEARTBEAT_ATTR, REQUEUE_ATTR

if TYPE_CHECKING:
    from harness.studies._context import StudyContext


@dataclasses.dataclass(frozen=True)
class Tally:
    """The study's trials as the budget counts them."""

    used: int  # every trial except failed ones that were queued again
    complete: int
    pruned: int
    failed: int  # FAIL, not superseded by a retry
    running: int
    waiting: int
    superseded: frozenset[int]


def superseded_numbers(trials: Sequence[Any]) -> frozenset[int]:
    """Failed trials that were queued again (heartbeat retry or Ctrl-C) and so do not count."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", ()))
        out.update(t.system_attrs.get(REQUEUE_ATTR, ()))
    return frozenset(out)


def tally(trials: Sequence[Any]) -> Tally:
    from optuna.trial import TrialState

    gone = superseded_numbers(trials)
    live = [t for t in trials if t.number not in gone]
    count = collections.Counter(t.state for t in live)  # one pass: this runs before every trial
    return Tally(
        used=len(live),
        complete=count[TrialState.COMPLETE],
        pruned=count[TrialState.PRUNED],
        failed=count[TrialState.FAIL],
        running=count[TrialState.RUNNING],
        waiting=count[TrialState.WAITING],
        superseded=gone,
    )


def requeue(study: Any, frozen: Any) -> None:
    """Queue ``frozen`` (an interrupted trial) again with the same parameters and grid point."""
    import optuna

    system_attrs = dict(frozen.system_attrs)
    system_attrs[REQUEUE_ATTR] = [*system_attrs.get(REQUEUE_ATTR, ()), frozen.number]
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=frozen.params,
            distributions=frozen.distributions,
            user_attrs=frozen.user_attrs,
            system_attrs=system_attrs,
        )
    )


def fail_stale(study: Any) -> None:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def fail_orphans(ctx: StudyContext, trials: Sequence[Any]) -> bool:
    """Fail RUNNING trials whose worker died before the trial started (no heartbeat row, so Optuna
    never calls them stale): created more than the grace period ago and never claimed by a worker."""
    import datetime

    import optuna
    from optuna.trial import TrialState

    now = datetime.datetime.now()
    grace = datetime.timedelta(seconds=ctx.storage.grace_period)
    found = False
    for t in trials:
        if t.state != TrialState.RUNNING or t.datetime_start is None or now - t.datetime_start < grace:
            continue
        if (t.user_attrs.get("harness") or {}).get("trial") == t.number:  # claimed (a retry copies the old attr)
            continue
        if HEARTBEAT_ATTR in t.system_attrs:  # its worker is beating (it claims it after its MLflow run starts,
            continue  # which may wait on a lock); once the beat stops, fail_stale fails it
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            if ctx.storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                callback = ctx.storage.get_heartbeat_stale_trial_callback()
                if callback is not None:
                    callback(ctx.study, ctx.storage.get_trial(t._trial_id))
                found = True
    return found
