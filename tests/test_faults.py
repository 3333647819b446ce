"""Ctrl-C and SIGTERM in the middle of a ladder: runs end KILLED, finished rungs survive."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.cli import main


def _finished(db: Path) -> int:
    """Read-only count: an MlflowClient here would race the subprocess's table creation."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("select count(*) from runs where status = 'FINISHED'").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _runs(db: Path) -> list:
    if not db.exists():
        return []
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("ladder/mnist")
    return client.search_runs([exp.experiment_id]) if exp else []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_marks_runs_killed_and_keeps_finished_rungs(
    workdir: Path, tiny_data_dir: Path, sig: signal.Signals
) -> None:
    db = workdir / "mlflow.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "ladder",
            "mnist",
            "--scale",
            "smoke",
            "--seeds",
            "2",
            "--data-dir",
            str(tiny_data_dir),
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if _finished(db) >= 2:
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted" in out
    runs = _runs(db)
    statuses = sorted(r.info.status for r in runs)
    assert "RUNNING" not in statuses, statuses
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "KILLED"
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) >= 2
    assert all("final_test_accuracy" in r.data.metrics for r in finished)
    # the finished rungs stay reportable
    assert main(["report", "ladder", "mnist", "--run", parent.info.run_id, "--out", "partial"]) == 0
    text = (workdir / "partial" / "mnist_ladder_smoke.md").read_text(encoding="utf-8")
    assert "nan" not in text.lower().replace("|", " ").split()
    # the signal may land between rungs: only a rung run that was stopped has a row that says why it is empty
    killed = [r for r in runs if r.info.status == "KILLED" and "mlflow.parentRunId" in r.data.tags]
    assert ("n/a (killed)" in text) == bool(killed), text
