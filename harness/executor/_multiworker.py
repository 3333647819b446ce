"""``multiworker:N``: one run trained by N local worker processes (MultiWorkerMirroredStrategy); and the
same supervision for a run whose framework is not the supervisor's: one worker, no cluster, Keras started
on the run's framework (``KERAS_BACKEND``).

The process that opened the MLflow run supervises; it does not train. It picks N
free loopback ports, writes the run's job (config, data directory, tracking URI,
run id) to a file, and starts N ``python -m harness.executor._worker`` processes,
each with a ``TF_CONFIG`` naming the cluster and its index. Worker 0 is the chief:
it logs metrics, TensorBoard events, final metrics and the model into the run;
the others train and log nothing. Each worker touches ``ready-<i>`` after its
first training execution (the cluster is connected then).

Faults end the run FAILED, with a message, within a bounded time, and leave no
worker behind: a worker that exits non-zero (the others are stopped at once),
workers not all ready within ``$HARNESS_WORKER_TIMEOUT_S`` (default 300 s, which
covers start-up, data loading and the first step), or workers still running
``$HARNESS_WORKER_TIMEOUT_S`` after the first one finished. Ctrl-C stops them too. A supervisor
that dies unseen (``kill -9``) takes its workers with it (``harness.lifeline``): the chief ends
the run KILLED, and the workers remove their temporary folder, before they exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import _framework, interrupts
from harness.errors import ConfigError, RunFailed
from harness.procs import Supervisor
from harness.tracking import RunHandle

TIMEOUT_ENV = "HARNESS_WORKER_TIMEOUT_S"
_DEFAULT_TIMEOUT_S = 300.0
_POLL_S = 0.2


@dataclasses.dataclass(frozen=True)
class WorkerJob:
    """What every worker of one run needs (written as JSON; no secrets: the URI is passed by env)."""

    config: dict[str, Any]
    run_id: str
    experiment_id: str
    name: str
    group: str
    data_dir: str | None
    prices: str | None
    tensorboard_dir: str
    ready_dir: str

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> WorkerJob:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw:
        return _DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds > 0, but got {raw!r}")
    return value


def free_ports(n: int) -> list[int]:
    """N distinct free TCP ports on loopback (held open together so that they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# TensorFlow's and CUDA's start-up chatter, never a worker's error: absl lines ("E0000 00:00:17.. 123
# cuda_platform.cc:52] failed call to cuInit"), TensorFlow's older C++ log lines, their banners
_NOISE = re.compile(
    r"[IWEF]\d{4} \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:"
)


def _tail(path: Path, lines: int = 1) -> str:
    """The last meaningful lines of a worker's log (its error), for the run's message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    keep = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith((" ", "\t"))]
    return " | ".join([ln for ln in keep if not _NOISE.match(ln)][-lines:])


def _describe(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _failure(procs: list[subprocess.Popen[bytes]], codes: list[int | None], tmp: Path) -> str | None:
    """Why the run failed, from the first worker that ended badly; None while none has.

    A worker killed by a signal is the cause (its peers then fail for want of it) and its log's
    last line is not its reason; a worker that exited non-zero says why in its log's last line."""
    bad = [i for i, code in enumerate(codes) if code not in (None, 0)]
    if not bad:
        return None
    i = min(bad, key=lambda j: (int(codes[j] or 0) > 0, j))  # killed first, then the lowest index
    code = int(codes[i] or 0)
    who = f"the chief worker (pid {procs[i].pid})" if i == 0 else f"worker {i} of {len(procs)} (pid {procs[i].pid})"
    why = "" if code < 0 else _tail(tmp / f"worker-{i}.log")
    return f"{who} {_describe(code)}" + (f": {why}" if why else "")


def run_workers(
    run: RunHandle,
    job: WorkerJob,
    n: int,
    tracking_uri: str,
    framework: str,
    cluster: bool = True,
    env: dict[str, str] | None = None,
) -> None:
    """Start ``n`` workers for ``job`` on Keras' ``framework``, supervise them to the end; raise RunFailed on
    any fault. Without ``cluster``, one worker trains alone (no ``TF_CONFIG``): a run whose framework is
    not the supervisor's, or a JAX run that needs another CPU device count. ``env``: more for each worker."""
    limit = timeout_s()
    if not cluster and n != 1:
        raise ValueError(f"a run without a cluster has one worker, but got {n=}")
    ports = free_ports(n) if cluster else []
    workers_of = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    with tempfile.TemporaryDirectory(prefix="harness-workers-") as tmp:
        tmp_path = Path(tmp)
        job = dataclasses.replace(job, ready_dir=str(tmp_path))
        job_path = tmp_path / "job.json"
        job.write(job_path)
        workers = Supervisor()
        try:
            for i in range(n):
                own = {**os.environ, **(env or {}), _framework.ENV: framework, "MLFLOW_TRACKING_URI": tracking_uri}
                own.pop("TF_CONFIG", None)
                if cluster:
                    own["TF_CONFIG"] = json.dumps({"cluster": workers_of, "task": {"type": "worker", "index": i}})
                # our Ctrl-C reaches us; we stop them (or our death does)
                argv = [sys.executable, "-m", "harness.executor._worker", str(job_path)]
                workers.start(f"worker-{i}", argv, own, log=tmp_path / f"worker-{i}.log")
            procs = [child.proc for child in workers.children]
            if cluster:
                run.set_tags(
                    {
                        "multiworker.workers": str(n),
                        "multiworker.cluster": ",".join(workers_of["worker"]),
                        "multiworker.roles": ", ".join(
                            f"worker:{i} pid {p.pid}" + (" (chief: logs the run)" if i == 0 else "")
                            for i, p in enumerate(procs)
                        ),
                    }
                )
            _supervise(procs, tmp_path, limit)
        finally:
            workers.close()  # SIGTERM, 5 s, then SIGKILL for any still running; logs closed
            for child in workers.children:
                with contextlib.suppress(OSError):  # a worker that never started has no log
                    run.log_artifact(tmp_path / f"{child.label}.log", "workers")


def _supervise(procs: list[subprocess.Popen[bytes]], tmp: Path, limit: float) -> None:
    started = time.monotonic()
    first_done: float | None = None
    while True:
        codes = [p.poll() for p in procs]
        failure = _failure(procs, codes, tmp)
        if failure is not None:
            raise RunFailed(failure)
        if all(code == 0 for code in codes):
            return
        now = time.monotonic()
        if first_done is None and any(code == 0 for code in codes):
            first_done = now
        ready = [i for i in range(len(procs)) if (tmp / f"ready-{i}").exists()]
        if len(ready) < len(procs) and now - started > limit:
            missing = [i for i in range(len(procs)) if i not in ready]
            raise RunFailed(
                f"workers {missing} of {len(procs)} did not connect and train within {limit:.0f} s "
                f"(set {TIMEOUT_ENV} to wait longer)"
            )
        if first_done is not None and now - first_done > limit:
            late = [i for i, code in enumerate(codes) if code is None]
            raise RunFailed(f"workers {late} still running {limit:.0f} s after another finished")
        interrupts.check()
        time.sleep(_POLL_S)
