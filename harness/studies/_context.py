"""An open study: storage, settings and what is resolved from them; attaching a worker; lost workers."""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness._secrets import hides_secret
from harness.errors import UserError
from harness.studies._samplers import SamplerSpec, build_pruner
from harness.studies._settings import ATTR, REQUEUE_ATTR, StudySettings
from harness.studies._space import Budget, PrunerSpec, ResolvedSpace
from harness.studies._storage import normalise_url, open_storage, redact, storage_kind
from harness.tracking import NOTE_TAG, RunHandle, Tracker, environment_tags

Progress = Callable[[str], None]


class StaleTrials:
    """Heartbeat callback: a trial whose worker died ends FAILED in MLflow and is retried once."""

    def __init__(self) -> None:
        self.tracker: Tracker | None = None
        self.progress: Progress = print

    def __call__(self, study: Any, trial: Any) -> None:
        import optuna

        run_id = (trial.user_attrs.get(ATTR) or {}).get("mlflow_run_id")
        if self.tracker is not None and run_id and self._keep_finished(study, trial, run_id):
            return
        if self.tracker is not None and run_id:
            mark_run_ended(self.tracker, run_id, "FAILED", "worker lost: no heartbeat within the grace period")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, trial)
        self.progress(f"trial {trial.number}: its worker stopped sending heartbeats; FAIL, retried once")

    def _keep_finished(self, study: Any, trial: Any, run_id: str) -> bool:
        """A worker killed after its trial's MLflow run had finished, before Optuna heard the result:
        the result is kept as a COMPLETE trial that supersedes the FAIL one (no retraining, nothing lost)."""
        import optuna

        assert self.tracker is not None
        try:
            run = self.tracker.client.get_run(run_id)
        except Exception:  # deleted or never written
            return False
        value = run.data.metrics.get("objective")
        if run.info.status != "FINISHED" or run.data.tags.get("optuna.state") != "COMPLETE" or value is None:
            return False
        system_attrs = {**trial.system_attrs, REQUEUE_ATTR: [*trial.system_attrs.get(REQUEUE_ATTR, ()), trial.number]}
        study.add_trial(
            optuna.create_trial(
                state=optuna.trial.TrialState.COMPLETE,
                value=value,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=trial.user_attrs,
                system_attrs=system_attrs,
            )
        )
        self.tracker.client.set_tag(run_id, NOTE_TAG, "its worker died after the run finished; result kept")
        self.progress(f"trial {trial.number}: its worker died after the trial finished; its result is kept")
        return True


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

    @functools.cached_property
    def invocation(self) -> str:
        """``<parent run start, UTC>-<parent run id[:8]>``: the study's folder of TensorBoard trials, as a
        ladder's invocation is; the same for every worker and every resume, new for a study made again."""
        info = self.tracker.client.get_run(self.settings.parent_run_id).info
        return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(info.start_time / 1000))}-{info.run_id[:8]}"

    def current_budget(self) -> Budget:
        """Re-read: a resumed ``harness study --trials N`` may have raised it since this worker started."""
        raw = self.study.user_attrs.get(ATTR) or {}
        return Budget(**raw.get("budget", self.settings.budget))


def trial_tags(settings: StudySettings, name: str, resolved: ResolvedSpace, url: str) -> dict[str, str]:
    """Every trial's tags but its own (:class:`~harness.tracking.TrialRecord` adds those)."""
    return {
        **environment_tags(),
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
    uri = tracking_uri or settings.tracking_uri
    if not tracking_uri and hides_secret(uri):
        raise UserError(
            f"study {name!r} logs to {uri}, whose password is not stored in the study; pass --tracking-uri "
            "with the password, or set $HARNESS_TRACKING_URI to it"
        )
    if not tracking_uri and uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UserError(
            f"study {name!r} logs to {uri}, which is not on this machine; pass --tracking-uri with a tracking "
            "store every worker reaches (an MLflow server, or a shared database)"
        )
    tracker = Tracker(uri)
    handler.tracker = tracker
    storage = open_storage(url, interval, grace, on_stale=handler)
    resolved, sampler, pruner, _ = settings.resolve(tracker)  # the space file comes from the parent run
    study = optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=sampler.build(resolved.space),
        pruner=build_pruner(pruner, resolved.base),
    )
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
        trial_tags(settings, name, resolved, url),
    )
