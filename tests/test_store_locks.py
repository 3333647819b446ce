"""Several harness commands on one SQLite store wait for each other's locks, on a loaded machine too:
none fails with "database is locked" (issue 25). A lock held past ``$HARNESS_SQLITE_LOCK_TIMEOUT`` is
one line naming the store, exit 1."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli

from harness._sqlite import LOCK_TIMEOUT_ENV, StoreLocked, is_lock_error, lock_timeout, retry_locked
from harness.cli import main
from harness.errors import UserError

# a small study: 4 grid points, 20 steps each on tiny MNIST
FIXED = {
    "steps_per_execution": 10,
    "train_subset": 600,
    "test_subset": 200,
    "eval_batch_size": 200,
    "eval_every": 10,
    "iterations": 20,
}
SPACE = f"""\
name: race
experiment: {{ladder: mnist, rung: softmax, scale: smoke}}
fixed: {json.dumps(FIXED)}
objective: {{metric: accuracy}}
budget: {{max_trials: 4}}
sampler: grid
params:
  lr0: {{type: float, low: 0.001, high: 0.1, log: true, grid: [0.003, 0.01, 0.03, 0.1]}}
"""
STUDY = "race-grid"


class Burners:
    """Two processes that keep both cores busy, as the rest of a test suite does under `pytest -n 2`."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.procs += [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.procs = []


@pytest.fixture
def cpu_burners() -> Iterator[Burners]:
    burners = Burners()
    try:
        yield burners
    finally:
        burners.stop()


def _start(args: list[str], cwd: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_OFFLINE": "1", **env}
    full_env.pop("MLFLOW_TRACKING_URI", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "harness", *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=full_env
        )


def _wait(procs: dict[str, subprocess.Popen[bytes]], logs: dict[str, Path], timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    codes = {}
    try:
        for label, proc in procs.items():
            codes[label] = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise AssertionError("\n".join(f"--- {k}\n{v.read_text()}" for k, v in logs.items())) from None
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return codes


def _complete(journal: Path) -> list[Any]:
    """COMPLETE trials of the study in Optuna's journal (no SQLite: the test adds no lock of its own)."""
    import optuna

    from harness.studies._storage import open_storage

    if not journal.exists():
        return []
    try:
        study = optuna.load_study(study_name=STUDY, storage=open_storage(f"journal:{journal}"))
    except KeyError:  # not created yet
        return []
    return [t for t in study.trials if t.state.name == "COMPLETE"]


@pytest.mark.slow
def test_studies_a_clean_and_a_report_at_once_on_one_new_store_under_load(
    tmp_path: Path, tiny_data_dir: Path, cpu_burners: Burners
) -> None:
    """2 `harness study` commands started at once on a folder with no store yet (no mlflow.db, no
    journal), `harness runs clean` beside them from the start, `harness report study` once a trial is
    done, both cores busy from the moment a study opens its storage: every command exits 0 and none says
    "locked"; one study, one MLflow parent run holding every trial."""
    space = tmp_path / "race.yaml"
    space.write_text(SPACE, encoding="utf-8")
    logs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(label: str, *args: str) -> None:
        logs[label] = tmp_path / f"{label}.log"
        procs[label] = _start(list(args), tmp_path, logs[label])

    for i in range(2):
        start(f"study{i}", "study", str(space), "--data-dir", str(tiny_data_dir), "--no-report")
    start("clean", "runs", "clean")
    deadline = time.monotonic() + 400
    # both cores busy once a study reaches its storage: what runs before (imports) takes no lock
    while not (tmp_path / "optuna.journal").exists():
        assert time.monotonic() < deadline and all(procs[f"study{i}"].poll() is None for i in range(2)), [
            v.read_text()[-2000:] for v in logs.values()
        ]
        time.sleep(0.05)
    cpu_burners.start()
    studies = [procs[f"study{i}"] for i in range(2)]
    # a report needs the study's parent run; one complete trial means it exists (no sleep races the work)
    while not _complete(tmp_path / "optuna.journal") and any(p.poll() is None for p in studies):
        assert time.monotonic() < deadline, "\n".join(f"--- {k}\n{v.read_text()}" for k, v in logs.items())
        time.sleep(0.5)
    start("report", "report", "study", STUDY, "--out", str(tmp_path / "report"))
    codes = _wait(procs, logs, timeout=max(60.0, deadline - time.monotonic()))
    cpu_burners.stop()  # every command is done: the checks need no load
    outputs = {k: v.read_text() for k, v in logs.items()}
    assert codes == dict.fromkeys(procs, 0), {k: outputs[k][-3000:] for k, c in codes.items() if c}
    assert not [k for k, text in outputs.items() if "locked" in text.lower()], outputs
    assert (tmp_path / "report" / f"study_{STUDY}.md").is_file(), outputs["report"]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("study/race")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("harness.kind") == "study"]
    assert len(parents) == 1, [(r.info.run_id, r.info.status) for r in parents]  # the two shared one store
    trials = [r for r in runs if r.data.tags.get("harness.kind") == "trial"]
    assert trials and all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in trials)
    complete = _complete(tmp_path / "optuna.journal")
    assert sorted(t.params["lr0"] for t in complete) == [0.003, 0.01, 0.03, 0.1]  # each grid point once
    assert {r.data.tags.get("optuna.trial_number") for r in trials} >= {str(t.number) for t in complete}
    assert "RUNNING" not in {r.info.status for r in runs}


# --- one store open waiting on a lock that the test holds ----------------------------------------------


def _mlflow_store(folder: Path) -> Path:
    """A store as MLflow makes it itself (rollback journal, not WAL): opening it in harness converts it
    to WAL, which needs the exclusive lock the test holds."""
    from mlflow.tracking import MlflowClient

    store = folder / "mlflow.db"
    MlflowClient(f"sqlite:///{store}").search_experiments()
    return store


def _optuna_store(folder: Path) -> Path:
    import optuna

    store = folder / "optuna.db"
    optuna.storages.RDBStorage(f"sqlite:///{store}").engine.dispose()
    return store


def _clean_args(which: str, store: Path) -> list[str]:
    """`harness runs clean`, which opens the tracking store and, given --storage, Optuna's."""
    if which == "mlflow":
        return ["runs", "clean", "--tracking-uri", f"sqlite:///{store}"]
    return ["runs", "clean", "--tracking-uri", f"sqlite:///{store.parent}/mlflow.db", "--storage", f"sqlite:///{store}"]


@contextlib.contextmanager
def _exclusive(store: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    assert conn.execute("pragma journal_mode").fetchone()[0] != "wal"  # so that the lock blocks readers too
    conn.execute("begin exclusive")
    try:
        yield conn
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("rollback")
        conn.close()


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open: it got as far as SQLite, and waits there on the lock."""
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == str(path):
                    return True
    return False


def _wait_open(proc: subprocess.Popen[bytes], store: Path, log: Path) -> None:
    """Until ``proc`` has ``store`` open (it waits there on the lock); it must not have given up."""
    deadline = time.monotonic() + 120  # an import of MLflow on a busy machine
    while not _has_open(proc.pid, store) and proc.poll() is None:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    assert proc.poll() is None, log.read_text()  # it did not give up while the lock was held


@pytest.mark.slow
def test_a_store_open_waits_for_a_lock_and_succeeds_once_it_is_released(tmp_path: Path) -> None:
    """One `runs clean` opens the tracking store, then (given --storage) Optuna's: it waits on each while the
    test holds its lock, and goes on once that is released."""
    stores = {"mlflow": _mlflow_store(tmp_path), "optuna": _optuna_store(tmp_path)}
    args = ["runs", "clean", "--tracking-uri", f"sqlite:///{stores['mlflow']}"]
    args += ["--storage", f"sqlite:///{stores['optuna']}"]
    log = tmp_path / "clean.log"
    with contextlib.ExitStack() as locks:
        held = {which: locks.enter_context(_exclusive(store)) for which, store in stores.items()}
        proc = _start(args, tmp_path, log)
        try:
            for which, store in stores.items():  # in the order it opens them
                _wait_open(proc, store, log)
                held[which].execute("rollback")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    rc = proc.wait(timeout=180)
    out = log.read_text()
    assert rc == 0, out
    assert "locked" not in out.lower(), out
    for store in stores.values():
        with contextlib.closing(sqlite3.connect(store)) as conn:  # what it waited for: the switch to WAL
            assert conn.execute("pragma journal_mode").fetchone()[0] == "wal", store


@pytest.mark.slow
@pytest.mark.parametrize("which", ["mlflow", "optuna"])
def test_a_lock_held_past_the_bound_is_one_line_naming_the_store(
    tmp_path: Path, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _mlflow_store(tmp_path) if which == "mlflow" else _optuna_store(tmp_path)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "2")
    out, err = io.StringIO(), io.StringIO()  # stderr apart: the error is its one line
    with _exclusive(store), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(_clean_args(which, store))
    assert rc == 1, out.getvalue() + err.getvalue()
    assert "Traceback" not in err.getvalue(), err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, err.getvalue()
    assert lines[0].startswith(f"error: {store}: another process holds a lock on this SQLite store"), lines[0]
    assert LOCK_TIMEOUT_ENV in lines[0]


# --- the pieces, in this process, on real SQLite locks -------------------------------------------------


def _locked_error(store: Path) -> sqlite3.OperationalError:
    """The error SQLite itself gives a writer while another connection holds the database."""
    with _exclusive(store), contextlib.closing(sqlite3.connect(store, timeout=0)) as other:
        try:
            other.execute("begin immediate")
        except sqlite3.OperationalError as exc:
            return exc
    raise AssertionError("no lock error")


def test_lock_errors_are_told_from_bad_stores_through_sqlalchemy_and_mlflow(tmp_path: Path) -> None:
    import sqlalchemy
    from mlflow.exceptions import MlflowException

    store = tmp_path / "a.db"
    sqlite3.connect(store).close()
    locked = _locked_error(store)
    assert is_lock_error(locked)
    engine = sqlalchemy.create_engine(f"sqlite:///{store}", connect_args={"timeout": 0})
    with _exclusive(store), pytest.raises(sqlalchemy.exc.OperationalError) as wrapped, engine.connect() as conn:
        conn.execute(sqlalchemy.text("select * from sqlite_master")).fetchall()
    engine.dispose()
    assert is_lock_error(wrapped.value)
    try:  # MLflow raises its own exception from SQLAlchemy's (mlflow.store.db.utils)
        raise MlflowException(str(wrapped.value)) from wrapped.value
    except MlflowException as exc:
        assert is_lock_error(exc)

    not_db = tmp_path / "notes.txt"
    not_db.write_text("not a database\n" * 100)
    with pytest.raises(sqlite3.DatabaseError) as bad, contextlib.closing(sqlite3.connect(not_db)) as conn:
        conn.execute("pragma journal_mode=wal")
    assert not is_lock_error(bad.value)
    assert not is_lock_error(ValueError("database is locked"))  # only SQLite's own errors count


def test_a_file_that_cannot_open_as_a_store_is_refused_on_the_first_try(tmp_path: Path) -> None:
    """``check_opens`` runs before MLflow opens a SQLite store (MLflow retries a failing open for about
    100 s): an empty database passes; a file that is no database fails once, with SQLite's reason, and
    ``retry_locked`` does not try it again, because that is not a lock."""
    from harness._sqlite import check_opens

    store = tmp_path / "a.db"
    sqlite3.connect(store).close()
    check_opens(str(store))
    not_db = tmp_path / "notes.db"
    not_db.write_text("not a database\n" * 100)
    calls: list[float] = []

    def attempt(seconds_left: float) -> None:
        calls.append(seconds_left)
        check_opens(str(not_db))

    with pytest.raises(Exception, match="file is not a database") as bad:
        retry_locked(not_db, attempt)
    assert len(calls) == 1 and not is_lock_error(bad.value)


def test_retry_locked_waits_until_the_holder_lets_go(tmp_path: Path) -> None:
    store = tmp_path / "a.db"
    sqlite3.connect(store).close()
    met_lock = threading.Event()
    calls: list[float] = []

    def attempt(seconds_left: float) -> str:
        calls.append(seconds_left)
        try:
            with contextlib.closing(sqlite3.connect(store, timeout=0)) as conn:  # no busy wait: fail at once
                conn.execute("begin immediate")
                conn.execute("rollback")
        except sqlite3.OperationalError:
            met_lock.set()
            raise
        return "opened"

    with _exclusive(store) as holder:
        # the holder lets go only once an attempt has met its lock, whenever that is
        thread = threading.Thread(target=lambda: met_lock.wait(timeout=120) and holder.execute("rollback"))
        thread.start()
        try:
            assert retry_locked(store, attempt) == "opened"
        finally:
            met_lock.set()
            thread.join(timeout=120)
    assert len(calls) >= 2  # the first attempt met the lock: it was retried, not reported


def test_retry_locked_gives_up_after_the_bound_naming_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "a.db"
    sqlite3.connect(store).close()
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "0.3")

    def attempt(seconds_left: float) -> None:
        with contextlib.closing(sqlite3.connect(store, timeout=min(seconds_left, 0.1))) as conn:
            conn.execute("begin immediate")

    with _exclusive(store), pytest.raises(StoreLocked, match=f"^{store}: another process holds a lock"):
        retry_locked(store, attempt)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_lock_timeout_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, value)
    with pytest.raises(UserError, match=f"{LOCK_TIMEOUT_ENV}: expected a number of seconds above 0, but got"):
        lock_timeout()


def test_a_new_store_is_built_once_and_appears_in_wal_mode(tmp_path: Path) -> None:
    """The file appears already in WAL mode: no process converts the shared file under the others' feet."""
    from harness._sqlite import create_once

    built: list[Path] = []

    def build(path: Path) -> None:
        built.append(path)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("create table t (x)")
            conn.commit()

    store = tmp_path / "new" / "s.db"
    create_once(store, build)
    create_once(store, build)
    assert len(built) == 1
    with contextlib.closing(sqlite3.connect(store)) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert sorted(p.name for p in store.parent.iterdir()) == ["s.db"]


def test_a_bad_lock_timeout_stops_a_command_before_it_makes_a_store(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "soon")
    rc, out = run_cli("runs", "clean")
    assert rc == 2, out
    assert out.strip() == f"error: ${LOCK_TIMEOUT_ENV}: expected a number of seconds above 0, but got 'soon'"
    assert not (workdir / "mlflow.db").exists()


def test_the_mlflow_store_and_optuna_sqlite_storage_commit_without_an_fsync_and_no_other_file(tmp_path: Path) -> None:
    """WAL + synchronous=NORMAL (1) on the files harness opens, through the libraries' own engines;
    any other SQLite file keeps SQLite's default, FULL (2)."""
    import optuna
    import sqlalchemy

    from harness.studies import open_storage
    from harness.tracking import Tracker

    def synchronous(path: Path) -> int:
        engine = sqlalchemy.create_engine(f"sqlite:///{path}")
        try:
            with engine.connect() as conn:
                return int(conn.execute(sqlalchemy.text("pragma synchronous")).scalar_one())
        finally:
            engine.dispose()

    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db")
    exp = tracker.experiment_id("fsync")
    with tracker.run(exp, "r") as run:
        run.log_params({"a": 1})
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    optuna.create_study(storage=storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    assert synchronous(tmp_path / "mlflow.db") == 1
    assert synchronous(tmp_path / "optuna.db") == 1
    assert synchronous(other) == 2
    assert tracker.client.get_run(run.run_id).data.params == {"a": "1"}  # written and read back through MLflow
