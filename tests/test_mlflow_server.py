"""The same code against a real ``mlflow server`` (HTTP tracking, proxied artifacts)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port, wait_for_http
from mlflow.tracking import MlflowClient

from harness.cli import main


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_ladder_logs_to_an_mlflow_server(workdir: Path, tiny_data_dir: Path, mlflow_server: str) -> None:
    argv = [*"ladder mnist --scale smoke --rungs 1,6 --data-dir".split(), str(tiny_data_dir)]
    argv += ["--tracking-uri", mlflow_server]
    assert main(argv) == 0
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("ladder/mnist").experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    child = next(r for r in runs if r.data.tags.get("harness.rung") == "cnn")
    assert {"learning_curve.png", "tensorboard"} <= {a.path for a in client.list_artifacts(child.info.run_id)}
    assert not (workdir / "mlflow.db").exists()
    assert main(["report", "ladder", "mnist", "--tracking-uri", mlflow_server]) == 0
