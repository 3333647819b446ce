"""The detection task: its loss on a hand-computed example, the TF IoU against the numpy oracle,
the packing of ``y``, the config checks, and the smoke ladder end to end (MLflow + TensorBoard)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import store_runs

import harness.data
import harness.models  # noqa: F401  (registers the models)
from harness.config import config_from
from harness.errors import ConfigError
from harness.tasks import get_task
from harness.tasks._detection import MAX_ROIS, Packing, _loss_class, reference_batch_iou, tile_ious
from harness.tasks._yolo_boxes import Grid, reference_iou_batch, reference_iou_tile, yolo_targets

tf = pytest.importorskip("tensorflow")
CLI = [sys.executable, "-m", "harness"]


def _rois(*boxes: tuple[float, float, float, float]) -> np.ndarray:
    out = np.zeros((MAX_ROIS, 4), np.float32)
    if boxes:
        out[: len(boxes)] = boxes
    return out


def _pred_for(boxes: list[tuple[float, float, float, float]], grid: Grid) -> np.ndarray:
    """A prediction that detects exactly the given boxes (via the targets they encode to)."""
    t = yolo_targets(_rois(*boxes), grid, swarm=False)
    plane = t[..., 2] > 1e-4
    logits = np.stack([np.where(plane, -5.0, 5.0), np.where(plane, 5.0, -5.0)], axis=-1)
    return np.concatenate([t, logits], axis=-1)[None].astype(np.float32)


def test_loss_matches_a_hand_computation() -> None:
    # grid 1x1, 2 slots: slot 0 holds a plane at (x, y, w) = (0.2, -0.4, 0.5), slot 1 is empty
    pack = Packing(grid_nn=1, cell_n=2)
    targets = np.array([[[[0.2, -0.4, 0.5], [0.0, 0.0, 0.0]]]], np.float32)
    pred = np.array([[[[0.5, 0.0, 0.25, 0.0, math.log(3.0)], [0.1, 0.1, 0.1, 0.0, 0.0]]]], np.float32)
    y = pack.pack(targets, _rois((0.1, 0.1, 0.6, 0.6)))[None]
    loss = _loss_class()(pack, (1.0, 3.0, 30.0))
    # slot 0: position (0.3^2 + 0.4^2) = 0.25, size 2 * 0.25^2 = 0.125, xent -log(3/4)
    # slot 1: position and size masked out, xent -log(1/2) (pushed towards "no plane")
    pos, size = 0.25 / 2, 0.125 / 2
    xent = (-math.log(0.75) + math.log(2.0)) / 2
    expected = (1 * xent + 3 * pos + 30 * size) / 34
    assert float(loss(tf.constant(y), tf.constant(pred[None]))) == pytest.approx(expected, rel=1e-5)


def test_packing_round_trip() -> None:
    pack = Packing(grid_nn=4, cell_n=2)
    targets = np.random.default_rng(0).normal(size=(4, 4, 2, 3)).astype(np.float32)
    rois = _rois((0.1, 0.2, 0.3, 0.4), (0.5, 0.5, 0.9, 0.9))
    y = pack.pack(targets, rois)
    assert y.shape == (pack.size,)
    t2, r2 = pack.unpack(tf.constant(y[None]))
    np.testing.assert_array_equal(t2.numpy()[0], targets)
    np.testing.assert_array_equal(r2.numpy()[0], rois)


def test_iou_on_hand_drawn_boxes() -> None:
    # grid 1x1, one slot: a detected 40x40-px box 20 px right of a true 40x40-px box -> IoU 20*40 / (60*40)
    grid = Grid(grid_nn=1, cell_n=1, cell_grow=1.0)
    true = (100 / 256, 100 / 256, 140 / 256, 140 / 256)
    found = (120 / 256, 100 / 256, 160 / 256, 140 / 256)
    iou, count = tile_ious(tf.constant(_pred_for([found], grid)), tf.constant(_rois(true)[None]), 1)
    assert float(iou[0]) == pytest.approx(800 / 2400, abs=1e-6)
    assert int(count[0]) == 1


def test_tf_iou_matches_the_numpy_oracle_on_random_tiles() -> None:
    rng = np.random.default_rng(3)
    grid = Grid(grid_nn=4, cell_n=1, cell_grow=1.0)
    preds, rois, expected = [], [], []
    for _ in range(12):
        n_true, n_found = rng.integers(0, 4), rng.integers(0, 4)
        truth = [_square(rng) for _ in range(n_true)]
        found = [_square(rng) for _ in range(n_found)]
        pred = _pred_for(found, grid)
        preds.append(pred[0])
        rois.append(_rois(*truth))
        # the oracle sees the boxes the prediction decodes to (a cell holds at most one)
        decoded = _decoded(pred, grid)
        expected.append(reference_iou_tile(decoded, np.asarray(truth, np.float32).reshape(-1, 4)))
    iou, count = tile_ious(tf.constant(np.stack(preds)), tf.constant(np.stack(rois)), 4)
    np.testing.assert_allclose(iou.numpy(), expected, atol=1e-6)
    batch = float(reference_batch_iou(iou, count))
    assert batch == pytest.approx(reference_iou_batch(np.asarray(expected), count.numpy()), abs=1e-6)


def _square(rng: np.random.Generator) -> tuple[float, float, float, float]:
    side = rng.uniform(0.05, 0.3)
    x, y = rng.uniform(-0.1, 0.9, size=2)
    return (x, y, x + side, y + side)


def _decoded(pred: np.ndarray, grid: Grid) -> np.ndarray:
    from harness.tasks._yolo_boxes import decode

    boxes = decode(pred[0, ..., :3], grid.grid_nn).reshape(-1, 4)
    detected = (pred[0, ..., 4] > pred[0, ..., 3]).reshape(-1)
    return boxes[detected]


def test_reference_batch_rules() -> None:
    iou = tf.constant([1.0, 0.5, 0.25, 1.0])
    assert float(reference_batch_iou(iou, tf.constant([0, 3, 2, 1]))) == pytest.approx(0.375)
    assert float(reference_batch_iou(tf.ones([3]), tf.constant([0, 0, 0]))) == 1.0  # every tile dropped
    assert float(reference_batch_iou(iou, tf.constant([0, 61, 2, 1]))) == 0.0  # > 60 detections in a tile


def test_config_checks_name_the_key() -> None:
    base = {"task": "detection", "dataset": "aerial_synthetic", "model": "squeezenet"}
    with pytest.raises(ConfigError, match="grid_nn"):
        config_from({**base, "grid_nn": 5})
    with pytest.raises(ConfigError, match="cell_swarm=True needs cell_n=2"):
        config_from({**base, "cell_n": 4})
    with pytest.raises(ConfigError, match="does not serve task"):
        config_from({**base, "model": "cnn"})
    cfg = config_from({**base, "grid_nn": 8, "cell_n": 1, "cell_swarm": False})
    assert cfg.task.grid_nn == 8  # type: ignore[attr-defined]
    assert get_task(cfg.task.name).objective("IOU", "test").final_key == "final_test_iou"


@pytest.mark.slow
def test_smoke_ladder_logs_iou_to_mlflow_and_tensorboard(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "ladder", "yolo", "--scale", "smoke", "--rungs", "1,5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [r for r in store_runs(tmp_path, "ladder/yolo") if r.data.tags.get("harness.kind") == "rung"]
    assert {r.data.tags["harness.rung"] for r in runs} == {"grid4x4x1", "grid16x16x2-swarm"}
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "test_iou")
        assert [m.step for m in history] == [2, 4]  # every evaluation
        assert all(0.0 <= m.value <= 1.0 for m in history)
        for key in ("final_test_iou_all", "final_test_ap50", "final_test_precision50", "final_test_recall50"):
            # a number, or (a smoke model may detect nothing) absent and tagged undefined with the reason
            if key not in run.data.metrics:
                assert run.data.tags[f"harness.undefined.{key}"], key
                continue
            assert 0.0 <= run.data.metrics[key] <= 1.0, key
        assert run.data.params["task.grid_nn"] in {"4", "16"}
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event files"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for path in events:
        acc = EventAccumulator(str(path))
        acc.Reload()
        tags |= set(acc.Tags().get("scalars", [])) | set(acc.Tags().get("tensors", []))
    assert any("iou" in t for t in tags), tags

    # a side table of one rung, with the talk's verdict and the ladder's notes on where it differs
    done = subprocess.run(
        [*CLI, "report", "ladder", "yolo", "--scale", "smoke", "--rungs", "5", "--name", "yolo_side", "--out", "side"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / "side" / "yolo_side.md").read_text(encoding="utf-8")
    assert "the talk said" in text and "even better" in text and "not very good" not in text
    assert "differs from its reference, on purpose" in text and "max(w, h)" in text
    assert "tiles/s" in text and "AP@0.5 %" in text


@pytest.mark.slow
def test_detect_boxes_draws_a_smoke_run(tmp_path: Path) -> None:
    cli = CLI
    done = subprocess.run(
        [*cli, "ladder", "yolo", "--scale", "smoke", "--rungs", "5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run(
        [*cli, "detect-boxes", "yolo/grid16x16x2-swarm", "--held-out", "1", "--threshold", "0.1", "--out", "boxes"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pngs = sorted(tmp_path.glob("boxes/*/*.png"))
    assert len(pngs) == 1
    summary = next(tmp_path.glob("boxes/*/summary.md")).read_text(encoding="utf-8")
    assert "held out" in summary and "AP@0.5" in summary
    import json

    found = json.loads(next(tmp_path.glob("boxes/*/*.json")).read_text(encoding="utf-8"))
    assert found["truth"] and all(len(b) == 4 for b in found["truth"])  # true boxes drawn beside found ones
    assert all(s >= 0.1 for *_, s in found["found"])


@pytest.mark.slow
@pytest.mark.parametrize("space", ["yolo_hptune.yaml", "yolo_hptune_distributed.yaml"])
def test_reference_yolo_tuning_files_run_as_studies(tmp_path: Path, space: str) -> None:
    path = str(Path(__file__).resolve().parents[1] / "search_spaces" / space)
    done = subprocess.run(
        [*CLI, "study", path, "--experiment", "yolo:layers17", "--scale", "smoke", "--trials", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "objective final_test_iou (maximize)" in done.stdout
    assert "1 trials (1 complete" in done.stdout
