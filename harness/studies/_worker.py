"""The worker loop: take the next trial of a shared study, run it, repeat until the budget is spent.

Every worker (the ``study`` command's own, ``--parallel`` processes, and
``harness worker`` on other machines) runs this loop against the same storage:

1. Under the study's budget lock: fail stale trials (no heartbeat for the grace
   period: a killed worker), which ends their MLflow runs FAILED and queues each
   once more; count the trials; stop if ``max_failed`` failed trials or the budget
   is reached (``max_trials`` counts every trial, old and new, except a failed
   trial that was queued again); else create the next trial (a queued one first).
2. Run it inside ``study.optimize(n_trials=1)`` (Optuna's heartbeat thread, its
   FAIL/PRUNED bookkeeping), as an MLflow child run of the study's parent run.
3. A trial that raises (``RunFailed``, a NaN loss, any exception inside training)
   is FAIL and the loop goes on; a ``UserError`` aborts the study; Ctrl-C ends the
   MLflow run KILLED, the Optuna trial FAIL and queues it again, so that the next
   ``harness study`` resumes it with nothing lost.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness import interrupts
from harness.errors import RunFailed, UserError
from harness.studies._objective import TrialRun
from harness.tracking import RunHandle, RunKilled

if TYPE_CHECKING:
    from harness.studies._objective import TrialRunner
    from harness.studies._study import StudyContext

Progress = Callable[[str], None]
REQUEUE_ATTR = "harness_requeue_history"
POLL_S = 0.5


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


@dataclasses.dataclass
class WorkerResult:
    trials: list[tuple[int, str, float | None]]  # (number, state, objective) run by this worker
    stop: str  # "budget" or "max_failed"
    tally: Tally


def worker_id(label: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}" + (f" ({label})" if label else "")


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


def _sleep(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        interrupts.check()
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))


def _fail_stale(study: Any) -> None:
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
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            if ctx.storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                callback = ctx.storage.get_heartbeat_stale_trial_callback()
                if callback is not None:
                    callback(ctx.study, ctx.storage.get_trial(t._trial_id))
                found = True
    return found


def run_worker(ctx: StudyContext, runner: TrialRunner, progress: Progress = print, label: str = "") -> WorkerResult:
    """Run trials of ``ctx.study`` until its budget is spent; return what this worker did."""
    import optuna

    from harness.studies._storage import budget_lock

    me = worker_id(label)
    prefix = f"[{label}] " if label else ""
    done: list[tuple[int, str, float | None]] = []
    space = ctx.resolved.space
    sampler: Any = None  # this worker's: kept from trial to trial (SamplerSpec.for_trial)
    while True:
        interrupts.check()
        lock = contextlib.ExitStack()
        lock.enter_context(budget_lock(ctx.storage, ctx.url, ctx.name))
        try:
            _fail_stale(ctx.study)
            budget = ctx.current_budget()
            trials = ctx.study.get_trials(deepcopy=False)
            if fail_orphans(ctx, trials):
                trials = ctx.study.get_trials(deepcopy=False)
            t = tally(trials)
            if budget.max_failed is not None and t.failed >= budget.max_failed:
                return WorkerResult(done, "max_failed", t)
            can_start = t.waiting > 0 or t.used < budget.max_trials
            if not can_start or (budget.max_parallel is not None and t.running >= budget.max_parallel):
                if t.running == 0 and not can_start:
                    return WorkerResult(done, "budget", t)
                lock.close()  # others are running: wait (a stale one comes back as a retry)
                _sleep(POLL_S)
                continue
            waiting = [x for x in trials if x.state == optuna.trial.TrialState.WAITING]
            predicted = waiting[0].number if waiting else len(trials)
            sampler = ctx.study.sampler = ctx.sampler.for_trial(space, predicted, sampler)
            ran: dict[str, Any] = {"waiting": {x.number: x.system_attrs for x in waiting}}
            objective = functools.partial(_start, ctx=ctx, runner=runner, me=me, ran=ran, lock=lock)
            try:
                ctx.study.optimize(objective, n_trials=1, catch=())
            except KeyboardInterrupt:
                if "trial_id" in ran:
                    frozen = ctx.storage.get_trial(ran["trial_id"])
                    if frozen.state == optuna.trial.TrialState.FAIL:
                        requeue(ctx.study, frozen)
                        progress(f"{prefix}trial {ran['number']} interrupted: queued again for the next run")
                raise
            except UserError:
                raise
            except Exception as exc:  # this trial failed; the study goes on
                if "trial_id" not in ran:
                    raise
                err = ran.get("error") or f"{type(exc).__name__}: {exc}"
                done.append((ran["number"], "FAIL", None))
                progress(f"{prefix}trial {ran['number']:3d} FAIL      {_params(ran)}  {err}"[:400])
                continue
        finally:
            lock.close()
        state, value = ran.get("state", "COMPLETE"), ran.get("value")
        done.append((ran["number"], state, value))
        shown = f"objective {value:.4f}" if value is not None else f"({ran.get('pruned', '')})"
        progress(f"{prefix}trial {ran['number']:3d} {state:<9} {shown}  {_params(ran)}  {ran.get('wall_s', 0):.1f} s")


def _start(
    trial: Any, ctx: StudyContext, runner: TrialRunner, me: str, ran: dict[str, Any], lock: contextlib.ExitStack
) -> float:
    """The objective ``study.optimize`` calls: heartbeat, release the budget lock, run the trial."""
    ctx.storage.record_heartbeat(trial._trial_id)  # before the lock goes: a trial is never without heartbeat
    lock.close()
    ran["number"], ran["trial_id"] = trial.number, trial._trial_id
    return _objective(ctx, runner, trial, me, ran)


def _params(ran: dict[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in ran.get("values", {}).items())


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    return str(v)


def _objective(ctx: StudyContext, runner: TrialRunner, trial: Any, me: str, ran: dict[str, Any]) -> float:
    """One trial as one MLflow child run: FINISHED (complete), KILLED (pruned, Ctrl-C), FAILED (raised)."""
    import optuna

    started = time.perf_counter()
    space = ctx.resolved.space
    values = {p.name: p.suggest(trial) for p in space.params}
    ran["values"] = values
    cfg = ctx.resolved.config_for(values, f"{space.source}: trial {trial.number}")
    system_attrs = ran["waiting"].get(trial.number, {})  # a queued trial: a retry, or one interrupted before
    retry_of = system_attrs.get("failed_trial")
    requeued = system_attrs.get(REQUEUE_ATTR, ())
    tags = {
        **ctx.trial_tags,
        **runner.tags,
        "harness.kind": "trial",
        "harness.worker": me,
        "optuna.trial_number": str(trial.number),
        "harness.retry_of": str(retry_of if retry_of is not None else (requeued[-1] if requeued else "")),
    }
    try:
        with ctx.tracker.run(ctx.experiment_id, f"trial-{trial.number:03d}", tags, parent=ctx.parent) as run:
            trial.set_user_attr("harness", {"trial": trial.number, "mlflow_run_id": run.run_id, "worker": me})
            end: dict[str, Any] = {"state": "FAIL"}
            try:
                value = runner(TrialRun(trial, cfg, run, ctx.experiment_id, ctx.name))
                ran["wall_s"] = time.perf_counter() - started
                if (
                    ran["wall_s"] > ctx.storage.grace_period
                    and ctx.storage.get_trial(trial._trial_id).state.is_finished()
                ):
                    raise RunFailed(_lost(ctx, trial.number))  # long enough to have been failed as stale
                end = {"state": "COMPLETE", "objective": value}
            except optuna.TrialPruned as exc:
                end = {"state": "PRUNED"}
                raise RunKilled(str(exc)) from exc
            except optuna.exceptions.UpdateFinishedTrialError:
                raise RunFailed(_lost(ctx, trial.number)) from None
            except KeyboardInterrupt:
                end["note"] = "interrupted (Ctrl-C/SIGTERM); queued again"
                raise
            finally:
                _close(run, cfg, started, runner.price_per_hour, end, ran)
        ran["state"], ran["value"] = "COMPLETE", value
        return value
    except RunKilled as exc:
        ran["state"], ran["pruned"] = "PRUNED", str(exc)
        raise optuna.TrialPruned(str(exc)) from None
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        ran["error"] = f"{type(exc).__name__}: {exc}"
        raise


def _lost(ctx: StudyContext, number: int) -> str:
    return (
        f"trial {number} was failed by another worker: no heartbeat within the grace period "
        f"({ctx.storage.grace_period} s; an overloaded machine? raise --grace-period); it was queued again"
    )


def _close(
    run: RunHandle, cfg: Any, started: float, price: float | None, end: dict[str, Any], ran: dict[str, Any]
) -> None:
    """One write before the run ends: time, cost, objective and the Optuna state."""
    from mlflow.entities import Metric, RunTag

    wall = time.perf_counter() - started
    ran["wall_s"] = wall
    metrics = {"trial_wall_s": wall}
    if price is not None:
        metrics["cost_usd"] = price * wall / 3600
    if "objective" in end:
        metrics["objective"] = float(end["objective"])
    now = int(time.time() * 1000)
    tags = [RunTag("optuna.state", end["state"])]
    if "note" in end:
        tags.append(RunTag("harness.note", end["note"]))
    step = cfg.run.iterations
    run.client.log_batch(run.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()], tags=tags)
