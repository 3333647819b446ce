"""Studies across processes: a worker killed with -9 mid-trial (the default journal file; PostgreSQL's heartbeats
in this process), Ctrl-C and resume. Several workers at once on one grid: tests/test_secrets_paths.py (PostgreSQL,
`--parallel 2`) and tests/test_store_locks.py (two study commands at once on a new store, the journal file)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from harness.cli import main

PG_SERVER = os.environ.get("HARNESS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
FIXED = {
    "steps_per_execution": 10,
    "train_subset": 600,
    "test_subset": 200,
    "eval_batch_size": 200,
    "eval_every": 10,
}


def _space(folder: Path, name: str, params: str, iterations: int, budget: str) -> Path:
    path = folder / f"{name}.yaml"
    fixed = json.dumps({**FIXED, "iterations": iterations})
    text = textwrap.dedent(
        f"""\
        name: {name}
        experiment: {{ladder: mnist, rung: softmax, scale: smoke}}
        fixed: {fixed}
        objective: {{metric: accuracy}}
        budget: {budget}
        sampler: grid
        params:
        """
    ) + textwrap.indent(textwrap.dedent(params), "  ")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"harness_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg2.connect(f"{PG_SERVER}/postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_SERVER}: {exc}")
    conn.autocommit = True
    conn.cursor().execute(f'create database "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        conn.cursor().execute(f'drop database if exists "{name}" with (force)')
        conn.close()


def _harness(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_OFFLINE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "harness", *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env
        )


def _load(storage: str, name: str) -> optuna.Study:
    """The study as any process sees it, through harness's own storage factory (journal or RDB)."""
    from harness.studies._storage import normalise_url, open_storage

    return optuna.load_study(study_name=name, storage=open_storage(normalise_url(storage)))


def _wait_study(storage: str, name: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(Exception):
            if "harness" in _load(storage, name).user_attrs:
                return
        time.sleep(0.5)
    raise AssertionError(f"study {name} not created:\n{log.read_text()}")


def _finish(procs: dict[str, subprocess.Popen[bytes]], logs: dict[str, Path], timeout: float = 240) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    codes = {}
    for label, proc in procs.items():
        try:
            codes[label] = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
            raise AssertionError("\n".join(f"--- {k}\n{v.read_text()}" for k, v in logs.items())) from None
    return codes


def _child_runs(root: Path, space: str) -> list[Any]:
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name(f"study/{space}")
    return client.search_runs([exp.experiment_id]) if exp else []


def _grid_points(trials: list[optuna.trial.FrozenTrial]) -> list[tuple[Any, ...]]:
    return sorted(tuple(sorted(t.params.items())) for t in trials if t.state.name == "COMPLETE")


def _trials_of(storage: Any, name: str, label: str) -> list[optuna.trial.FrozenTrial]:
    """The trials that worker ``label`` took (the harness attribute names it as host:pid (label))."""
    with contextlib.suppress(Exception):  # not readable yet
        trials = optuna.load_study(study_name=name, storage=storage).trials
        return [t for t in trials if t.user_attrs.get("harness", {}).get("worker", "").endswith(f" ({label})")]
    return []


def _kill_mid_trial(url: str, name: str, proc: subprocess.Popen[bytes], label: str, log: Path) -> int:
    """SIGKILL worker ``proc`` (``label``) in the middle of a trial (RUNNING, an evaluation reported); its number.

    Once a trial of it runs, the worker is stopped (SIGSTOP) while the trial is read again, so that the kill lands
    mid-trial however short trials are; if the trial has not reported yet, the worker goes on (SIGCONT)."""
    from harness.studies._storage import normalise_url, open_storage

    # one storage for every poll: opening an RDB storage each time takes seconds on a loaded machine
    watched = open_storage(normalise_url(url))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        if any(t.state.name == "RUNNING" for t in _trials_of(watched, name, label)):
            os.kill(proc.pid, signal.SIGSTOP)
            mine = _trials_of(watched, name, label)
            mid = [t.number for t in mine if t.state.name == "RUNNING" and t.intermediate_values]
            if mid:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return mid[0]
            os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no trial of worker {label} seen mid-way:\n{log.read_text()}")


@pytest.mark.slow
def test_killed_worker_trial_fails_is_retried_once_and_its_run_is_failed(
    tmp_path: Path, tiny_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker a is killed with -9 mid-trial; once its heartbeat is late its trial is FAIL, and worker b (`harness
    worker` in this process) runs it again once and the other grid point once. On the default journal file, whose
    heartbeats are harness's own; PostgreSQL's (Optuna's RDB heartbeats): the test below."""
    url = f"journal:{tmp_path}/optuna.journal"
    params = "lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.003, 0.03]}\n"
    space = _space(tmp_path, "kill", params, iterations=20, budget="{max_trials: 2}")
    logs = {k: tmp_path / f"{k}.log" for k in ("study", "a")}
    common = ["--data-dir", str(tiny_data_dir)]
    study_args = ["study", str(space), "--storage", url, "--parallel", "0", "--no-report", "--heartbeat-interval", "1"]
    procs = {"study": _harness([*study_args, "--grace-period", "8", *common], tmp_path, logs["study"])}
    _wait_study(url, "kill-grid", procs["study"], logs["study"])
    victim = _harness(["worker", "kill-grid", "--storage", url, "--label", "a", *common], tmp_path, logs["a"])
    try:
        killed = _kill_mid_trial(url, "kill-grid", victim, "a", logs["a"])
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        monkeypatch.setenv("HARNESS_OFFLINE", "1")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = main(["worker", "kill-grid", "--storage", url, "--label", "b", *common])
        assert rc == 0, out.getvalue()[-3000:]
    except BaseException:
        for proc in (victim, *procs.values()):
            if proc.poll() is None:
                proc.kill()
        raise
    codes = _finish(procs, logs)
    assert codes == {"study": 0}, {k: v.read_text()[-3000:] for k, v in logs.items()}

    trials = _load(url, "kill-grid").trials
    states = {t.number: t.state.name for t in trials}
    assert states[killed] == "FAIL", states
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE", states
    assert retries[0].params == next(t.params for t in trials if t.number == killed)
    assert len(trials) == 3 and sum(s == "COMPLETE" for s in states.values()) == 2
    assert [p[0][1] for p in _grid_points(trials)] == [0.003, 0.03]  # each grid point completed once
    assert {t.user_attrs["harness"]["worker"].rsplit(" ", 1)[1] for t in trials} == {"(a)", "(b)"}

    all_runs = _child_runs(tmp_path, "kill")
    runs = {r.data.tags.get("optuna.trial_number"): r for r in all_runs if r.data.tags.get("harness.kind") == "trial"}
    assert len(runs) == 3, sorted(runs)
    assert runs[str(killed)].info.status == "FAILED", runs[str(killed)].data.tags
    assert "no heartbeat" in runs[str(killed)].data.tags.get("error", "")
    assert {r.info.status for n, r in runs.items() if n != str(killed)} == {"FINISHED"}
    assert runs[str(retries[0].number)].data.tags["harness.retry_of"] == str(killed)
    parent = next(r for r in all_runs if r.data.tags.get("harness.kind") == "study")
    assert parent.info.status == "FINISHED" and parent.data.tags["optuna.storage_kind"] == "journal"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_postgresql_trial_whose_heartbeats_stop_is_failed_and_retried_once(tmp_path: Path, pg_url: str) -> None:
    """The storage's side of the test above on PostgreSQL: the RDB storage as harness opens it takes heartbeats,
    and a trial whose heartbeats stop (its worker killed) is FAIL once the grace period is past, its MLflow run
    FAILED "no heartbeat", and it is queued again once with the same parameters."""
    from harness.studies._context import StaleTrials
    from harness.studies._storage import normalise_url, open_storage
    from harness.studies._trials import fail_stale
    from harness.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    handler = StaleTrials()
    handler.tracker, handler.progress = tracker, lambda line: None
    storage = open_storage(normalise_url(pg_url), heartbeat_interval=1, grace_period=2, on_stale=handler)
    study = optuna.create_study(study_name="hb", storage=storage)
    trial = study.ask({"lr0": optuna.distributions.FloatDistribution(1e-4, 0.1, log=True)})
    run = tracker.client.create_run(tracker.experiment_id("study/hb"), run_name="trial-000")
    trial.set_user_attr("harness", {"trial": trial.number, "mlflow_run_id": run.info.run_id})
    storage.record_heartbeat(trial._trial_id)  # its last one
    deadline = time.monotonic() + 60
    while study.trials[0].state.name == "RUNNING":  # polled: stale once no heartbeat came for 2 s
        assert time.monotonic() < deadline, study.trials
        time.sleep(0.5)
        fail_stale(study)  # as every worker does before it takes a trial
    trials = study.trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[1].system_attrs["failed_trial"] == 0 and trials[1].params == trials[0].params
    ended = tracker.client.get_run(run.info.run_id)
    assert ended.info.status == "FAILED" and "no heartbeat" in ended.data.tags["error"]
    storage.engine.dispose()


def _finished_trials(journal: Path, name: str) -> int:
    try:
        return sum(t.state.name == "COMPLETE" for t in _load(f"journal:{journal}", name).trials)
    except KeyError:  # not created yet
        return 0


def _event_folders(root: Path) -> list[str]:
    """Folders holding TensorBoard event files under ``root``, relative to it, as TensorBoard sorts them."""
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_ctrl_c_stops_parallel_study_cleanly_and_resume_completes_the_budget(
    tmp_path: Path, tiny_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also the TensorBoard layout of worker processes (each with its own executor) and of a resume in this
    process: one folder for the study, named after its parent run, one trial-NNN folder per trial."""
    space = _space(
        tmp_path,
        "intr",
        "lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.003, 0.01, 0.03]}\n",
        iterations=100,
        budget="{max_trials: 3}",
    )
    args = ["study", str(space), "--parallel", "2", "--data-dir", str(tiny_data_dir), "--no-report"]
    log = tmp_path / "study.log"
    proc = _harness(args, tmp_path, log)
    deadline = time.monotonic() + 180
    journal = tmp_path / "optuna.journal"
    while time.monotonic() < deadline and proc.poll() is None and _finished_trials(journal, "intr-grid") < 1:
        time.sleep(0.3)
    assert proc.poll() is None, log.read_text()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130, log.read_text()
    assert "interrupted" in log.read_text()
    runs = _child_runs(tmp_path, "intr")
    assert "RUNNING" not in {r.info.status for r in runs}, [(r.info.run_name, r.info.status) for r in runs]
    parent = next(r for r in runs if r.data.tags.get("harness.kind") == "study")
    assert parent.info.status == "KILLED"
    assert any(r.info.status == "KILLED" and r.data.tags.get("harness.kind") == "trial" for r in runs)
    before = _load(f"journal:{tmp_path / 'optuna.journal'}", "intr-grid").trials
    assert any(t.state.name == "COMPLETE" for t in before) and not any(t.state.name == "RUNNING" for t in before)

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*args[:2], "--parallel", "1", *args[4:]]) == 0, out.getvalue()
    assert "(resumed)" in out.getvalue()
    trials = _load(f"journal:{tmp_path / 'optuna.journal'}", "intr-grid").trials
    assert _grid_points(trials) == [(("lr0", lr),) for lr in (0.003, 0.01, 0.03)]  # nothing lost: all ran again
    runs = _child_runs(tmp_path, "intr")
    assert "RUNNING" not in {r.info.status for r in runs}
    parent = next(r for r in runs if r.data.tags.get("harness.kind") == "study")
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_complete"] == 3

    # TensorBoard: <invocation>/trial-NNN/{train,test} under studies/<study>, whichever process ran the trial
    study_dir = tmp_path / "tensorboard" / "studies" / "intr-grid"
    folders = _event_folders(study_dir)
    assert all("%" not in f for f in _event_folders(tmp_path / "tensorboard")), folders
    (invocation,) = {Path(f).parts[0] for f in folders}
    assert invocation.endswith("-" + parent.info.run_id[:8])  # the parent run's: a resume adds to it
    assert {Path(f).name for f in folders} == {"train", "test"}
    shown = {Path(f).parent.name for f in folders}
    # every complete trial has its folder (an interrupted one has one if it got as far as an evaluation)
    assert {f"trial-{t.number:03d}" for t in trials if t.state.name == "COMPLETE"} <= shown
    assert shown <= {f"trial-{t.number:03d}" for t in trials}, (shown, [(t.number, t.state.name) for t in trials])
