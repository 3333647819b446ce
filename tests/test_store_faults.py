"""Stores under stress: a full or read-only disk, two processes creating one store, kill -9, a dead
tracking server, an empty parent run left by Ctrl-C. Each ends with a clear message, no traceback,
no half-built store and, once swept, no run left RUNNING.

Full and read-only disks are real: small tmpfs mounts (the tests need root, as on this machine and
CI; elsewhere they skip and say why).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_cli
from mlflow.tracking import MlflowClient

from harness.cli import main
from harness.tracking import LadderRecord, Tracker, sweep
from harness.tracking._sweep import HOST_TAG, PID_TAG, START_TAG, SWEPT_TAG


def _harness(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@contextlib.contextmanager
def _tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'not root'}); the disk tests need one")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _statuses(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("select status from runs")]


# --- creating the store -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_creating_one_store_at_once_both_succeed(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "mlflow.db"
    code = (
        "import sys; from harness.tracking import Tracker;"
        f"print(Tracker('sqlite:///{db}').experiment_id('ladder/race'))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    assert len({out.strip() for out, _ in outs}) == 1  # one experiment, the same id for all
    assert sorted(p.name for p in db.parent.iterdir() if not p.name.startswith("mlflow.db")) == []  # no temp files
    assert [e.name for e in MlflowClient(f"sqlite:///{db}").search_experiments()] == ["ladder/race", "Default"]


def test_a_full_disk_while_creating_the_store_leaves_nothing(workdir: Path) -> None:
    with _tmpfs(workdir / "small", "64k") as disk:
        rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{disk}/mlflow.db")
        assert rc == 1, out
        assert f"error: {disk}/mlflow.db: could not create it (" in out
        assert "nothing was left behind" in out and "Traceback" not in out
        assert list(disk.iterdir()) == []  # no half-built mlflow.db to break the next command
    # with room, the same command builds the store
    rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{workdir}/ok/mlflow.db")
    assert rc == 0, out


def test_a_read_only_folder_is_a_clear_error(workdir: Path) -> None:
    with _tmpfs(workdir / "ro", "1m", read_only=True) as disk:
        rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{disk}/mlflow.db")
        assert rc in (1, 2), out
        assert str(disk) in out and "Read-only file system" in out and "Traceback" not in out


@pytest.mark.slow
def test_a_disk_that_fills_during_a_ladder_ends_cleanly(tmp_path: Path, tiny_data_dir: Path) -> None:
    """Room for the store, not for the runs' artifacts: the command fails with a message, and
    whatever could not be ended for lack of space is ended by the next sweep once there is room
    (its process is gone: so a real process, not this one)."""
    with _tmpfs(tmp_path / "disk", "3m") as disk:
        proc = _harness(
            "ladder",
            "mnist",
            "--scale",
            "smoke",
            "--rungs",
            "1-2",
            "--data-dir",
            str(tiny_data_dir),
            "--tracking-uri",
            f"sqlite:///{disk}/mlflow.db",
            "--tensorboard-dir",
            str(disk / "tb"),
            cwd=tmp_path,
            timeout=600,
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert "No space left on device" in proc.stderr or "disk is full" in proc.stderr, proc.stderr
        db = disk / "mlflow.db"
        # free what the failed run wrote besides the store, then sweep: nothing stays RUNNING
        for p in disk.rglob("*"):
            if p.is_file() and not p.name.startswith("mlflow.db"):
                p.unlink()
        Tracker(f"sqlite:///{db}").end_orphans()
        assert "RUNNING" not in _statuses(db)


# --- processes that die without a word ----------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_leaves_runs_that_the_next_start_ends_killed(workdir: Path, tiny_data_dir: Path) -> None:
    db = workdir / "mlflow.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "ladder", "mnist", "--scale", "smoke", "--data-dir", str(tiny_data_dir)],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error):
            if db.exists() and _statuses(db).count("RUNNING") >= 2:  # the parent and a rung
                break
        time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _statuses(db).count("RUNNING") >= 2

    # the next start, in this process: what is tested is what the killed process left
    rc, out = run_cli("runs", "clean", "--dry-run")
    assert rc == 0 and out.count("would end KILLED") >= 2, out
    assert _statuses(db).count("RUNNING") >= 2  # a dry run changes nothing
    rc, out = run_cli("runs", "clean")
    assert rc == 0 and "Traceback" not in out, out
    assert "RUNNING" not in _statuses(db)
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("ladder/mnist")
    swept = [r for r in client.search_runs([exp.experiment_id]) if SWEPT_TAG in r.data.tags]
    assert len(swept) >= 2 and all(r.info.status == "KILLED" for r in swept)
    assert all(r.data.tags[PID_TAG] == str(proc.pid) for r in swept)
    rc, out = run_cli("report", "ladder", "mnist")
    # a table of the finished rungs, or a clear "nothing to report yet": never a traceback
    assert rc in (0, 2) and "Traceback" not in out, out[-2000:]


# a signal at a random moment of a ladder (seeded: reproducible). One point, a SIGTERM early on (start-up or the
# first rung, as the machine's speed has it): SIGKILL mid-rung is the test above, SIGINT and SIGTERM after finished
# rungs are tests/test_faults.py.
_RANDOM_POINTS = [(signal.SIGTERM, round(random.Random(1).uniform(0.5, 25.0), 1))]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "after_s"), _RANDOM_POINTS, ids=[f"{s.name}-{t}s" for s, t in _RANDOM_POINTS])
def test_a_signal_at_a_random_point_leaves_a_consistent_store(
    workdir: Path, tiny_data_dir: Path, sig: signal.Signals, after_s: float
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "ladder", "mnist", "--scale", "smoke", "--data-dir", str(tiny_data_dir)],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after_s)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    expected = {0, -9} if sig == signal.SIGKILL else {0, 130}  # 0: it had finished
    assert proc.returncode in expected and "Traceback" not in err, (proc.returncode, err[-2000:])
    db = workdir / "mlflow.db"
    if sig != signal.SIGKILL and db.exists():
        assert "RUNNING" not in _statuses(db)  # a graceful signal ends its runs itself
    rc, out = run_cli("runs", "clean")
    assert rc == 0 and "Traceback" not in out, out
    if db.exists():
        assert "RUNNING" not in _statuses(db)
    rc, out = run_cli("report", "ladder", "mnist")
    # a table of the finished rungs, or a clear "nothing to report yet": never a traceback
    assert rc in (0, 2) and "Traceback" not in out, out[-2000:]


def test_sweep_ends_only_runs_whose_process_is_gone(tmp_path: Path) -> None:
    """A live owner, a dead one, a reused pid (same pid, other start time) and another host's run."""
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db")
    exp = tracker.experiment_id("ladder/sweep")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    owners = {
        "alive": {HOST_TAG: host, PID_TAG: str(os.getpid())},
        "dead": {HOST_TAG: host, PID_TAG: str(dead.pid), START_TAG: "1"},
        "reused": {HOST_TAG: host, PID_TAG: str(os.getpid()), START_TAG: "1"},
        "elsewhere": {HOST_TAG: "another-host", PID_TAG: "1"},
    }
    ids = {}
    for name, tags in owners.items():
        run = tracker.client.create_run(exp, run_name=name, tags=tags)
        ids[name] = run.info.run_id
    with tracker.run(exp, "mine") as live:  # Tracker.run records this process as the owner
        assert {o.name for o in sweep(tracker.client, dry_run=True)} == {"dead", "reused", "elsewhere"}
        ended = {o.name for o in tracker.end_orphans()}
        assert ended == {"dead", "reused"}
        status = {n: tracker.client.get_run(i).info.status for n, i in ids.items()}
        assert status == {"alive": "RUNNING", "dead": "KILLED", "reused": "KILLED", "elsewhere": "RUNNING"}
        assert tracker.client.get_run(live.run_id).info.status == "RUNNING"


# --- a dead server, a bad URI, an empty parent run ----------------------------------------------------------


@pytest.mark.slow
def test_a_tracking_server_that_is_down_fails_in_bounded_time(workdir: Path, tiny_data_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    start = time.monotonic()
    rc, out = run_cli(
        "ladder", "mnist", "--scale", "smoke", "--rungs", "1", "--data-dir", str(tiny_data_dir),
        "--tracking-uri", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    assert rc == 1, out
    assert "error: the tracking store failed" in out
    assert "Traceback" not in out
    assert time.monotonic() - start < 150


def test_an_unknown_tracking_scheme_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "ladder", "mnist", "--tracking-uri", "foo://bar"]) == 2
    assert "tracking URI 'foo://bar': unknown scheme 'foo'" in capsys.readouterr().err


def test_report_skips_an_empty_parent_and_a_partial_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C at start-up leaves an empty KILLED parent; `--rungs` leaves a partial one: the default
    report is still the latest complete run."""
    from harness.report._ladder import find_parent_run

    tracker = Tracker(None)
    exp = tracker.experiment_id("ladder/mnist")
    tags = LadderRecord(ladder="mnist", scale="smoke", task="classification", metric="test_accuracy", seeds=1).to_tags()
    with tracker.run(exp, "complete", {**tags, "harness.rungs_selected": ""}) as complete:
        pass
    with tracker.run(exp, "partial", {**tags, "harness.rungs_selected": "6,8"}):
        pass
    with pytest.raises(KeyboardInterrupt), tracker.run(exp, "empty", tags):
        raise KeyboardInterrupt
    with tracker.run(exp, "before tasks", {"harness.kind": "ladder", "harness.scale": "smoke"}):
        pass  # the latest, but made before ladders tagged their task: skipped, never read as some default
    assert find_parent_run(tracker, "mnist", None, None).info.run_id == complete.run_id
