"""The study commands: ``harness study`` (plan, open, run workers, finalise) and ``harness worker``.

``harness study`` creates (or resumes) the study, records in it everything a
worker needs (the space file, command-line overrides, sampler, pruner, budget,
heartbeat, tracking store, MLflow parent run id), so that ``harness worker NAME
--storage URL`` on any machine needs nothing else; then it runs ``--parallel K``
workers (in this process for K = 1, else K ``harness worker`` processes, one GPU
each when there are GPUs) and finishes the parent run: Optuna's plots, the trials
table, the best trial.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from harness import interrupts
from harness.errors import RunFailed
from harness.report import flat_objective, short_value
from harness.studies._context import StudyContext, attach
from harness.studies._lifecycle import (
    StudyStopped,
    finalize,
    nothing_if_interrupted_at_start,
    open_study,
    parent_run,
    plan_study,
    sweep_runs,
)
from harness.studies._processes import run_processes, wait_for_workers
from harness.studies._request import StudyRequest
from harness.studies._storage import is_local_file, redact
from harness.studies._trials import tally
from harness.studies._watch import StudyWatch, complete_values
from harness.studies._worker import run_worker

Progress = Callable[[str], None]


def run_study(
    request: StudyRequest,
    progress: Progress = print,
    runner: Any = None,
    label: str = "",
) -> StudyContext:
    """``harness study``: plan, open (create or resume), run the workers, finish the parent run.
    ``label`` names the study on its live display (default: ``study NAME``)."""
    from harness.studies._objective import TrainingRunner

    plan = plan_study(request)
    for note in plan.space.notes:
        progress(f"warning: {note}")
    for note in plan.resolved.scale_notes:
        progress(f"note: {note}")
    if plan.space.experiment is None and request.experiment is None:
        progress(
            f"note: {plan.space.source} does not say what it tunes (a Cloud ML Engine file); tuning "
            f"{plan.resolved.experiment.label}, the talk's tuned MNIST model. Choose with --experiment LADDER:RUNG"
        )
    if request.parallel == 1:
        runner = runner or TrainingRunner(plan.tracker, request.data_dir, request.prices)
        runner.prepare(plan.resolved, progress)  # data and backend checked before any run exists
    else:
        from harness.data import load_dataset

        base = plan.resolved.base
        load_dataset(base.data, request.data_dir)  # checked before any run exists
    interrupts.check()  # stopped while the data loaded: no study, no parent run
    ctx, resumed = open_study(plan, progress)
    if request.design and not resumed and not ctx.study.get_trials(deepcopy=False):
        for point in request.design:  # a landscape: every point of its design, queued once, in order
            ctx.study.enqueue_trial(dict(point), skip_if_exists=True)
    if not is_local_file(ctx.url) and ctx.tracker.uri.startswith("sqlite:///"):
        progress(
            f"note: workers on other machines log to {ctx.tracker.display_uri}; give them (and this command) "
            "--tracking-uri of an MLflow server or database they all reach"
        )
    t = tally(ctx.study.get_trials(deepcopy=False))
    progress(
        f"study {ctx.name} ({'resumed' if resumed else 'new'}): sampler {plan.sampler.name} seed "
        f"{plan.sampler.seed}, pruner {plan.pruner.name}, {plan.resolved.experiment.label}, objective "
        f"{plan.resolved.objective.final_key} ({plan.resolved.direction}); {t.used}/{plan.budget.max_trials} trials "
        f"so far; storage {redact(ctx.url)}; MLflow parent run {ctx.settings.parent_run_id} "
        f"in {ctx.tracker.display_uri}"
    )
    with (
        nothing_if_interrupted_at_start(ctx, created=not resumed, progress=progress),
        parent_run(ctx.tracker, ctx.settings.parent_run_id),
    ):
        sweep_runs(ctx)
        stop = "budget"
        # worker processes print into this terminal too: plain lines there, not a display they would tear
        with StudyWatch.of(ctx, label, live=False if request.parallel > 1 else None) as watch:
            if request.parallel == 1:
                stop = run_worker(ctx, runner, progress, watch=watch).stop
            elif request.parallel > 1:
                remaining = max(0, plan.budget.max_trials - t.used) + t.waiting
                k = min(request.parallel, max(remaining, 1))
                run_processes(ctx, k, progress, request.data_dir, request.prices, tick=watch.poll)
            else:
                wait_for_workers(ctx, progress, tick=watch.poll)
        final = tally(ctx.study.get_trials(deepcopy=False))
        budget = ctx.current_budget()
        if budget.max_failed is not None and final.failed >= budget.max_failed:
            stop = "max_failed"
        summary = finalize(ctx, progress, plots=request.plots)
        _print_summary(ctx, summary, progress)
        if stop == "max_failed":
            raise StudyStopped(
                f"study {ctx.name} stopped: {final.failed} failed trials reached max_failed "
                f"(maxFailedTrials) = {budget.max_failed}"
            )
        if final.complete == 0 and final.used > 0:
            raise RunFailed(f"study {ctx.name}: no trial completed ({final.failed} failed, {final.pruned} pruned)")
    return ctx


def _print_summary(ctx: StudyContext, summary: dict[str, Any], progress: Progress) -> None:
    t = summary["tally"]
    progress(
        f"study {ctx.name}: {t.used} trials ({t.complete} complete, {t.pruned} pruned, {t.failed} failed"
        + (f", {len(t.superseded)} re-run" if t.superseded else "")
        + ")"
    )
    best = summary.get("best")
    if best is not None:
        shown = " ".join(f"{k}={short_value(v)}" for k, v in summary.get("best_values", {}).items())
        progress(f"best: trial {best.number}, {ctx.resolved.objective.final_key} = {best.value:.4f}  {shown}")
    flat = flat_objective(complete_values(ctx.study), ctx.resolved.experiment.label, ctx.resolved.objective.final_key)
    if flat:
        progress(f"note: {flat}")
    progress(f"report: harness report study {ctx.name}")


def run_attached_worker(
    name: str,
    url: str,
    tracking_uri: str | None,
    data_dir: str | None,
    prices: str | None,
    label: str = "",
    finalize_study: bool = True,
    progress: Progress = print,
) -> int:
    """``harness worker``: join a study and run trials until its budget is spent; exit code."""
    from harness.studies._objective import TrainingRunner

    ctx = attach(name, url, tracking_uri, progress)
    settings = ctx.settings
    runner = TrainingRunner(
        ctx.tracker, data_dir or os.environ.get("HARNESS_DATA_DIR") or settings.data_dir, prices or settings.prices
    )
    runner.prepare(ctx.resolved, progress)
    prefix = f"[{label}] " if label else ""
    progress(
        f"{prefix}worker {os.getpid()} joined study {ctx.name} ({redact(ctx.url)}), MLflow {ctx.tracker.display_uri}"
    )
    result = run_worker(ctx, runner, progress, label)
    progress(f"{prefix}worker done ({result.stop}): ran {len(result.trials)} trials")
    if result.stop == "max_failed":
        return 1
    t = tally(ctx.study.get_trials(deepcopy=False))
    if finalize_study and t.running == 0 and t.waiting == 0:
        finalize(ctx, progress)
    return 0
