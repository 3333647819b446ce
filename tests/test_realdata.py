"""Real training on the real datasets: floors that only real learning on real data can pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import missing_real_data, rung_run

from harness.cli import main


@pytest.mark.realdata
def test_cnn_rung_learns_real_mnist(workdir: Path, real_data_dir: Path) -> None:
    # 400 steps of the talk's small CNN: about 97% in the talk's curves; chance is 10%,
    # and a model that learned nothing real (or wrong labels) stays far below 95%.
    argv = "ladder mnist --rungs cnn --set iterations=400 --set eval_every=200 --no-report".split()
    assert main([*argv, "--data-dir", str(real_data_dir)]) == 0
    run = rung_run(workdir, "ladder/mnist", "cnn")
    assert run.data.metrics["final_test_accuracy"] >= 0.95
    assert run.data.tags["data.checksum"].startswith("227111746c19")


@pytest.mark.realdata
def test_planesnet_cnn_learns_real_tiles_on_a_scene_split(workdir: Path, real_data_dir: Path) -> None:
    if not (real_data_dir / "planesnet" / "planesnet.zip").exists():
        missing_real_data("planesnet/planesnet.zip")
    # 400 steps of the small CNN on unseen scenes: predicting "no plane" everywhere scores 75%;
    # the floors need a model that really finds planes.
    argv = "ladder planesnet --rungs cnn --set iterations=400 --set eval_every=200 --no-report".split()
    assert main([*argv, "--data-dir", str(real_data_dir)]) == 0
    run = rung_run(workdir, "ladder/planesnet", "cnn")
    assert run.data.tags["data.split"] == "scene"
    assert run.data.metrics["final_test_accuracy"] >= 0.90
    assert run.data.metrics["final_test_recall"] >= 0.60
