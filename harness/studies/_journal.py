"""Optuna's journal file storage with heartbeats.

Optuna 5.0 implements its ``BaseHeartbeat`` interface (what ``study.optimize``'s
heartbeat thread and ``optuna.storages.fail_stale_trials`` use) for ``RDBStorage``
only. This adds it to ``JournalStorage`` on a ``JournalFileBackend`` without
changing either: a heartbeat is one more journal line.

``BaseHeartbeat`` is private to Optuna (``optuna.storages._heartbeat``), as are trial ids
(``Trial._trial_id``, used by the worker and the stale-trial sweep); no public API gives
either. So pyproject.toml pins Optuna to the minor version tested, and
tests/test_optuna_pin.py checks the pin and every private name harness relies on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from harness.errors import UserError
from harness.studies._settings import HEARTBEAT_ATTR


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's ``JournalStorage`` on a journal file, with Optuna's ``BaseHeartbeat`` interface.

    ``record_heartbeat`` writes the time as a trial system attribute; a RUNNING trial
    is stale when neither that time nor its start is within ``grace_period`` seconds
    (a retried trial carries its predecessor's attribute, its start is new). The
    attribute names match ``RDBStorage``'s, so the worker loop treats both alike.
    """

    def __init__(
        self,
        path: Path,
        heartbeat_interval: int,
        grace_period: int,
        on_stale: Callable[[Any, Any], None] | None = None,
    ) -> None:
        if heartbeat_interval <= 0 or grace_period <= 0:
            raise ValueError(f"heartbeats need positive times, but got {heartbeat_interval=}, {grace_period=}")
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            backend = JournalFileBackend(str(self.path))
            super().__init__(backend)
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"--storage journal:{self.path}: cannot open it ({type(exc).__name__}: {exc})") from None
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.heartbeat_stale_trial_callback = on_stale

    def record_heartbeat(self, trial_id: int) -> None:
        # A trial another worker already failed as stale takes no heartbeat; its owner finds out when it ends.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            started = t.datetime_start.timestamp() if t.datetime_start is not None else 0.0
            if now - max(float(t.system_attrs.get(HEARTBEAT_ATTR, 0.0)), started) > self.grace_period:
                stale.append(t._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[Any, Any], None] | None:
        return self.heartbeat_stale_trial_callback
