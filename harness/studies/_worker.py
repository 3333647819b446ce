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

import contextlib
import dataclasses
import functools
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from harness import interrupts
from harness.errors import RunFailed, UserError
from harness.report import TUNED, short_value
from harness.studies._context import StudyContext
from harness.studies._objective import TrialRun, TrialRunner
from harness.studies._storage import budget_lock
from harness.studies._trials import REQUEUE_ATTR, Tally, fail_orphans, fail_stale, requeue, tally
from harness.studies._watch import StudyWatch
from harness.tracking import NOTE_TAG, RunHandle, RunKilled, TrialRecord

Progress = Callable[[str], None]


POLL_S = 0.5


@dataclasses.dataclass
class WorkerResult:
    trials: list[tuple[int, str, float | None]]  # (number, state, objective) run by this worker
    stop: str  # "budget" or "max_failed"
    tally: Tally


def worker_id(label: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}" + (f" ({label})" if label else "")


def _sleep(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        interrupts.check()
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))


@dataclasses.dataclass
class TrialOutcome:
    """What happened to the one trial a worker ran: filled in as the trial goes."""

    waiting: Mapping[int, Mapping[str, Any]]  # queued trials' system attributes (retries, re-queued)
    number: int | None = None
    trial_id: int | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)  # parameter name -> config value
    state: str = "FAIL"  # COMPLETE, PRUNED or FAIL (Optuna's words)
    value: float | None = None
    note: str = ""  # why it was pruned, or the error
    wall_s: float = 0.0

    @property
    def started(self) -> bool:
        return self.trial_id is not None

    def params(self) -> str:
        return " ".join(f"{k}={short_value(v)}" for k, v in self.values.items())


def run_worker(
    ctx: StudyContext, runner: TrialRunner, progress: Progress = print, label: str = "", watch: StudyWatch | None = None
) -> WorkerResult:
    """Run trials of ``ctx.study`` until its budget is spent; return what this worker did.

    ``watch``: the study's display, when this process shows it: each trial gets a step bar, and
    the display reads the study after each trial.
    """
    import optuna

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
            fail_stale(ctx.study)
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
            out = TrialOutcome(waiting={x.number: x.system_attrs for x in waiting})
            objective = functools.partial(_start, ctx=ctx, runner=runner, me=me, out=out, lock=lock, watch=watch)
            try:
                ctx.study.optimize(objective, n_trials=1, catch=())
            except KeyboardInterrupt:
                if out.trial_id is not None:
                    frozen = ctx.storage.get_trial(out.trial_id)
                    if frozen.state == optuna.trial.TrialState.FAIL:
                        requeue(ctx.study, frozen)
                        progress(f"{prefix}trial {out.number} interrupted: queued again for the next run")
                raise
            except UserError:
                raise
            except Exception as exc:  # this trial failed; the study goes on
                if not out.started:
                    raise
                err = out.note or f"{type(exc).__name__}: {exc}"
                done.append((int(out.number or 0), "FAIL", None))
                progress(f"{prefix}trial {out.number:3d} FAIL      {out.params()}  {err}"[:400])
                if watch is not None:
                    watch.poll(force=True)
                continue
        finally:
            lock.close()
        assert out.number is not None
        done.append((out.number, out.state, out.value))
        shown = f"objective {out.value:.4f}" if out.value is not None else f"({out.note})"
        progress(f"{prefix}trial {out.number:3d} {out.state:<9} {shown}  {out.params()}  {out.wall_s:.1f} s")
        if watch is not None:
            watch.poll(force=True)


def _start(
    trial: Any,
    ctx: StudyContext,
    runner: TrialRunner,
    me: str,
    out: TrialOutcome,
    lock: contextlib.ExitStack,
    watch: StudyWatch | None,
) -> float:
    """The objective ``study.optimize`` calls: heartbeat, release the budget lock, run the trial."""
    ctx.storage.record_heartbeat(trial._trial_id)  # before the lock goes: a trial is never without heartbeat
    lock.close()
    out.number, out.trial_id = trial.number, trial._trial_id
    return _objective(ctx, runner, trial, me, out, watch)


def _objective(
    ctx: StudyContext, runner: TrialRunner, trial: Any, me: str, out: TrialOutcome, watch: StudyWatch | None
) -> float:
    """One trial as one MLflow child run: FINISHED (complete), KILLED (pruned, Ctrl-C), FAILED (raised)."""
    import optuna

    started = time.perf_counter()
    space = ctx.resolved.space
    out.values = {p.name: p.suggest(trial) for p in space.params}
    cfg = ctx.resolved.config_for(out.values, f"{space.source}: trial {trial.number}")
    system_attrs = out.waiting.get(trial.number, {})  # a queued trial: a retry, or one interrupted before
    retry_of = system_attrs.get("failed_trial")
    requeued = system_attrs.get(REQUEUE_ATTR, ())
    record = TrialRecord(
        study=ctx.name,
        space=space.name,
        sampler=ctx.settings.sampler["name"],
        worker=me,
        retry_of=retry_of if retry_of is not None else (requeued[-1] if requeued else None),
    )
    tags = {**ctx.trial_tags, **runner.tags, **record.to_tags(), "optuna.trial_number": str(trial.number)}
    name = f"trial-{trial.number:03d}"
    try:
        with ctx.tracker.run(ctx.experiment_id, name, tags, parent=ctx.parent) as run:
            trial.set_user_attr("harness", {"trial": trial.number, "mlflow_run_id": run.run_id, "worker": me})
            # beside the dotted config keys: the values as the space writes them (a label, an int); staged,
            # they go in the runner's first write (the config's params) instead of a transaction of their own
            run.stage(params={f"{TUNED}.{p.name}": p.shown(trial.params) for p in space.params})
            out.state, note = "FAIL", ""
            sinks = () if watch is None else (watch.trial_sink(name, cfg, ctx.resolved.objective),)
            try:
                value = runner(TrialRun(trial, cfg, run, ctx.experiment_id, ctx.name, sinks, ctx.invocation))
                out.wall_s = time.perf_counter() - started
                if out.wall_s > ctx.storage.grace_period and ctx.storage.get_trial(trial._trial_id).state.is_finished():
                    raise RunFailed(_lost(ctx, trial.number))  # long enough to have been failed as stale
                out.state, out.value = "COMPLETE", value
            except optuna.TrialPruned as exc:
                out.state = "PRUNED"
                raise RunKilled(str(exc)) from exc
            except optuna.exceptions.UpdateFinishedTrialError:
                raise RunFailed(_lost(ctx, trial.number)) from None
            except KeyboardInterrupt:
                note = "interrupted (Ctrl-C/SIGTERM); queued again"
                raise
            finally:
                for sink in sinks:  # the executor closes them too; a trial that never trained leaves none open
                    sink.close()
                _close(run, cfg, started, runner.price_per_hour, out, note)
        return value
    except RunKilled as exc:
        out.state, out.note = "PRUNED", str(exc)
        raise optuna.TrialPruned(str(exc)) from None
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        out.state, out.note = "FAIL", f"{type(exc).__name__}: {exc}"
        raise


def _lost(ctx: StudyContext, number: int) -> str:
    return (
        f"trial {number} was failed by another worker: no heartbeat within the grace period "
        f"({ctx.storage.grace_period} s; an overloaded machine? raise --grace-period); it was queued again"
    )


def _close(run: RunHandle, cfg: Any, started: float, price: float | None, out: TrialOutcome, note: str) -> None:
    """One write before the run ends: time, cost, objective and the Optuna state."""
    out.wall_s = time.perf_counter() - started
    metrics = {"trial_wall_s": out.wall_s}
    if price is not None:
        metrics["cost_usd"] = price * out.wall_s / 3600
    if out.state == "COMPLETE" and out.value is not None:
        metrics["objective"] = float(out.value)
    run.stage(tags={"optuna.state": out.state, **({NOTE_TAG: note} if note else {})})
    run.log_metrics(cfg.run.iterations, metrics)  # with the staged tags: one write
