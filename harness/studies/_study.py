"""A study: an Optuna study in shared storage and an MLflow parent run, run by one or many workers.

``harness study`` creates (or resumes) the study, records in it everything a
worker needs (the space file, command-line overrides, sampler, pruner, budget,
heartbeat, tracking store, MLflow parent run id), so that ``harness worker NAME
--storage URL`` on any machine needs nothing else; then it runs ``--parallel K``
workers (in this process for K = 1, else K ``harness worker`` processes, one GPU
each when there are GPUs) and finishes the parent run: Optuna's plots, the trials
table, the best trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness import interrupts
from harness.errors import RunFailed, UserError
from harness.studies._samplers import SamplerSpec, build_pruner, check_pruner, pruner_config
from harness.studies._space import Budget, ExperimentRef, PrunerSpec, ResolvedSpace, SearchSpace, parse_space
from harness.studies._storage import (
    GRACE_PERIOD_S,
    HEARTBEAT_INTERVAL_S,
    default_storage_url,
    is_local_file,
    normalise_url,
    open_storage,
    redact,
    storage_kind,
)
from harness.tracking import RunHandle, RunKilled, Tracker, environment_tags, study_experiment

Progress = Callable[[str], None]
ATTR = "harness"  # the Optuna study user attribute holding StudySettings
FORMAT = 1


class StudyStopped(RunFailed):
    """The study stopped early: ``max_failed`` failed trials were reached."""


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What ``harness study`` stores in the Optuna study for every worker (JSON)."""

    space_text: str
    space_source: str
    experiment: str | None  # --experiment LADDER:RUNG, if given
    scale: str | None  # --scale, if given
    overrides: dict[str, Any]  # --set
    sampler: dict[str, Any]  # name, seed, options
    pruner: dict[str, Any]  # name, options
    budget: dict[str, Any]  # max_trials, max_parallel, max_failed
    heartbeat_interval: int
    grace_period: int
    tracking_uri: str
    mlflow_experiment: str
    parent_run_id: str
    fingerprint: str
    data_dir: str | None = None
    prices: str | None = None
    command: str = ""
    format: int = FORMAT

    def to_attr(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_attr(cls, raw: Any, where: str) -> StudySettings:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise UserError(f"{where} was not created by `harness study` (format {FORMAT}); cannot run it")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def space(self) -> SearchSpace:
        return parse_space(self.space_text, self.space_source)

    def resolve(self) -> tuple[ResolvedSpace, SamplerSpec, PrunerSpec, Budget]:
        space = self.space()
        experiment = ExperimentRef.parse(self.experiment, "--experiment") if self.experiment else None
        resolved = space.resolve(experiment, self.scale, self.overrides)
        sampler = SamplerSpec(self.sampler["name"], int(self.sampler["seed"]), dict(self.sampler["options"]))
        pruner = PrunerSpec(self.pruner["name"], dict(self.pruner["options"]))
        return resolved, sampler, pruner, Budget(**self.budget)


class StaleTrials:
    """Heartbeat callback: a trial whose worker died ends FAILED in MLflow and is retried once."""

    def __init__(self) -> None:
        self.tracker: Tracker | None = None
        self.progress: Progress = print

    def __call__(self, study: Any, trial: Any) -> None:
        import optuna

        run_id = (trial.user_attrs.get(ATTR) or {}).get("mlflow_run_id")
        if self.tracker is not None and run_id:
            mark_run_ended(self.tracker, run_id, "FAILED", "worker lost: no heartbeat within the grace period")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, trial)
        self.progress(f"trial {trial.number}: its worker stopped sending heartbeats; FAIL, retried once")


def mark_run_ended(tracker: Tracker, run_id: str, status: str, why: str) -> None:
    """End a RUNNING MLflow run (of a lost worker) with ``status``; leave a finished one alone."""
    try:
        run = tracker.client.get_run(run_id)
    except Exception:  # deleted or never written
        return
    if run.info.status == "RUNNING":
        tracker.client.set_tag(run_id, "error", why)
        tracker.client.set_tag(run_id, "optuna.state", "FAIL")
        tracker.client.set_terminated(run_id, status)


@dataclasses.dataclass
class StudyContext:
    """An open study: storage, settings and everything resolved from them."""

    name: str
    url: str
    storage: Any  # HeartbeatJournalStorage or optuna RDBStorage: both have heartbeats
    study: Any  # optuna.Study
    settings: StudySettings
    resolved: ResolvedSpace
    sampler: SamplerSpec
    pruner: PrunerSpec
    tracker: Tracker
    experiment_id: str
    trial_tags: dict[str, str]

    @property
    def parent(self) -> RunHandle:
        return RunHandle(self.tracker.client, self.settings.parent_run_id)

    def current_budget(self) -> Budget:
        """Re-read: a resumed ``harness study --trials N`` may have raised it since this worker started."""
        raw = self.study.user_attrs.get(ATTR) or {}
        return Budget(**raw.get("budget", self.settings.budget))


def _trial_tags(settings: StudySettings, name: str, resolved: ResolvedSpace, url: str) -> dict[str, str]:
    return {
        **environment_tags(),
        "harness.study": name,
        "harness.space": resolved.space.name,
        "harness.sampler": settings.sampler["name"],
        "optuna.study": name,
        "optuna.storage_kind": storage_kind(url),
    }


def attach(
    name: str,
    url: str,
    tracking_uri: str | None = None,
    progress: Progress = print,
    heartbeat: tuple[int, int] | None = None,
) -> StudyContext:
    """Open an existing study for a worker: everything comes from the storage."""
    import optuna

    url = normalise_url(url)
    handler = StaleTrials()
    handler.progress = progress
    probe = open_storage(url, 3600, 3600)
    try:
        summaries = {s.study_name for s in optuna.get_all_study_summaries(probe, include_best_trial=False)}
    except Exception as exc:
        raise UserError(f"--storage {redact(url)}: cannot read studies ({type(exc).__name__}: {exc})") from None
    if name not in summaries:
        listed = ", ".join(sorted(summaries)) or "none"
        raise UserError(f"no study {name!r} in {redact(url)} (studies there: {listed}); start it with `harness study`")
    raw = optuna.load_study(study_name=name, storage=probe).user_attrs.get(ATTR)
    settings = StudySettings.from_attr(raw, f"study {name!r} in {redact(url)}")
    interval, grace = heartbeat or (settings.heartbeat_interval, settings.grace_period)
    storage = open_storage(url, interval, grace, on_stale=handler)
    resolved, sampler, pruner, _ = settings.resolve()
    study = optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=sampler.build(resolved.space),
        pruner=build_pruner(pruner, resolved.base),
    )
    uri = tracking_uri or settings.tracking_uri
    if not tracking_uri and uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UserError(
            f"study {name!r} logs to {uri}, which is not on this machine; pass --tracking-uri with a tracking "
            "store every worker reaches (an MLflow server, or a shared database)"
        )
    tracker = Tracker(uri)
    handler.tracker = tracker
    exp_id = tracker.experiment_id(settings.mlflow_experiment)
    return StudyContext(
        name,
        url,
        storage,
        study,
        settings,
        resolved,
        sampler,
        pruner,
        tracker,
        exp_id,
        _trial_tags(settings, name, resolved, url),
    )


@dataclasses.dataclass(frozen=True)
class StudyRequest:
    """What ``harness study`` was asked to do."""

    space_file: str
    experiment: str | None = None
    scale: str | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sampler: str | None = None
    seed: int = 0
    pruner: str | None = None
    trials: int | None = None
    max_failed: int | None = None
    parallel: int = 1
    name: str | None = None
    storage: str | None = None
    tracking_uri: str | None = None
    data_dir: str | None = None
    prices: str | None = None
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S
    grace_period: int = GRACE_PERIOD_S
    command: str = ""
    plots: bool = True  # Optuna's plots on the parent run at the end

    def __post_init__(self) -> None:
        if self.parallel < 0:
            raise ValueError(f"parallel must be >= 0, but got {self.parallel=}")
        if self.heartbeat_interval < 1 or self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"need heartbeat_interval >= 1 and grace_period > heartbeat_interval, but got "
                f"{self.heartbeat_interval=} and {self.grace_period=}"
            )


@dataclasses.dataclass(frozen=True)
class Plan:
    """A request checked and resolved: nothing has been created yet."""

    request: StudyRequest
    space: SearchSpace
    resolved: ResolvedSpace
    sampler: SamplerSpec
    pruner: PrunerSpec
    budget: Budget
    name: str
    url: str
    tracker: Tracker


def plan_study(request: StudyRequest) -> Plan:
    """Read and check everything (space, experiment, sampler, budget, storage URL) before any side effect."""
    from harness.studies._space import load_space

    space = load_space(request.space_file)
    experiment = ExperimentRef.parse(request.experiment, "--experiment") if request.experiment else None
    resolved = space.resolve(experiment, request.scale, request.overrides)
    sampler_name = request.sampler or space.sampler
    sampler = SamplerSpec.for_space(sampler_name, request.seed, space)
    pruner = check_pruner(request.pruner, None, "--pruner") if request.pruner else space.pruner
    budget = space.budget
    if request.trials is not None:
        if request.trials < 1:
            raise UserError(f"--trials must be >= 1, but got {request.trials}")
        budget = dataclasses.replace(budget, max_trials=request.trials)
    if request.max_failed is not None:
        budget = dataclasses.replace(budget, max_failed=request.max_failed)
    if budget.max_parallel is not None and request.parallel > budget.max_parallel:
        raise UserError(
            f"--parallel {request.parallel} is more than the search space allows: "
            f"{space.source} sets max_parallel (maxParallelTrials) = {budget.max_parallel}"
        )
    name = request.name or f"{space.name}-{sampler.name}"
    if not name or any(c.isspace() or c == "/" for c in name):
        raise UserError(f"--name must be a word without spaces or '/', but got {name!r}")
    tracker = Tracker(request.tracking_uri)
    url = normalise_url(request.storage or default_storage_url(tracker.uri))
    storage_kind(url)  # a bad URL fails here
    return Plan(request, space, resolved, sampler, pruner, budget, name, url, tracker)


def _settings_for(plan: Plan, parent_run_id: str) -> StudySettings:
    r = plan.request
    return StudySettings(
        space_text=plan.space.text,
        space_source=plan.space.source,
        experiment=r.experiment,
        scale=r.scale,
        overrides=dict(r.overrides),
        sampler={"name": plan.sampler.name, "seed": plan.sampler.seed, "options": dict(plan.sampler.options)},
        pruner={"name": plan.pruner.name, "options": dict(plan.pruner.options)},
        budget=dataclasses.asdict(plan.budget),
        heartbeat_interval=r.heartbeat_interval,
        grace_period=r.grace_period,
        tracking_uri=plan.tracker.uri,
        mlflow_experiment=study_experiment(plan.space.name),
        parent_run_id=parent_run_id,
        fingerprint=plan.resolved.fingerprint(),
        data_dir=str(Path(r.data_dir).resolve()) if r.data_dir else None,
        prices=str(Path(r.prices).resolve()) if r.prices else None,
        command=r.command,
    )


def open_study(plan: Plan, progress: Progress = print) -> tuple[StudyContext, bool]:
    """Create the study and its MLflow parent run, or resume both; returns (context, resumed)."""
    import optuna

    handler = StaleTrials()
    handler.progress = progress
    r = plan.request
    storage = open_storage(plan.url, r.heartbeat_interval, r.grace_period, on_stale=handler)
    study = optuna.create_study(
        storage=storage,
        study_name=plan.name,
        direction=plan.resolved.direction,
        load_if_exists=True,
        sampler=plan.sampler.build(plan.space),
        pruner=build_pruner(plan.pruner, plan.resolved.base),
    )
    tracker = plan.tracker
    handler.tracker = tracker
    raw = study.user_attrs.get(ATTR)
    if raw is not None:
        old = StudySettings.from_attr(raw, f"study {plan.name!r}")
        _check_resume(plan, old, study)
        settings = dataclasses.replace(
            old,
            budget=dataclasses.asdict(plan.budget),
            heartbeat_interval=r.heartbeat_interval,
            grace_period=r.grace_period,
            data_dir=str(Path(r.data_dir).resolve()) if r.data_dir else old.data_dir,
        )
        tracker.client.update_run(settings.parent_run_id, status="RUNNING")
        parent = RunHandle(tracker.client, settings.parent_run_id)
        resumes = int(tracker.client.get_run(settings.parent_run_id).data.tags.get("harness.resumed", "0")) + 1
        parent.set_tags({"harness.resumed": str(resumes), "harness.command.resume": r.command})
        resumed = True
    else:
        exp_id = tracker.experiment_id(study_experiment(plan.space.name))
        run = tracker.client.create_run(exp_id, run_name=plan.name, tags=_parent_tags(plan))
        settings = _settings_for(plan, run.info.run_id)
        parent = RunHandle(tracker.client, run.info.run_id)
        _log_parent_definition(parent, plan)
        resumed = False
    parent.set_tags({f"harness.{k}": "" if v is None else str(v) for k, v in dataclasses.asdict(plan.budget).items()})
    study.set_user_attr(ATTR, settings.to_attr())
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
        _trial_tags(settings, plan.name, plan.resolved, plan.url),
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
    tags = {
        **environment_tags(),
        "harness.kind": "study",
        "harness.study": plan.name,
        "harness.space": space.name,
        "harness.space_source": space.source,
        "harness.space_format": space.format,
        "harness.experiment": plan.resolved.experiment.label,
        "harness.task": plan.resolved.base.task.name,
        "harness.objective": plan.resolved.objective.final_key,
        "harness.objective_reference_scale": str(plan.resolved.objective.reference_scale),
        "harness.direction": plan.resolved.direction,
        "harness.params": ",".join(p.name for p in space.params),
        "harness.param_keys": ",".join(plan.resolved.keys[p.name] for p in space.params),
        "harness.sampler": plan.sampler.name,
        "harness.sampler_seed": str(plan.sampler.seed),
        "harness.pruner": plan.pruner.name,
        "harness.command": plan.request.command,
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
    if space.notes:
        tags["harness.space_notes"] = " | ".join(space.notes)[:5000]
    return tags


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
    parent.log_text(plan.space.text, f"search_space/{Path(plan.space.source).name}")
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
        tracker.client.set_tag(run_id, "error", f"{type(exc).__name__}: {exc}"[:5000])
        raise
    finally:
        tracker.client.set_terminated(run_id, status=status)


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
    from harness.studies._worker import tally

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
        parent.set_tags({"harness.best_trial": str(best.number), "harness.best_params": json.dumps(plain)})
        summary["best_values"] = values
    parent.log_metrics(len(trials), metrics)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "trials.csv"
        ctx.study.trials_dataframe().to_csv(csv, index=False)
        parent.log_artifact(csv, "optuna")
    notes = _log_plots(ctx, parent, complete) if plots else []
    if notes:
        parent.set_tags({"harness.plot_notes": " | ".join(notes)})
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


def gpu_ids() -> list[str]:
    """GPUs to pin workers to: ``$CUDA_VISIBLE_DEVICES``, else what ``nvidia-smi`` lists (no TensorFlow)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in (x.strip() for x in visible.split(",")) if g and g != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def worker_command(ctx: StudyContext, label: str, finalize_study: bool = False) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "worker",
        ctx.name,
        "--storage",
        ctx.url,
        "--tracking-uri",
        ctx.tracker.uri,
        "--label",
        label,
    ]
    if not finalize_study:
        cmd.append("--no-finalize")
    return cmd


def run_processes(ctx: StudyContext, k: int, progress: Progress, data_dir: str | None, prices: str | None) -> None:
    """K ``harness worker`` processes, one GPU each when there are GPUs; Ctrl-C is forwarded once."""
    gpus = gpu_ids()
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    for i in range(k):
        label = f"w{i + 1}/{k}"
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        elif "TF_NUM_INTRAOP_THREADS" not in env:  # CPU only: share the cores instead of oversubscribing them
            env["TF_NUM_INTRAOP_THREADS"] = str(max(1, (os.cpu_count() or 1) // k))
        cmd = worker_command(ctx, label)
        if data_dir:
            cmd += ["--data-dir", data_dir]
        if prices:
            cmd += ["--prices", prices]
        # own session: a terminal's Ctrl-C reaches this process only, which forwards it exactly once
        procs.append((label, subprocess.Popen(cmd, env=env, start_new_session=True)))
    progress(
        f"{k} worker processes"
        + (f", GPUs {', '.join(gpus[i % len(gpus)] for i in range(k))}" if gpus else "")
        + f": {' '.join(worker_command(ctx, 'wK/K'))}"
    )
    interrupted = False
    try:
        _wait_all(procs)
    except KeyboardInterrupt:
        interrupted = True
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 300
        while any(p.poll() is None for _, p in procs) and time.monotonic() < deadline:
            try:
                time.sleep(0.2)
            except KeyboardInterrupt:  # a second Ctrl-C: the workers' second signal stops them at once
                for _, p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGINT)
        for _, p in procs:
            if p.poll() is None:
                p.kill()
    codes = {label: p.wait() for label, p in procs}
    if interrupted or 130 in codes.values():
        raise KeyboardInterrupt("worker interrupted")
    bad = {label: c for label, c in codes.items() if c not in (0, 1)}
    if bad:
        raise UserError(f"worker(s) {', '.join(f'{lb} (exit {c})' for lb, c in bad.items())} stopped; see above")


def _wait_all(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    while any(p.poll() is None for _, p in procs):
        interrupts.check()
        time.sleep(0.2)


def wait_for_workers(ctx: StudyContext, progress: Progress) -> None:
    """``--parallel 0``: no local worker; wait for workers elsewhere to spend the budget."""
    from harness.studies._worker import _fail_stale, fail_orphans, tally

    progress(f"waiting for workers: harness worker {ctx.name} --storage {redact(ctx.url)}")
    while True:
        interrupts.check()
        _fail_stale(ctx.study)
        budget = ctx.current_budget()
        if fail_orphans(ctx, ctx.study.get_trials(deepcopy=False)):
            continue
        t = tally(ctx.study.get_trials(deepcopy=False))
        if (budget.max_failed is not None and t.failed >= budget.max_failed) or (
            t.used >= budget.max_trials and t.running == 0 and t.waiting == 0
        ):
            return
        time.sleep(1.0)


def run_study(
    request: StudyRequest,
    progress: Progress = print,
    runner: Any = None,
) -> StudyContext:
    """``harness study``: plan, open (create or resume), run the workers, finish the parent run."""
    from harness.studies._objective import TrainingRunner
    from harness.studies._worker import run_worker, tally

    plan = plan_study(request)
    for note in plan.space.notes:
        progress(f"warning: {note}")
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
    ctx, resumed = open_study(plan, progress)
    if not is_local_file(ctx.url) and ctx.tracker.uri.startswith("sqlite:///"):
        progress(
            f"note: workers on other machines log to {ctx.tracker.uri}; give them (and this command) "
            "--tracking-uri of an MLflow server or database they all reach"
        )
    t = tally(ctx.study.get_trials(deepcopy=False))
    progress(
        f"study {ctx.name} ({'resumed' if resumed else 'new'}): sampler {plan.sampler.name} seed "
        f"{plan.sampler.seed}, pruner {plan.pruner.name}, {plan.resolved.experiment.label}, objective "
        f"{plan.resolved.objective.final_key} ({plan.resolved.direction}); {t.used}/{plan.budget.max_trials} trials "
        f"so far; storage {redact(ctx.url)}; MLflow parent run {ctx.settings.parent_run_id} in {ctx.tracker.uri}"
    )
    with parent_run(ctx.tracker, ctx.settings.parent_run_id):
        sweep_runs(ctx)
        stop = "budget"
        if request.parallel == 1:
            stop = run_worker(ctx, runner, progress).stop
        elif request.parallel > 1:
            remaining = max(0, plan.budget.max_trials - t.used) + t.waiting
            k = min(request.parallel, max(remaining, 1))
            run_processes(ctx, k, progress, request.data_dir, request.prices)
        else:
            wait_for_workers(ctx, progress)
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
        from harness.studies._worker import _short

        shown = " ".join(f"{k}={_short(v)}" for k, v in summary.get("best_values", {}).items())
        progress(f"best: trial {best.number}, {ctx.resolved.objective.final_key} = {best.value:.4f}  {shown}")
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
    from harness.studies._worker import run_worker, tally

    ctx = attach(name, url, tracking_uri, progress)
    settings = ctx.settings
    runner = TrainingRunner(
        ctx.tracker, data_dir or os.environ.get("HARNESS_DATA_DIR") or settings.data_dir, prices or settings.prices
    )
    runner.prepare(ctx.resolved, progress)
    prefix = f"[{label}] " if label else ""
    progress(f"{prefix}worker {os.getpid()} joined study {ctx.name} ({redact(ctx.url)}), MLflow {ctx.tracker.uri}")
    result = run_worker(ctx, runner, progress, label)
    progress(f"{prefix}worker done ({result.stop}): ran {len(result.trials)} trials")
    if result.stop == "max_failed":
        return 1
    t = tally(ctx.study.get_trials(deepcopy=False))
    if finalize_study and t.running == 0 and t.waiting == 0:
        finalize(ctx, progress)
    return 0
