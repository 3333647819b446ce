"""detect-scan: a tile classifier from the MLflow store, slid over a large image."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import work_in
from PIL import Image

from harness.cli import main
from harness.tracking import RungRecord, Tracker


def _brightness_classifier(channels: int = 3) -> keras.Model:
    """P(plane) rises with the mean brightness of the 20x20 window: a stand-in tile classifier."""
    inputs = keras.Input((20, 20, channels) if channels == 3 else (28, 28, channels))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(2)(mean)
    model = keras.Model(inputs, logits)
    w = np.zeros((channels, 2), np.float32)
    w[:, 1] = 40.0 / channels
    model.get_layer(index=-1).set_weights([w, np.array([0.0, -30.0], np.float32)])  # ~0.75 brightness -> 0.5
    return model


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder and tracking store for the module: creating a store costs seconds, each test would pay it."""
    return tmp_path_factory.mktemp("detect")


@pytest.fixture
def workdir(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """conftest's ``workdir``, in the module's shared folder (its default tracking store)."""
    return work_in(store_dir, monkeypatch)


@pytest.fixture(scope="module")
def model_run(store_dir: Path) -> str:
    tracker = Tracker(f"sqlite:///{store_dir / 'mlflow.db'}")  # the store ``workdir`` defaults to
    exp = tracker.experiment_id("ladder/tiles")
    rung = RungRecord(
        ladder="tiles",
        scale="smoke",
        task="classification",
        metric="test_accuracy",
        rung="tiny",
        rung_index=1,
        rung_changes="a brightness threshold",
        seed=0,
    )
    with tracker.run(exp, "tile-classifier", rung.to_tags()) as run, tempfile.TemporaryDirectory() as tmp:
        _brightness_classifier().save(Path(tmp) / "model.keras")
        run.log_artifact(Path(tmp) / "model.keras")
    return run.run_id


def _scene(path: Path) -> Path:
    image = np.full((120, 160, 3), 20, np.uint8)
    image[30:50, 40:60] = 255  # two "planes", 20x20, far apart
    image[80:100, 110:130] = 255
    Image.fromarray(image).save(path)
    return path


def test_scan_finds_each_object_once_and_logs_to_the_run(workdir: Path, model_run: str) -> None:
    scene = _scene(workdir / "scene.png")
    argv = ["detect-scan", model_run, str(scene), "--scales", "1.0", "--stride", "5", "--threshold", "0.9"]
    assert main(argv) == 0
    out = workdir / "results" / "detect_scan" / "tile-classifier"
    found = json.loads((out / "scene_detections.json").read_text())
    assert found["count"] == 2
    corners = sorted((round(b["x"]), round(b["y"])) for b in found["boxes"])
    assert corners == [(40, 30), (110, 80)]
    with Image.open(out / "scene_detections.jpg") as picture:
        assert (picture.format, picture.size) == ("JPEG", (160, 120))
    client = Tracker().client
    assert {a.path for a in client.list_artifacts(model_run, "detect_scan")} == {
        f"detect_scan/{name}"
        for name in ("scene_detections.jpg", "scene_detections.json", "summary.md", "summary.html", "summary.csv")
    }
    assert client.get_run(model_run).data.metrics["detect_scan/scene"] == 2
    summary = (out / "summary.md").read_text()
    assert f"Command: `harness {' '.join(argv)}`" in summary
    assert f"MLflow run `{model_run}`" in summary and "rung `tiny`" in summary
    assert "| scene.png | 160×120 | 2 |" in summary and "![scene.png](scene_detections.jpg)" in summary
    # the page shows the picture beside it; the CSV holds the numbers
    assert '<img src="scene_detections.jpg" alt="scene.png"' in (out / "summary.html").read_text()
    row = pd.read_csv(out / "summary.csv").iloc[0]
    assert (row["image"], row["width"], row["height"], row["detections"]) == ("scene.png", 160, 120, 2)


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d, run: ["detect-scan", run, str(d / "missing.png")], r"missing.png: no such image file"),
        (lambda d, run: ["detect-scan", run, str(_garbage(d))], r"garbage.png: cannot decode image"),
        (lambda d, run: ["detect-scan", "0" * 32, str(_scene(d / "s.png"))], r"no run '0{32}'"),
        (lambda d, run: ["detect-scan", "tiles/nope", str(_scene(d / "s.png"))], r"no finished run of rung 'nope'"),
        (
            lambda d, run: ["detect-scan", "nothing", str(_scene(d / "s.png"))],
            r"model run must be a run id, study:NAME or LADDER/RUNG\[:VARIANT\], but got 'nothing'",
        ),
        (lambda d, run: ["detect-scan", run, str(_scene(d / "s.png")), "--threshold", "2"], r"threshold must be in"),
        (lambda d, run: ["detect-scan", run, str(_scene(d / "s.png")), "--scales", "big"], r"--scales expects"),
    ],
)
def test_bad_input_is_refused(
    workdir: Path, model_run: str, capsys: pytest.CaptureFixture[str], make_args, message: str
) -> None:  # type: ignore[no-untyped-def]
    import re

    assert main(make_args(workdir, model_run)) == 2
    assert re.search(message, capsys.readouterr().err)


def _garbage(folder: Path) -> Path:
    path = folder / "garbage.png"
    path.write_bytes(b"\x89PNG not really")
    return path


def test_run_without_a_model_and_a_model_of_the_wrong_kind(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tracker = Tracker()
    exp = tracker.experiment_id("ladder/other")
    with tracker.run(exp, "no-model") as bare:
        pass
    with tracker.run(exp, "mnist-like") as gray, tempfile.TemporaryDirectory() as tmp:
        _brightness_classifier(channels=1).save(Path(tmp) / "model.keras")
        gray.log_artifact(Path(tmp) / "model.keras")
    scene = str(_scene(workdir / "s.png"))
    assert main(["detect-scan", bare.run_id, scene]) == 2
    assert "has no model.keras artifact" in capsys.readouterr().err
    assert main(["detect-scan", gray.run_id, scene]) == 2
    assert "takes 28x28x1 inputs; detect-scan needs a classifier of RGB tiles" in capsys.readouterr().err


def test_model_run_by_ladder_and_rung(workdir: Path, model_run: str) -> None:
    scene = _scene(workdir / "scene.png")
    assert main(["detect-scan", "tiles/tiny", str(scene), "--scales", "1.0", "--stride", "5"]) == 0
    assert Tracker().client.get_run(model_run).data.metrics["detect_scan/scene"] == 2
