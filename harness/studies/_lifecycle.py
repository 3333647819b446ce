"""A study's lifecycle: plan (check everything), open or resume, the parent run, finalise (plots, best trial)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness._secrets import redact_text, redact_uri
from harness.errors import RunFailed, UserError
from harness.report import write_csv
from harness.studies._context import StaleTrials, StudyContext, mark_run_ended, trial_tags
from harness.studies._request import CheckedStudy, StudyRequest, check_study
from harness.studies._samplers import build_pruner, pruner_config
from harness.studies._settings import ATTR, StudySettings, space_digest
from harness.studies._storage import (
    budget_lock,
    default_storage_url,
    normalise_url,
    open_storage,
    redact,
    storage_kind,
)
from harness.studies._trials import tally
from harness.tracking import (
    PLOT_NOTES_TAG,
    RunHandle,
    RunKilled,
    StudyBest,
    StudyBudget,
    StudyRecord,
    StudyResumed,
    Tracker,
    environment_tags,
    owner_tags,
    study_experiment,
)

SETTINGS_WAIT_S = 120  # how long a second process waits for the study creator to record its parent run

Progress = Callable[[str], None]


class StudyStopped(RunFailed):
    """The study stopped early: ``max_failed`` failed trials were reached."""


@dataclasses.dataclass(frozen=True)
class Plan(CheckedStudy):
    """A request checked and resolved, with where it will be stored: nothing has been created yet."""

    request: StudyRequest
    url: str
    tracker: Tracker


def plan_study(request: StudyRequest) -> Plan:
    """Read and check everything (space, experiment, sampler, budget, storage URL) before any side effect."""
    c = check_study(request)
    tracker = Tracker(request.tracking_uri)
    url = normalise_url(request.storage or default_storage_url(tracker.uri))
    storage_kind(url)  # a bad URL fails here
    return Plan(
        **{f.name: getattr(c, f.name) for f in dataclasses.fields(c)}, request=request, url=url, tracker=tracker
    )


def _settings_for(plan: Plan, parent_run_id: str) -> StudySettings:
    r = plan.request
    return StudySettings(
        space_artifact=space_artifact(plan),
        space_sha256=space_digest(plan.space.text),
        space_source=plan.space.source,
        experiment=r.experiment,
        scale=r.scale,
        overrides=dict(r.overrides),
        sampler={"name": plan.sampler.name, "seed": plan.sampler.seed, "options": dict(plan.sampler.options)},
        pruner={"name": plan.pruner.name, "options": dict(plan.pruner.options)},
        budget=dataclasses.asdict(plan.budget),
        heartbeat_interval=r.heartbeat_interval,
        grace_period=r.grace_period,
        # stored in the study for every worker, so without its password: workers get the real URI from
        # --tracking-uri or $HARNESS_TRACKING_URI (run_processes sets it for its own)
        tracking_uri=plan.tracker.display_uri,
        mlflow_experiment=study_experiment(plan.space.name),
        parent_run_id=parent_run_id,
        fingerprint=plan.resolved.fingerprint(),
        data_dir=str(Path(r.data_dir).resolve()) if r.data_dir else None,
        prices=str(Path(r.prices).resolve()) if r.prices else None,
        command=redact_text(r.command),
    )


def open_study(plan: Plan, progress: Progress = print) -> tuple[StudyContext, bool]:
    """Create the study and its MLflow parent run, or resume both; returns (context, resumed)."""
    import optuna

    handler = StaleTrials()
    handler.progress = progress
    r = plan.request
    storage = open_storage(plan.url, r.heartbeat_interval, r.grace_period, on_stale=handler)
    # Exactly one process creates the study (the storage refuses a second create); only that one
    # opens the MLflow parent run. A process that finds the study already there waits for the
    # creator's settings, so two commands started at once share one parent run.
    create = functools.partial(
        optuna.create_study,
        storage=storage,
        study_name=plan.name,
        direction=plan.resolved.direction,
        sampler=plan.sampler.build(plan.space),
        pruner=build_pruner(plan.pruner, plan.resolved.base),
    )
    try:
        study, created = create(load_if_exists=False), True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = create(load_if_exists=True), False
    tracker = plan.tracker
    handler.tracker = tracker
    for orphan in tracker.end_orphans():
        progress(f"ended KILLED: run {orphan.run_id} ({orphan.experiment}: {orphan.name}); {orphan.owner} is gone")
    raw = study.user_attrs.get(ATTR)
    deadline = time.monotonic() + SETTINGS_WAIT_S
    while raw is None and not created and time.monotonic() < deadline:
        time.sleep(0.5)
        raw = study.user_attrs.get(ATTR)
    if raw is not None:
        old = StudySettings.from_attr(raw, f"study {plan.name!r}")
        _check_resume(plan, old, study)
        settings = dataclasses.replace(
            old,
            tracking_uri=redact_uri(old.tracking_uri),  # a study stored before passwords were masked
            command=redact_text(old.command),
            budget=dataclasses.asdict(plan.budget),
            heartbeat_interval=r.heartbeat_interval,
            grace_period=r.grace_period,
            data_dir=str(Path(r.data_dir).resolve()) if r.data_dir else old.data_dir,
        )
        tracker.client.update_run(settings.parent_run_id, status="RUNNING")
        parent = RunHandle(tracker.client, settings.parent_run_id)
        parent.set_tags(owner_tags())  # this process now answers for the RUNNING parent
        before = StudyResumed.from_tags(tracker.client.get_run(settings.parent_run_id).data.tags)
        parent.set_tags(StudyResumed(resumed=before.resumed + 1, command=redact_text(r.command)).to_tags())
        resumed = True
    else:
        exp_id = tracker.experiment_id(study_experiment(plan.space.name))
        run = tracker.client.create_run(exp_id, run_name=plan.name, tags=_parent_tags(plan))
        settings = _settings_for(plan, run.info.run_id)
        parent = RunHandle(tracker.client, run.info.run_id)
        _log_parent_definition(parent, plan)
        resumed = False
    budget = plan.budget
    parent.set_tags(
        StudyBudget(
            max_trials=budget.max_trials, max_parallel=budget.max_parallel, max_failed=budget.max_failed
        ).to_tags()
    )
    study.set_user_attr(ATTR, settings.to_attr())
    if study.metric_names is None:  # optuna-dashboard then names the objective, not "Objective 0"
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and still the way to name it
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([plan.resolved.objective.final_key])
    exp_id = tracker.experiment_id(settings.mlflow_experiment)
    ctx = StudyContext(
        plan.name,
        plan.url,
        storage,
        study,
        settings,
        plan.resolved,
        plan.sampler,
        plan.pruner,
        tracker,
        exp_id,
        trial_tags(settings, plan.name, plan.resolved, plan.url),
    )
    return ctx, resumed


def _check_resume(plan: Plan, old: StudySettings, study: Any) -> None:
    where = f"study {plan.name!r} in {redact(plan.url)}"
    if old.fingerprint != plan.resolved.fingerprint():
        raise UserError(
            f"{where} exists with a different search space, experiment or objective (from {old.space_source}); "
            "resume it unchanged, or start a new study with --name"
        )
    if (old.sampler["name"], int(old.sampler["seed"]), old.sampler["options"]) != (
        plan.sampler.name,
        plan.sampler.seed,
        dict(plan.sampler.options),
    ):
        raise UserError(
            f"{where} runs sampler {old.sampler['name']} seed {old.sampler['seed']}; resume it with the same "
            f"--sampler/--seed, or start a new study with --name"
        )
    if old.pruner["name"] != plan.pruner.name:
        raise UserError(f"{where} uses pruner {old.pruner['name']}; resume it with --pruner {old.pruner['name']}")


def _parent_tags(plan: Plan) -> dict[str, str]:
    space = plan.space
    resolved = plan.resolved
    record = StudyRecord(
        study=plan.name,
        space=space.name,
        space_source=space.source,
        space_format=space.format,
        experiment=resolved.experiment.label,
        task=resolved.base.task.name,
        objective=resolved.objective.final_key,
        objective_reference_scale=resolved.objective.reference_scale,
        direction=resolved.direction,
        fingerprint=resolved.fingerprint(),  # what a replay checks a landscape against
        params=tuple(p.name for p in space.params),
        param_keys=tuple(resolved.keys[p.name] for p in space.params),
        sampler=plan.sampler.name,
        sampler_seed=plan.sampler.seed,
        pruner=plan.pruner.name,
        command=redact_text(plan.request.command),
        landscape=(plan.request.design_note or f"{len(plan.request.design)} fixed points")
        if plan.request.design
        else None,
        space_notes=" | ".join(space.notes) if space.notes else None,
        # how --scale met the file's fixed budget: the report says it too
        scale_notes=" | ".join(resolved.scale_notes) if resolved.scale_notes else None,
    )
    tags = {
        **environment_tags(),
        **record.to_tags(),
        **owner_tags(),
        "optuna.study": plan.name,
        "optuna.storage_kind": storage_kind(plan.url),
        "optuna.storage": redact(plan.url),
    }
    if space.tier is not None:
        from harness.hardware import load_prices, price_per_hour

        prices = load_prices(plan.request.prices)
        each = [price_per_hour(m, prices) for m in space.tier.machines]
        tags.update(
            {
                "cmle.tier": space.tier.name,
                "cmle.machines": ", ".join(space.tier.machines),
                "cmle.description": space.tier.description,
                "cmle.backend": space.tier.backend,
                "cmle.price_per_hour": "unknown" if None in each else f"{sum(p or 0.0 for p in each):.4f}",
            }
        )
    return tags


def space_artifact(plan: Plan) -> str:
    return f"search_space/{Path(plan.space.source).name}"


def _log_parent_definition(parent: RunHandle, plan: Plan) -> None:
    """Params (immutable: the study's definition) and the space file as artifacts."""
    import yaml

    sampler = plan.sampler.config()
    pruner = pruner_config(plan.pruner, plan.resolved.base)
    params: dict[str, Any] = {
        "sampler": sampler["name"],
        "sampler.class": sampler["class"],
        "sampler.seed": sampler["seed"],
        "sampler.seed_rule": sampler["seed_rule"],
        **{f"sampler.{k}": v for k, v in sampler["options"].items()},
        "pruner": pruner["name"],
        "pruner.class": pruner["class"],
        **{f"pruner.{k}": v for k, v in pruner["options"].items()},
        "space": plan.space.name,
        "experiment": plan.resolved.experiment.label,
        "objective": plan.resolved.objective.final_key,
        "direction": plan.resolved.direction,
        "storage_kind": storage_kind(plan.url),
    }
    parent.log_params(params)
    parent.log_text(plan.space.text, space_artifact(plan))  # workers read the space from here
    resolved = {
        **plan.resolved.describe(),
        "sampler": sampler,
        "pruner": pruner,
        "overrides": dict(plan.request.overrides),
    }
    parent.log_text(yaml.safe_dump(resolved, sort_keys=False), "search_space/resolved.yaml")


@contextlib.contextmanager
def parent_run(tracker: Tracker, run_id: str) -> Iterator[None]:
    """The parent run ends FINISHED, KILLED (Ctrl-C) or FAILED (error, ``max_failed``), like Tracker.run."""
    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except (KeyboardInterrupt, SystemExit, RunKilled):
        status = "KILLED"
        raise
    except BaseException as exc:
        tracker.client.set_tag(run_id, "error", redact_text(f"{type(exc).__name__}: {exc}")[:5000])
        raise
    finally:
        tracker.client.set_terminated(run_id, status=status)


@contextlib.contextmanager
def nothing_if_interrupted_at_start(ctx: StudyContext, created: bool, progress: Progress = print) -> Iterator[None]:
    """A study this command created, interrupted (Ctrl-C, SIGTERM) before its first trial, leaves
    nothing: its Optuna study and its MLflow parent run are deleted, not kept empty and KILLED."""
    try:
        yield
    except KeyboardInterrupt:
        if created:
            with contextlib.suppress(Exception):  # the interrupt is what the user must see
                _delete_empty(ctx, progress)
        raise


def _delete_empty(ctx: StudyContext, progress: Progress) -> None:
    import optuna

    with budget_lock(ctx.storage, ctx.url, ctx.name):  # no worker elsewhere creates a trial meanwhile
        if ctx.study.get_trials(deepcopy=False) or not ctx.tracker.delete_if_empty(ctx.settings.parent_run_id):
            return
        optuna.delete_study(study_name=ctx.name, storage=ctx.storage)
    progress(f"study {ctx.name}: interrupted before its first trial; the study and its parent run were deleted")


def sweep_runs(ctx: StudyContext) -> int:
    """End child runs left RUNNING by a lost worker once Optuna says their trial is over."""
    from optuna.trial import TrialState

    states = {t.number: t.state for t in ctx.study.get_trials(deepcopy=False)}
    running = ctx.tracker.client.search_runs(
        [ctx.experiment_id],
        f"tags.mlflow.parentRunId = '{ctx.settings.parent_run_id}' and attributes.status = 'RUNNING'",
    )
    fixed = 0
    for run in running:
        number = int(run.data.tags.get("optuna.trial_number", "-1"))
        state = states.get(number)
        if state in (None, TrialState.RUNNING, TrialState.WAITING):
            continue  # alive on some worker (or about to be failed by its heartbeat)
        status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}.get(state, "FAILED")
        mark_run_ended(ctx.tracker, run.info.run_id, status, f"worker lost; Optuna trial is {state.name}")
        fixed += 1
    return fixed


def finalize(ctx: StudyContext, progress: Progress = print, plots: bool = True) -> dict[str, Any]:
    """Summary metrics, best trial, trials table and Optuna's plots on the parent run."""
    sweep_runs(ctx)
    trials = ctx.study.get_trials(deepcopy=False)
    t = tally(trials)
    parent = ctx.parent
    summary: dict[str, Any] = {"tally": t, "best": None}
    metrics = {
        "trials_total": float(len(trials)),
        "trials_counted": float(t.used),
        "trials_complete": float(t.complete),
        "trials_pruned": float(t.pruned),
        "trials_failed": float(t.failed),
    }
    complete = [x for x in trials if x.state.name == "COMPLETE"]
    if complete:
        best = ctx.study.best_trial
        summary["best"] = best
        metrics["best_objective"] = float(best.value)
        space = ctx.resolved.space
        values = {p.name: p.to_config(best.params[p.optuna_name]) for p in space.params if p.optuna_name in best.params}
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        parent.set_tags(StudyBest(trial=best.number, params=plain).to_tags())
        summary["best_values"] = values
    parent.log_metrics(len(trials), metrics)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "trials.csv"
        write_csv(csv, ctx.study.trials_dataframe())  # user attributes and choice labels: neutralised
        parent.log_artifact(csv, "optuna")
    notes = _log_plots(ctx, parent, complete) if plots else []
    if notes:
        parent.set_tags({PLOT_NOTES_TAG: " | ".join(notes)})
        for note in notes:
            progress(f"note: {note}")
    return summary


def _log_plots(ctx: StudyContext, parent: RunHandle, complete: list[Any]) -> list[str]:
    """Optuna's matplotlib plots: optimisation history, parallel coordinate, parameter importances."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    notes = []
    if not complete:
        return ["no plots: no trial completed"]
    plots: list[tuple[str, Callable[[], Any]]] = [
        ("optimization_history.png", lambda: ovm.plot_optimization_history(ctx.study)),
        ("parallel_coordinate.png", lambda: ovm.plot_parallel_coordinate(ctx.study)),
    ]
    params = {n for t in complete for n in t.params}
    if len(complete) >= 2 and len(params) >= 2:
        plots.append(("param_importances.png", lambda: ovm.plot_param_importances(ctx.study)))
    else:
        notes.append(
            f"parameter importances skipped: they need >= 2 completed trials and >= 2 parameters "
            f"(have {len(complete)} and {len(params)})"
        )
    for filename, make in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = make()
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            parent.log_figure(fig, f"optuna/{filename}")
            plt.close(fig)
        except (ValueError, RuntimeError, ZeroDivisionError, optuna.exceptions.OptunaError) as exc:
            notes.append(f"{filename} skipped: {type(exc).__name__}: {exc}")
    return notes
