"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from harness.procs import Supervisor

# A relative HARNESS_DATA_DIR means relative to where pytest was started (the README's
# `HARNESS_DATA_DIR=../shared/data pytest`), not to the temporary folders tests chdir into.
EXPLICIT_DATA = bool(os.environ.get("HARNESS_DATA_DIR"))
REAL_DATA = Path(
    os.environ.get("HARNESS_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
).resolve()
if EXPLICIT_DATA:
    os.environ["HARNESS_DATA_DIR"] = str(REAL_DATA)  # subprocesses started from another folder see the same data


def missing_real_data(what: str) -> None:
    """Fail when HARNESS_DATA_DIR was given but lacks ``what`` (a wrong path must not pass as a skip)."""
    message = f"{what} not found under {REAL_DATA}"
    if EXPLICIT_DATA:
        pytest.fail(f"HARNESS_DATA_DIR is set but {message}")
    pytest.skip(f"{message} (set HARNESS_DATA_DIR)")


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


def chromium() -> str:
    """Debian's chromium (headless browser tests): a failure on CI, which installs it; a skip elsewhere."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def harness_server(workdir: Path, *args: str, log_name: str) -> Iterator[subprocess.Popen]:
    """``python -m harness ARGS`` (ui, tensorboard) as harness starts its own children (harness.procs), output in
    ``workdir/log_name``; stopped with SIGTERM (SIGKILL after 30 s) on the way out unless the test already ended it."""
    with Supervisor(signal.SIGTERM, grace_s=30) as servers:
        yield servers.start(
            "server", [sys.executable, "-m", "harness", *args], log=workdir / log_name, cwd=workdir
        ).proc


@contextlib.contextmanager
def model_server(model_uri: str, tracking_uri: str, cwd: Path, timeout: float = 300) -> Iterator[int]:
    """``mlflow models serve`` of ``model_uri`` on a free loopback port (this environment: --env-manager local),
    answering /ping: its port; stopped with SIGTERM (SIGKILL after 60 s) on the way out."""
    port = free_port()
    serve = ["models", "serve", "-m", model_uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the environment's own python for the server
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    with Supervisor(signal.SIGTERM, grace_s=60) as servers:
        server = servers.start("model server", [sys.executable, "-m", "mlflow", *serve], env, cwd=cwd)
        wait_for_http(f"http://127.0.0.1:{port}/ping", server.proc, timeout=timeout)
        yield port


def run_cli(*args: str) -> tuple[int, str]:
    """``harness ARGS`` in this process: its exit code and everything it printed (stdout, then stderr)."""
    import io

    from harness import _framework
    from harness.cli import main

    # the CLI starts Keras on its runs' one framework if Keras is not imported yet: in this (shared) process,
    # pin the default first, or a `--set framework=jax` test would leave every later test on JAX
    _framework.start()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue() + err.getvalue()
