"""Runs whose process is gone: found and ended KILLED, so that nothing stays RUNNING forever.

A process killed with ``kill -9`` (or the machine's OOM killer, or a power cut) cannot end its
MLflow runs. Every run harness opens records who owns it (``harness.host``, ``harness.pid`` and
the process's start time, which tells a live owner from a reused pid). ``sweep`` ends the RUNNING
runs of this host whose owner is gone; it runs at the start of every ladder and study on the
store, and as ``harness runs clean``. Runs owned by another host are listed, never touched: only
that host can tell whether its process is alive.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HOST_TAG = "harness.host"
PID_TAG = "harness.pid"
START_TAG = "harness.pid_start"
SWEPT_TAG = "harness.swept"


def owner_tags() -> dict[str, str]:
    """The tags that name this process as a run's owner."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), START_TAG: _start_time(os.getpid()) or ""}


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after its closing one
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str) -> bool:
    now = _start_time(pid)
    if now is None:
        return False
    return not start or now == start  # same pid, other start time: the owner died and the pid was reused


def owner_gone(tags: Mapping[str, str]) -> bool:
    """Whether a run's owner tags name a process of this host that is gone (another host's: False)."""
    pid = tags.get(PID_TAG, "")
    if not pid.isdigit() or tags.get(HOST_TAG) != socket.gethostname():
        return False
    return not _alive(int(pid), tags.get(START_TAG, ""))


def owner_of(tags: Mapping[str, str]) -> str:
    """A run's owner as messages name it: "pid 123 on host"."""
    return f"pid {tags.get(PID_TAG, '?')} on {tags.get(HOST_TAG, '?')}"


@dataclasses.dataclass(frozen=True)
class Orphan:
    run_id: str
    name: str
    experiment: str
    owner: str  # "pid 123 on host"
    ended: bool  # False: another host's run, left alone


def sweep(client: Any, dry_run: bool = False) -> list[Orphan]:
    """End KILLED every RUNNING run of this host whose owning process is gone; list other hosts' too."""
    from mlflow.entities import RunStatus, ViewType

    host = socket.gethostname()
    experiments = {e.experiment_id: e.name for e in client.search_experiments(view_type=ViewType.ALL)}
    if not experiments:
        return []
    found: list[Orphan] = []
    token = None
    while True:
        page = client.search_runs(
            list(experiments),
            "attributes.status = 'RUNNING'",
            run_view_type=ViewType.ALL,
            max_results=1000,
            page_token=token,
        )
        for run in page:
            tags = run.data.tags
            pid = tags.get(PID_TAG, "")
            if not pid.isdigit():
                continue  # not opened by this version of harness: nobody can tell
            owner = owner_of(tags)
            local = tags.get(HOST_TAG) == host
            if local and _alive(int(pid), tags.get(START_TAG, "")):
                continue
            name = tags.get("mlflow.runName", run.info.run_id)
            exp = experiments.get(run.info.experiment_id, run.info.experiment_id)
            if local and not dry_run:
                client.set_tag(run.info.run_id, SWEPT_TAG, f"its process ({owner}) was gone; ended KILLED")
                client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))
            found.append(Orphan(run.info.run_id, name, exp, owner, local and not dry_run))
        token = page.token
        if not token:
            return found
