"""Optuna's private API that harness uses, checked against the version pyproject.toml pins.

harness subclasses ``optuna.storages._heartbeat.BaseHeartbeat`` (heartbeats on the journal
storage) and reads trial ids (``Trial._trial_id``, ``FrozenTrial._trial_id``), for which Optuna
has no public API. A new Optuna may change them silently, so the dependency is pinned to the
minor version tested, and this file fails first, naming what changed, when either moves.
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import optuna
from optuna.storages._heartbeat import BaseHeartbeat
from packaging.requirements import Requirement

from harness.studies._journal import HeartbeatJournalStorage

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _pinned() -> Requirement:
    deps = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    return next(r for r in map(Requirement, deps) if r.name == "optuna")


def test_optuna_is_pinned_to_a_minor_version_and_the_installed_one_is_in_it() -> None:
    pin = _pinned()
    assert any(s.operator == "<" for s in pin.specifier), f"optuna must have an upper bound, got {pin}"
    assert pin.specifier.contains(optuna.__version__), f"installed optuna {optuna.__version__} is outside {pin}"


def test_the_heartbeat_interface_is_what_the_journal_storage_implements() -> None:
    abstract = set(getattr(BaseHeartbeat, "__abstractmethods__", ()))
    assert abstract == {
        "record_heartbeat",
        "_get_stale_trial_ids",
        "get_heartbeat_interval",
        "get_heartbeat_stale_trial_callback",
    }, f"optuna {optuna.__version__} changed BaseHeartbeat: {sorted(abstract)}"
    assert not getattr(HeartbeatJournalStorage, "__abstractmethods__", frozenset())
    for name in abstract:  # same parameters as the interface declares
        theirs = list(inspect.signature(getattr(BaseHeartbeat, name)).parameters)
        ours = list(inspect.signature(getattr(HeartbeatJournalStorage, name)).parameters)
        assert ours == theirs, (name, ours, theirs)
    # what study.optimize and fail_stale_trials check before they use heartbeats
    from optuna.storages._heartbeat import is_heartbeat_enabled

    assert callable(is_heartbeat_enabled)


def test_trial_ids_are_where_harness_reads_them(tmp_path: Path) -> None:
    storage = HeartbeatJournalStorage(tmp_path / "study.journal", heartbeat_interval=60, grace_period=120)
    study = optuna.create_study(storage=storage, study_name="pin")
    trial = study.ask()
    assert isinstance(trial._trial_id, int)
    frozen = storage.get_all_trials(study._study_id)[0]
    assert frozen._trial_id == trial._trial_id
    assert storage.get_trial(trial._trial_id).number == trial.number == 0
