"""The MLflow UI on a harness store, rendered by a real headless browser (Debian's chromium)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from helpers import chromium, free_port, harness_server, wait_for_http
from mlflow.tracking import MlflowClient

from harness.cli import main

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
]


def _render(browser: str, url: str, profile: Path) -> str:
    """The DOM after the page's JavaScript ran."""
    out = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout


@pytest.mark.slow
def test_mlflow_ui_shows_parent_and_child_runs(workdir: Path, tiny_data_dir: Path) -> None:
    browser = chromium()
    assert (
        main(["ladder", "mnist", "--scale", "smoke", "--rungs", "1,8", "--data-dir", str(tiny_data_dir), "--no-report"])
        == 0
    )
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ladder/mnist").experiment_id
    child = next(r for r in client.search_runs([exp]) if r.data.tags.get("harness.rung") == "cnn-batchnorm")
    port = free_port()
    with harness_server(workdir, "ui", "--port", str(port), log_name="ui.log") as ui:
        wait_for_http(f"http://127.0.0.1:{port}/health", ui)
        assert f"http://127.0.0.1:{port} (Ctrl-C stops it)" in (workdir / "ui.log").read_text()
        assert "--workers 1" in (workdir / "ui.log").read_text()  # one worker by default
        base = f"http://127.0.0.1:{port}/#/experiments/{exp}/runs"
        runs_page = _render(browser, base, workdir / "profile")
        assert "mnist-smoke" in runs_page  # the parent run, its rungs folded under it
        run_page = _render(browser, f"{base}/{child.info.run_id}", workdir / "profile")
        assert "08-cnn-batchnorm-s0" in run_page and "Parent run" in run_page
        assert "final_test_accuracy" in run_page
        # a second UI on the same port is an error now, not a log line and exit 0
        assert main(["ui", "--port", str(port)]) == 2


def test_ui_on_a_port_in_use_is_an_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port}" in err and "choose another --port" in err
    assert main(["ui", "--port", "70000"]) == 2
    assert "--port must be 1..65535, but got 70000" in capsys.readouterr().err


def test_ui_without_a_store_says_where_it_looked_and_creates_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ui", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert f"no tracking store at {workdir / 'mlflow.db'}" in err and "harness ladder mnist --scale smoke" in err
    assert not (workdir / "mlflow.db").exists()  # MLflow's UI would have made an empty one
