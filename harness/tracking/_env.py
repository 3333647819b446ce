"""Run-environment tags: versions, git commit, host and device."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@functools.cache
def git_commit() -> str:
    """The commit of the harness source tree, with ``-dirty`` if it has local changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


CWD_TAG = "harness.cwd"  # the folder the command ran in: reports show its paths relative to it


def versions() -> dict[str, str]:
    return {
        "harness.version": _version("harness"),
        "tensorflow.version": _version("tensorflow"),
        "keras.version": _version("keras"),
        "optuna.version": _version("optuna"),
        "mlflow.version": next(
            (v for d in ("mlflow", "mlflow-skinny") if (v := _version(d)) != "not installed"), "not installed"
        ),
        "python.version": platform.python_version(),
        # the other Keras backends, where installed (run.framework)
        **{f"{d}.version": v for d in ("jax", "torch") if (v := _version(d)) != "not installed"},
    }


def environment_tags() -> dict[str, str]:
    """Tags every run carries; the MLflow UI shows the ``mlflow.source.*`` ones in its Source column."""
    return {
        **versions(),
        "mlflow.source.git.commit": git_commit(),
        "mlflow.source.name": "harness",  # the entry point: the command line is in harness.command
        "mlflow.source.type": "LOCAL",
        "host": socket.gethostname(),
        CWD_TAG: os.getcwd(),  # report._core.local_paths
    }
