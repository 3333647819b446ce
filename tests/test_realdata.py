"""Real training on the real MNIST files: floors that only real learning on real data can pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.cli import main


@pytest.mark.realdata
def test_cnn_rung_learns_real_mnist(workdir: Path, real_data_dir: Path) -> None:
    # 400 steps of the talk's small CNN: about 97% in the talk's curves; chance is 10%,
    # and a model that learned nothing real (or wrong labels) stays far below 95%.
    argv = [
        "ladder",
        "mnist",
        "--rungs",
        "cnn",
        "--data-dir",
        str(real_data_dir),
        "--set",
        "iterations=400",
        "--set",
        "eval_every=200",
        "--no-report",
    ]
    assert main(argv) == 0
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    run = next(
        r
        for r in client.search_runs([client.get_experiment_by_name("ladder/mnist").experiment_id])
        if r.data.tags.get("harness.rung") == "cnn"
    )
    assert run.data.metrics["final_test_accuracy"] >= 0.95
    assert run.data.tags["data.checksum"].startswith("227111746c19")
