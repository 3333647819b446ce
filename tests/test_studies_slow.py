"""Studies across processes: 3 PostgreSQL workers on one grid, a worker killed with -9 (PostgreSQL and the
default journal file), Ctrl-C and resume."""

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


@pytest.mark.slow
def test_three_postgres_workers_run_every_grid_point_exactly_once(
    tmp_path: Path, tiny_data_dir: Path, pg_url: str
) -> None:
    space = _space(
        tmp_path,
        "pg",
        """\
        lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.003, 0.01, 0.03]}
        batch_size: {type: categorical, choices: [25, 50]}
        """,
        iterations=40,
        budget="{max_trials: 6, max_parallel: 3}",
    )
    logs = {k: tmp_path / f"{k}.log" for k in ("study", "w1", "w2", "w3")}
    common = ["--data-dir", str(tiny_data_dir)]
    procs = {
        "study": _harness(
            ["study", str(space), "--storage", pg_url, "--parallel", "0", *common], tmp_path, logs["study"]
        )
    }
    _wait_study(pg_url, "pg-grid", procs["study"], logs["study"])
    for w in ("w1", "w2", "w3"):
        procs[w] = _harness(["worker", "pg-grid", "--storage", pg_url, "--label", w, *common], tmp_path, logs[w])
    codes = _finish(procs, logs)
    assert codes == dict.fromkeys(procs, 0), {k: v.read_text()[-3000:] for k, v in logs.items()}

    trials = _load(pg_url, "pg-grid").trials
    assert len(trials) == 6 and {t.state.name for t in trials} == {"COMPLETE"}, [t.state for t in trials]
    expected = sorted((("batch_size", b), ("lr0", lr)) for lr in (0.003, 0.01, 0.03) for b in (25, 50))
    assert _grid_points(trials) == expected  # every point once, none lost, none twice
    workers = {t.user_attrs["harness"]["worker"] for t in trials}
    assert len(workers) >= 2, workers  # the grid was shared out
    runs = _child_runs(tmp_path, "pg")
    children = [r for r in runs if r.data.tags.get("harness.kind") == "trial"]
    assert len(children) == 6 and {r.info.status for r in children} == {"FINISHED"}
    parent = next(r for r in runs if r.data.tags.get("harness.kind") == "study")
    assert parent.info.status == "FINISHED" and parent.data.tags["optuna.storage_kind"] == "postgresql"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_killed_worker_trial_fails_is_retried_once_and_its_run_is_failed(
    tmp_path: Path, tiny_data_dir: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    pg_url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"journal:{tmp_path}/optuna.journal"
    space = _space(
        tmp_path,
        "kill",
        "lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.003, 0.01, 0.03]}\n",
        iterations=1200,  # trials long enough to be caught mid-way even on a busy machine
        budget="{max_trials: 3}",
    )
    logs = {k: tmp_path / f"{k}.log" for k in ("study", "a", "b")}
    common = ["--data-dir", str(tiny_data_dir)]
    study_args = ["study", str(space), "--storage", pg_url, "--parallel", "0", "--heartbeat-interval", "1"]
    procs = {"study": _harness([*study_args, "--grace-period", "8", *common], tmp_path, logs["study"])}
    _wait_study(pg_url, "kill-grid", procs["study"], logs["study"])
    procs["a"] = _harness(["worker", "kill-grid", "--storage", pg_url, "--label", "a", *common], tmp_path, logs["a"])

    victim = procs["a"].pid
    deadline = time.monotonic() + 120
    killed = None
    from harness.studies._storage import normalise_url, open_storage

    # one storage for every poll: opening an RDB storage each time takes seconds on a loaded machine, long
    # enough to miss every trial of worker a
    watched = open_storage(normalise_url(pg_url))
    while time.monotonic() < deadline and killed is None:
        assert procs["a"].poll() is None, logs["a"].read_text()
        with contextlib.suppress(Exception):
            for t in optuna.load_study(study_name="kill-grid", storage=watched).trials:
                attrs = t.user_attrs.get("harness", {})
                if (
                    t.state.name == "RUNNING"
                    and attrs.get("worker", "").endswith(f":{victim} (a)")
                    and t.intermediate_values
                ):
                    killed = t.number  # mid-trial: it has reported at least one evaluation
        time.sleep(0.2)
    assert killed is not None, logs["a"].read_text()
    os.kill(victim, signal.SIGKILL)
    procs["a"].wait(timeout=30)
    procs["b"] = _harness(["worker", "kill-grid", "--storage", pg_url, "--label", "b", *common], tmp_path, logs["b"])
    codes = _finish({k: v for k, v in procs.items() if k != "a"}, logs)
    assert codes == {"study": 0, "b": 0}, {k: v.read_text()[-3000:] for k, v in logs.items()}

    trials = _load(pg_url, "kill-grid").trials
    states = {t.number: t.state.name for t in trials}
    assert states[killed] == "FAIL", states
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE", states
    assert retries[0].params == next(t.params for t in trials if t.number == killed)
    assert len(trials) == 4 and sum(s == "COMPLETE" for s in states.values()) == 3
    assert [p[0][1] for p in _grid_points(trials)] == [0.003, 0.01, 0.03]  # each grid point completed once

    runs = {r.data.tags.get("optuna.trial_number"): r for r in _child_runs(tmp_path, "kill")}
    assert runs[str(killed)].info.status == "FAILED", runs[str(killed)].data.tags
    assert "no heartbeat" in runs[str(killed)].data.tags.get("error", "")
    assert "RUNNING" not in {r.info.status for r in runs.values()}
    assert runs[str(retries[0].number)].data.tags["harness.retry_of"] == str(killed)


def _finished_trials(journal: Path, name: str) -> int:
    try:
        return sum(t.state.name == "COMPLETE" for t in _load(f"journal:{journal}", name).trials)
    except KeyError:  # not created yet
        return 0


@pytest.mark.slow
def test_ctrl_c_stops_parallel_study_cleanly_and_resume_completes_the_budget(
    tmp_path: Path, tiny_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = _space(
        tmp_path,
        "intr",
        """\
        lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.003, 0.01]}
        batch_size: {type: categorical, choices: [25, 50]}
        """,
        iterations=300,
        budget="{max_trials: 4}",
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
    expected = sorted((("batch_size", b), ("lr0", lr)) for lr in (0.003, 0.01) for b in (25, 50))
    assert _grid_points(trials) == expected  # nothing lost: the interrupted trials ran again
    runs = _child_runs(tmp_path, "intr")
    assert "RUNNING" not in {r.info.status for r in runs}
    parent = next(r for r in runs if r.data.tags.get("harness.kind") == "study")
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_complete"] == 4


@pytest.mark.slow
def test_two_study_commands_started_at_once_share_one_parent_run(tmp_path: Path, tiny_data_dir: Path) -> None:
    """In a fresh folder (no mlflow.db, no journal yet): one study, one MLflow parent run holding every
    trial, and a report that counts them all."""
    space = _space(
        tmp_path,
        "race",
        "lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.003, 0.01, 0.03, 0.1]}\n",
        iterations=20,
        budget="{max_trials: 4}",
    )
    args = ["study", str(space), "--data-dir", str(tiny_data_dir), "--no-report"]
    logs = {k: tmp_path / f"{k}.log" for k in ("a", "b")}
    procs = {k: _harness(args, tmp_path, log) for k, log in logs.items()}
    codes = _finish(procs, logs)
    assert codes == {"a": 0, "b": 0}, {k: v.read_text()[-3000:] for k, v in logs.items()}
    runs = _child_runs(tmp_path, "race")
    parents = [r for r in runs if r.data.tags.get("harness.kind") == "study"]
    assert len(parents) == 1, [(r.info.run_id, r.info.status) for r in parents]
    trials = [r for r in runs if r.data.tags.get("harness.kind") == "trial"]
    assert trials and all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in trials)
    study = _load(f"journal:{tmp_path / 'optuna.journal'}", "race-grid")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) >= 4
    assert {r.data.tags.get("optuna.trial_number") for r in trials} >= {str(t.number) for t in complete}
    assert "RUNNING" not in {r.info.status for r in runs}
