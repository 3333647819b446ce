"""``harness ui`` and ``harness tensorboard``: check the port, print the URL, become the server."""

from __future__ import annotations

import os
import shlex
import socket
import sys
from pathlib import Path
from typing import NoReturn

from harness._secrets import redact_uri
from harness.errors import UserError


def ui(tracking_uri: str | None, host: str, port: int, workers: int) -> NoReturn:
    """Replace this process by MLflow's UI on the tracking store: Ctrl-C stops it (exit 0)."""
    from harness.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_port_free(host, port, "another `harness ui` or mlflow server?")
    if not 1 <= workers <= 64:
        raise UserError(f"--workers must be 1..64, but got {workers}")
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        # MLflow's UI would create an empty store there and show nothing
        raise UserError(
            f"no tracking store at {uri.removeprefix('sqlite:///')} (the default is mlflow.db in the folder you run "
            "from): run `harness ladder mnist --scale smoke` or a study here first, or pass --tracking-uri"
        )
    cmd = [sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port)]
    cmd += ["--workers", str(workers)]
    # the store through the environment, not argv: `ps` would show a password to every user
    os.environ["MLFLOW_BACKEND_STORE_URI"] = uri
    print("$", f"MLFLOW_BACKEND_STORE_URI={shlex.quote(redact_uri(uri))}", shlex.join(cmd))
    shown = f"[{host}]" if ":" in host else host
    print(f"MLflow UI on {redact_uri(uri)}: http://{shown}:{port} (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, cmd)


def tensorboard(logdir: str, host: str, port: int) -> NoReturn:
    """Replace this process by TensorBoard, as ``ui`` does with MLflow's: Ctrl-C stops it (exit 0)."""
    folder = Path(logdir)
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise UserError(
            f"--logdir {logdir} {state}; `harness ladder` (--tensorboard-dir, default tensorboard) and "
            "`harness study` write TensorBoard event files under tensorboard/ in the folder they run from: "
            "run one there first, or pass --logdir"
        )
    check_port_free(host, port, "another TensorBoard?")
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder), "--host", host, "--port", str(port)]
    print("$", shlex.join(cmd))
    shown = f"[{host}]" if ":" in host else host
    print(f"TensorBoard on {folder}: http://{shown}:{port} (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, cmd)


def check_port_free(host: str, port: int, who: str) -> None:
    """A port in use is exit 2 here; the server itself would log it and exit 0. ``who`` guesses the holder."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be 1..65535, but got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc} ({who}); choose another --port"
            ) from None
