"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

from mlflow.entities import Run
from mlflow.tracking import MlflowClient


def store_runs(root: Path, experiment: str, tracking_uri: str | None = None) -> list[Run]:
    """Every run of ``experiment`` in the store at ``root/mlflow.db`` (or ``tracking_uri``)."""
    client = MlflowClient(tracking_uri or f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def rung_run(root: Path, experiment: str, rung: str) -> Run:
    return next(r for r in store_runs(root, experiment) if r.data.tags.get("harness.rung") == rung)


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Until ``url`` answers, or fail if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.5)
