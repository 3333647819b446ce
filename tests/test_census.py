"""Census income: the Adult reader, the tabular task and models, the ladder, multi-worker runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import REAL_DATA, missing_real_data, run_cli, store_runs
from mlflow.entities import Run

from harness.config import config_from
from harness.data import TabularDataset, load_dataset
from harness.data._adult import COLUMNS, read_adult_file
from harness.errors import ConfigError, DataError
from harness.models import create_model
from harness.tasks import get_task

CLI = [sys.executable, "-m", "harness"]
ROW = (
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, "
    "2174, 0, 40, United-States, <=50K"
)
ROW_RICH = (
    "52, Self-emp-inc, 287927, HS-grad, 9, Married-civ-spouse, Exec-managerial, Wife, White, Female, "
    "15024, 0, 40, ?, >50K"
)


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _adult_dir(root: Path, train: list[str], test: list[str]) -> Path:
    folder = root / "adult"
    folder.mkdir(parents=True)
    _write(folder / "adult.data", *train)
    _write(folder / "adult.test", "|1x3 Cross validator", *test)
    return root


# --- the reader -------------------------------------------------------------------------


def test_reader_parses_both_files_as_uci_ships_them(tmp_path: Path) -> None:
    root = _adult_dir(
        tmp_path, [ROW, ROW_RICH, ""], [ROW.replace("<=50K", "<=50K."), ROW_RICH.replace(">50K", ">50K.")]
    )
    data = load_dataset(config_from({"task": "tabular", "dataset": "adult", "model": "dnn"}).data, root)
    assert isinstance(data, TabularDataset)
    assert len(data.x_train) == 2 and len(data.x_test) == 2
    assert data.y_train.tolist() == [0, 1] and data.y_test.tolist() == [0, 1]  # the test file's trailing dots
    assert data.x_train["age"].tolist() == [39.0, 52.0]
    assert data.x_train["native_country"].tolist() == ["United-States", "?"]  # "?" kept as a category
    assert [c.name for c in data.columns] == [c.name for c in COLUMNS]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (ROW.rsplit(",", 1)[0], "expected 15 comma-separated fields"),  # a missing column
        (ROW + ", extra", "expected 15 comma-separated fields"),
        (ROW.replace("<=50K", "maybe"), "income must be one of <=50K, >50K, but got 'maybe'"),
        (ROW.replace("39,", "thirty-nine,", 1), "age must be a number, but got 'thirty-nine'"),
    ],
)
def test_reader_names_file_and_line_of_bad_rows(tmp_path: Path, line: str, expected: str) -> None:
    path = _write(tmp_path / "adult.data", ROW, "", line)
    with pytest.raises(DataError, match=f"adult.data:3: .*{expected[:30]}") as info:
        read_adult_file(path)
    assert expected in str(info.value)


def test_reader_missing_and_empty_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)  # CI sets it
    with pytest.raises(DataError, match=r"adult\.data: file not found"):
        read_adult_file(tmp_path / "adult.data")
    with pytest.raises(DataError, match=r"adult\.test: no rows"):
        read_adult_file(_write(tmp_path / "adult.test", "|1x3 Cross validator"))
    with pytest.raises(DataError, match="needs a data directory"):
        load_dataset("adult", None)


@pytest.mark.realdata
def test_real_adult_has_uci_counts_and_the_majority_baseline() -> None:
    if not (REAL_DATA / "adult" / "adult.data").exists():
        missing_real_data("UCI Adult (adult/adult.data)")
    data = load_dataset("adult", REAL_DATA)
    assert (len(data.x_train), len(data.x_test)) == (32561, 16281)
    assert abs(1 - data.y_test.mean() - 0.7638) < 0.001  # always answering <=50K: about 76%


# --- task and models ----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["linear", "dnn", "wide_deep"])
def test_models_take_vocabulary_indices_and_unseen_categories_map_out_of_vocabulary(model: str) -> None:

    extra = {} if model == "linear" else {"batchnorm": True, "dropout": 0.2}
    cfg = config_from({"task": "tabular", "dataset": "adult_synthetic", "model": model, **extra})
    data = load_dataset(cfg.data)
    schema = get_task("tabular").outputs(data, cfg)
    occupation = next(c for c in schema.columns if c.name == "occupation")
    assert occupation.vocabulary[0] in set(data.x_train["occupation"].tolist())
    age = next(c for c in schema.columns if c.name == "age")
    assert age.mean == pytest.approx(float(data.x_train["age"].astype(np.float64).mean()))  # training rows only
    net = create_model(cfg.model, data.input_shape, schema)
    rows = data.x_test[:4].copy()
    rows["occupation"][0] = "Astronaut"  # never seen in training: the out-of-vocabulary index, not an error
    rows["occupation"][1] = f"  {occupation.vocabulary[2]} "  # spaced as UCI's files space it: the same category
    feed = schema.encode(data.features(rows))
    assert feed["occupation"].ravel().tolist()[:2] == [0, 3] and feed["occupation"].dtype == np.int32
    assert feed["age"].dtype == np.float32
    out = np.asarray(net(feed))
    assert out.shape == (4, 1) and np.all((out >= 0) & (out <= 1))


def test_bad_backends_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match=r"backend must be one of .* but got backend='multiworker:0'"):
        config_from({"backend": "multiworker:0"})
    with pytest.raises(ConfigError, match="backend='gpus'"):
        config_from({"backend": "gpus"})
    from harness.hardware import make_strategy

    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    os.environ.pop("TF_CONFIG", None)
    try:
        with pytest.raises(ConfigError, match="needs a cluster: set TF_CONFIG"):
            make_strategy("multiworker")
        os.environ["TF_CONFIG"] = "{not json"
        with pytest.raises(ConfigError, match="TF_CONFIG must be JSON"):
            make_strategy("multiworker")
    finally:
        os.environ.clear()
        os.environ.update(env)


# --- end to end: the ladder, two workers, faults ---------------------------------------------------
# The supervising ladder runs in this process (run_cli, no ~7 s of imports per command); the workers it
# starts are real processes. Only the TF_CONFIG cluster, where each command is a machine, runs as processes.
# (The served model on adult.test's raw rows is in test_served_models.py, beside the other served checks.)

LADDER = ("ladder", "census", "--scale", "smoke")
# the dnn rung on two workers, long enough to be running when a test hurts a worker
TWO_WORKERS_LONG = ("--rungs", "dnn", "--set", "backend=multiworker:2", "--set", "iterations=60000")
TWO_WORKERS_LONG += ("--set", "eval_every=600", "--no-report")


def _rungs(root: Path) -> list[Run]:
    return [r for r in store_runs(root, "ladder/census") if r.data.tags.get("harness.kind") == "rung"]


def _worker_pids(parent: int) -> list[int]:
    """The live ``harness.executor._worker`` processes started by ``parent`` (tests running beside this
    one may supervise workers of their own)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"harness.executor._worker" not in (proc / "cmdline").read_bytes():
                    continue
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])  # "pid (comm) state ppid"
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent:
                pids.append(int(proc.name))
    return pids


def _worker(index: int, timeout: float = 120) -> int:
    """The pid of this process's worker ``index`` (its TF_CONFIG's task index), once it has started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in _worker_pids(os.getpid()):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            for item in environ:
                if item.startswith(b"TF_CONFIG=") and json.loads(item[10:])["task"]["index"] == index:
                    return pid
        time.sleep(0.1)
    raise AssertionError(f"worker {index} never started")


def _two_workers_with_a_fault(fault: Callable[[int], None]) -> tuple[int, str, int, float]:
    """The long dnn rung on two workers, supervised in this process, while a thread finds worker 1 and
    calls ``fault(pid)``: the exit code, the output, worker 1's pid and when ``fault`` returned."""
    hit: dict[str, Any] = {}

    def inject() -> None:
        try:
            hit["pid"] = _worker(1)
            fault(hit["pid"])
            hit["at"] = time.monotonic()
        except BaseException as exc:  # re-raised below; the workers go so that the run ends now
            hit["error"] = exc
            for pid in _worker_pids(os.getpid()):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=inject, daemon=True)
    thread.start()
    rc, out = run_cli(*LADDER, *TWO_WORKERS_LONG)
    thread.join(60)
    if "error" in hit:
        raise hit["error"]
    assert "at" in hit, f"the run ended before worker 1 was hurt (exit {rc}): {out[-3000:]}"
    return rc, out, hit["pid"], hit["at"]


@pytest.mark.slow
def test_smoke_ladder_one_process_and_two_workers_agree(workdir: Path) -> None:
    """The README's comparison: the talk's DNN in one process and on two worker processes, one ladder.
    The other rungs train elsewhere: linear in the TF_CONFIG test below and in test_served_models.py,
    dropout (wide & deep + batch norm + dropout: every later change) in test_served_models.py."""
    rc, out = run_cli(*LADDER, "--rungs", "dnn", "--vary", "backend=cpu,multiworker:2")
    assert rc == 0, out[-3000:]
    assert "majority %" in out
    assert "wall time (s)" in (workdir / "results" / "census_ladder_smoke_rungs_dnn.md").read_text()  # every column
    runs = {r.data.tags["harness.variant"]: r for r in _rungs(workdir)}
    assert set(runs) == {"backend=cpu", "backend=multiworker:2"}
    local, dist = runs["backend=cpu"], runs["backend=multiworker:2"]
    assert dist.data.tags["backend"] == "multiworker"
    for run in (local, dist):
        assert run.info.status == "FINISHED"
        for key in ("final_test_accuracy", "final_test_auc", "final_test_precision", "final_test_recall"):
            assert 0.0 < run.data.metrics[key] <= 1.0
        assert run.data.metrics["majority_accuracy"] == pytest.approx(local.data.metrics["majority_accuracy"])
    assert local.data.tags["backend"] == "cpu"
    assert dist.data.tags["multiworker.workers"] == "2"
    assert "worker:0 pid" in dist.data.tags["multiworker.roles"] and "chief" in dist.data.tags["multiworker.roles"]
    assert len(dist.data.tags["multiworker.cluster"].split(",")) == 2
    # the same global batch and steps: the same model quality as one process
    assert abs(dist.data.metrics["final_test_accuracy"] - local.data.metrics["final_test_accuracy"]) < 0.02
    assert abs(dist.data.metrics["final_test_auc"] - local.data.metrics["final_test_auc"]) < 0.02
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    names = {a.path for a in client.list_artifacts(dist.info.run_id, "workers")}
    assert names == {"workers/worker-0.log", "workers/worker-1.log"}
    assert [m.step for m in client.get_metric_history(dist.info.run_id, "test_accuracy")] == [30, 60]
    assert not _worker_pids(os.getpid())


@pytest.mark.slow
def test_a_worker_that_dies_fails_the_run_and_leaves_no_worker(workdir: Path) -> None:
    def kill_once_trained(pid: int) -> None:
        job = Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[-2].decode())
        deadline = time.monotonic() + 180
        while not (job.parent / "ready-1").exists():  # its first training step: the cluster is connected
            assert time.monotonic() < deadline, "worker 1 never trained"
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)

    rc, out, pid, killed = _two_workers_with_a_fault(kill_once_trained)
    assert time.monotonic() - killed < 30  # bounded: the supervisor stops the chief at once
    assert rc == 1, out[-3000:]
    assert f"worker 1 of 2 (pid {pid}) was killed by SIGKILL" in out
    assert "Traceback" not in out
    [run] = _rungs(workdir)
    assert run.info.status == "FAILED"
    assert f"worker 1 of 2 (pid {pid}) was killed by SIGKILL" in run.data.tags["error"]
    assert not _worker_pids(os.getpid())


@pytest.mark.slow
def test_a_worker_that_cannot_connect_fails_the_run_in_bounded_time(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_WORKER_TIMEOUT_S", "5")  # read by the supervisor: this process
    rc, out, _, stopped = _two_workers_with_a_fault(lambda pid: os.kill(pid, signal.SIGSTOP))  # alive, never joins
    assert time.monotonic() - stopped < 60
    assert rc == 1, out[-3000:]
    assert "did not connect and train within 5 s" in out
    [run] = _rungs(workdir)
    assert run.info.status == "FAILED"
    assert not _worker_pids(os.getpid())


@pytest.mark.slow
def test_tf_config_cluster_of_two_commands_logs_one_run_from_the_chief(tmp_path: Path) -> None:
    """As on real machines: each runs the same command with its own TF_CONFIG; only the chief logs."""
    from harness.executor._multiworker import free_ports

    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        cwd = tmp_path / f"machine{i}"
        cwd.mkdir()
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(
            subprocess.Popen(
                [*CLI, *LADDER, "--rungs", "linear", "--set", "backend=multiworker", "--no-report"],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "TF_CONFIG": tf_config},
            )
        )
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    [run] = _rungs(tmp_path / "machine0")
    assert run.info.status == "FINISHED"
    assert run.data.tags["backend"] == "multiworker"
    assert run.data.tags["device"].startswith("worker worker:0 of 2")
    assert "not the chief" in outs[1][1]
    assert not (tmp_path / "machine1" / "mlflow.db").exists()
