"""``harness runs clean`` for Optuna: RUNNING trials whose worker process is gone end FAIL.

A worker killed with ``kill -9`` leaves its trial RUNNING in the study's storage until a worker
of that study sees its heartbeat expire (the next ``harness study`` or ``harness worker`` on it).
``runs clean`` does not wait: a RUNNING trial whose MLflow run names as its owner a process of
this host that is gone (host, pid and start time, as ``tracking._sweep`` reads them) ends FAIL
now, through the storage's public API, and is then dealt with as a stale trial is
(``StaleTrials``: queued again once, or its finished result kept). Other hosts' trials are left
alone, as their runs are: only that host can tell whether its process is alive.

The storages: ``--storage`` (or ``$HARNESS_STORAGE``), the default one beside the tracking store,
and every journal or SQLite file a study's parent run names (tag ``optuna.storage``). A database
server named there is not opened unasked (its password is masked, it may be far or down): it is
listed, to be given with ``--storage``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness._secrets import hides_secret
from harness.errors import UserError
from harness.studies._context import StaleTrials
from harness.studies._settings import ATTR, REQUEUE_ATTR
from harness.studies._storage import default_storage_url, local_file, normalise_url, open_storage, redact
from harness.tracking import StudyRecord, Tracker, kind_filter, owner_gone, owner_of

_STORAGE_TAG = "optuna.storage"  # on a study's parent run, password masked (lifecycle._parent_tags)


@dataclasses.dataclass(frozen=True)
class LostTrial:
    storage: str  # as shown: password masked
    study: str
    number: int
    owner: str  # "pid 123 on host"
    outcome: str  # "" (dry run), "queued again", "its finished result kept", ...


@dataclasses.dataclass(frozen=True)
class Storages:
    urls: list[str]  # to check
    servers: list[str]  # named by studies, not given with --storage: listed, not opened


def find_storages(tracker: Tracker, given: str | None) -> Storages:
    """``given`` (refused by name if malformed), the default storage if its file exists, and the
    local files and servers the tracking store's studies name."""
    urls: dict[str, None] = {}
    if given:
        url = normalise_url(given)
        path = local_file(url)
        if path is not None and not path.exists():  # opening it would create an empty one
            raise UserError(f"--storage {redact(url)}: no such file {path}")
        if path is None:
            open_storage(url)  # a server that cannot be reached is refused now, by name
        urls[url] = None
    default = normalise_url(default_storage_url(tracker.uri))
    path = local_file(default)
    if path is not None and path.exists():
        urls[default] = None
    servers: dict[str, None] = {}
    shown = {redact(u) for u in urls}
    for named in _named_by_studies(tracker.client):
        if named in shown:
            continue
        try:
            path = None if hides_secret(named) else local_file(named)
        except Exception:  # a malformed tag: nothing to open
            continue
        if path is None:
            servers[named] = None
        elif path.exists():
            urls[normalise_url(named)] = None
    return Storages(list(urls), list(servers))


def _named_by_studies(client: Any) -> set[str]:
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    named: set[str] = set()
    token = None
    while experiments:
        page = client.search_runs(
            experiments,
            kind_filter(StudyRecord.KIND),
            run_view_type=ViewType.ALL,
            max_results=1000,
            page_token=token,
        )
        named.update(r.data.tags[_STORAGE_TAG] for r in page if r.data.tags.get(_STORAGE_TAG))
        token = page.token
        if not token:
            break
    return named


def fail_lost_trials(url: str, tracker: Tracker, dry_run: bool = False) -> list[LostTrial]:
    """End FAIL every RUNNING trial in ``url`` whose worker process (of this host) is gone."""
    import optuna
    from optuna.trial import TrialState

    storage = open_storage(url)
    shown = redact(url)
    found: list[LostTrial] = []
    for summary in storage.get_all_studies():
        study_id = storage.get_study_id_from_name(summary.study_name)
        running = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        lost = [(t, tags) for t in running if (tags := _owner_tags(tracker, t)) is not None and owner_gone(tags)]
        if not lost:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        handler = StaleTrials()  # as when its heartbeat expires: queued again once, or a finished result kept
        handler.tracker, handler.progress = tracker, lambda line: None
        for trial, tags in lost:
            outcome = ""
            if not dry_run:
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
                try:
                    storage.set_trial_state_values(trial_id, TrialState.FAIL)
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue  # it ended meanwhile: not lost after all
                handler(study, storage.get_trial(trial_id))
                outcome = _fate(storage.get_all_trials(study_id, deepcopy=False), trial.number)
            found.append(LostTrial(shown, summary.study_name, trial.number, owner_of(tags), outcome))
    return found


def _owner_tags(tracker: Tracker, trial: Any) -> dict[str, str] | None:
    """The owner tags of the trial's MLflow run; None if it has none in this tracking store."""
    run_id = (trial.user_attrs.get(ATTR) or {}).get("mlflow_run_id")
    if not run_id:
        return None  # claimed but never started: the study's own orphan check fails it after the grace period
    try:
        return dict(tracker.client.get_run(run_id).data.tags)
    except Exception:  # tracked in another store, or deleted
        return None


def _fate(trials: list[Any], number: int) -> str:
    if any(number in t.system_attrs.get(REQUEUE_ATTR, ()) and t.state.name == "COMPLETE" for t in trials):
        return "its finished result kept"
    if any(t.system_attrs.get("failed_trial") == number for t in trials):
        return "queued again"
    return "not queued again (a retry already)"
