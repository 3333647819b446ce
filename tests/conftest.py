"""Shared fixtures: tiny generated data, a throwaway tracking store, the real data dir."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import mnist_files, planesnet_files

from helpers import REAL_DATA, missing_real_data
from mnist_files import write_tiny_mnist
from planesnet_files import write_tiny_planesnet

# JAX's compilation cache, which harness turns on for JAX runs: one folder for this session's workers and the
# commands they start (a program compiled by one test is loaded by the next), never the user's ~/.cache
os.environ.setdefault("HARNESS_JAX_CACHE", str(Path(tempfile.gettempdir()) / f"harness-tests-jax-cache-{os.getuid()}"))

SLOW_TIMEOUT_S = 600  # a fast test fails after pyproject's 30 s; an end-to-end or real-data one gets this


def _slow(item: pytest.Item) -> bool:
    return bool(item.get_closest_marker("slow") or item.get_closest_marker("realdata"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _slow(item) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
    # The files with the most end-to-end tests first, each file's tests together and in order: xdist hands
    # tests out in this order, so the long ones start first and the short ones even out the two workers' ends.
    slow_in: dict[str, int] = {}
    for item in items:
        slow_in[item.nodeid.split("::")[0]] = slow_in.get(item.nodeid.split("::")[0], 0) + _slow(item)
    items.sort(key=lambda item: -slow_in[item.nodeid.split("::")[0]])  # stable: files keep their inner order


@pytest.fixture(autouse=True)
def _tracking_uri_kept() -> Iterator[None]:
    """``mlflow.set_tracking_uri`` exports ``MLFLOW_TRACKING_URI``: a test calling it in this process must not send
    a later test's runs (on the same xdist worker) to its store."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding a tiny learnable MNIST (600 train / 200 test) in IDX .gz files."""
    return write_tiny_mnist(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_planesnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding a tiny learnable PlanesNet zip (400 tiles over 40 scenes)."""
    return write_tiny_planesnet(tmp_path_factory.mktemp("planesnet"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temp dir with its own default tracking store; never touch the user's."""
    return work_in(tmp_path, monkeypatch)


def work_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``workdir`` in ``folder``: a module may share one folder (and store) between its tests."""
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    return folder


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    if not (REAL_DATA / "mnist" / "train-images-idx3-ubyte.gz").exists():
        missing_real_data("real MNIST (mnist/train-images-idx3-ubyte.gz)")
    return REAL_DATA
