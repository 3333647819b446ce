"""The detection task: its loss on a hand-computed example, the TF IoU against the numpy oracle,
the packing of ``y``, the config checks, and the smoke ladder end to end (MLflow + TensorBoard)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from helpers import run_cli, store_runs

import harness.data
import harness.models  # noqa: F401  (registers the models)
from harness.config import config_from
from harness.errors import ConfigError
from harness.ladders import load_ladder
from harness.tasks import get_task
from harness.tasks._detection import MAX_ROIS, Packing, _loss_class, reference_batch_iou, tile_ious
from harness.tasks._yolo_boxes import Grid, reference_iou_batch, reference_iou_tile, yolo_targets

tf = pytest.importorskip("tensorflow")


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


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``harness ladder yolo --scale smoke`` (the whole smoke ladder, on TensorFlow), once, in this process and its
    own folder and store;
    while a test uses it, that folder is the working directory (``harness report`` and ``detect-boxes`` read
    the store there). One run serves the MLflow/TensorBoard checks, the side report and detect-boxes."""
    root = tmp_path_factory.mktemp("yolo_smoke")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("HARNESS_OFFLINE", "1")
        rc, out = run_cli("ladder", "yolo", "--scale", "smoke")
    return SimpleNamespace(root=root, rc=rc, out=out)


@pytest.fixture
def in_smoke(smoke: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Path:
    assert smoke.rc == 0, smoke.out[-3000:]
    monkeypatch.chdir(smoke.root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    return Path(smoke.root)


@pytest.mark.slow
def test_smoke_ladder_logs_iou_to_mlflow_and_tensorboard(in_smoke: Path) -> None:
    tmp_path = in_smoke
    runs = [r for r in store_runs(tmp_path, "ladder/yolo") if r.data.tags.get("harness.kind") == "rung"]
    assert sorted(r.data.tags["harness.rung"] for r in runs) == sorted(r.name for r in load_ladder("yolo").rungs)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "test_iou")
        assert [m.step for m in history] == [2, 4]  # every evaluation
        assert all(0.0 <= m.value <= 1.0 for m in history)
        # the IoU is evaluation-only (as the reference's); the loss terms are logged for training too
        assert "final_train_iou" not in run.data.metrics and not client.get_metric_history(run.info.run_id, "train_iou")
        assert "final_train_position_error" in run.data.metrics
        for key in ("final_test_iou_all", "final_test_ap50", "final_test_precision50", "final_test_recall50"):
            # a number, or (a smoke model may detect nothing) absent and tagged undefined with the reason
            if key not in run.data.metrics:
                assert run.data.tags[f"harness.undefined.{key}"], key
                continue
            assert 0.0 <= run.data.metrics[key] <= 1.0, key
        assert run.data.params["task.grid_nn"] in {"4", "8", "16"}
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event files"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for path in events:
        acc = EventAccumulator(str(path))
        acc.Reload()
        tags |= set(acc.Tags().get("scalars", [])) | set(acc.Tags().get("tensors", []))
    assert any("iou" in t for t in tags), tags


@pytest.mark.slow
def test_side_report_of_one_smoke_rung(in_smoke: Path) -> None:
    """A side table of one rung, with the talk's verdict and the ladder's notes on where it differs."""
    rc, out = run_cli(
        "report", "ladder", "yolo", "--scale", "smoke", "--rungs", "5", "--name", "yolo_side", "--out", "side"
    )
    assert rc == 0, out[-3000:]
    text = (in_smoke / "side" / "yolo_side.md").read_text(encoding="utf-8")
    assert "the talk said" in text and "even better" in text and "not very good" not in text
    assert "differs from its reference, on purpose" in text and "max(w, h)" in text
    assert "tiles/s" in text and "AP@0.5 %" in text


@pytest.mark.slow
def test_detect_boxes_draws_a_smoke_run(in_smoke: Path) -> None:
    argv = ["detect-boxes", "yolo/grid16x16x2-swarm", "--held-out", "1", "--threshold", "0.1", "--out", "boxes"]
    rc, out = run_cli(*argv)
    assert rc == 0, out[-3000:]
    pictures = sorted(in_smoke.glob("boxes/*/*.jpg"))
    assert len(pictures) == 1
    summary = next(in_smoke.glob("boxes/*/summary.md")).read_text(encoding="utf-8")
    assert "held out" in summary and "AP@0.5" in summary and f"]({pictures[0].name})" in summary
    page = next(in_smoke.glob("boxes/*/summary.html")).read_text(encoding="utf-8")
    assert f'<img src="{pictures[0].name}"' in page
    import json

    found = json.loads(next(in_smoke.glob("boxes/*/*.json")).read_text(encoding="utf-8"))
    assert found["truth"] and all(len(b) == 4 for b in found["truth"])  # true boxes drawn beside found ones
    assert all(s >= 0.1 for *_, s in found["found"])


SPACES = Path(__file__).resolve().parents[1] / "search_spaces"


@pytest.mark.slow
def test_reference_yolo_tuning_file_runs_as_a_study(workdir: Path) -> None:
    # 2 steps (smoke's 4 is no more of a check): one evaluation, then AP on the held-out image
    argv = ["--experiment", "yolo:layers17", "--scale", "smoke", "--trials", "1", "--set", "iterations=2"]
    rc, out = run_cli("study", str(SPACES / "yolo_hptune.yaml"), *argv)
    assert rc == 0, out[-3000:]
    assert "objective final_test_iou (maximize)" in out
    assert "1 trials (1 complete" in out


def test_reference_distributed_yolo_tuning_file_plans_the_same_trials() -> None:
    """The cluster file differs from yolo_hptune.yaml (which runs as a study above) only in its budget and
    hardware: checked and resolved, it tunes the same keys of the same base config for the same objective,
    each trial on one machine (a note says so) priced as the master, 3 workers and a parameter server."""
    from harness.studies._request import StudyRequest, check_study

    def checked(space: str) -> Any:
        request = StudyRequest(str(SPACES / space), experiment="yolo:layers17", scale="smoke", trials=1)
        return check_study(request)

    single, cluster = checked("yolo_hptune.yaml"), checked("yolo_hptune_distributed.yaml")
    assert cluster.resolved.objective.final_key == "final_test_iou" and cluster.resolved.direction == "maximize"
    assert {**cluster.resolved.describe(), "space": ""} == {**single.resolved.describe(), "space": ""}
    assert cluster.resolved.keys == single.resolved.keys
    assert cluster.resolved.tier_backend == single.resolved.tier_backend
    assert (cluster.budget.max_trials, cluster.budget.max_parallel) == (1, 9)
    tier = cluster.space.tier
    assert tier is not None and len(tier.machines) == 5 and "+ 3 workers + 1 parameter servers" in tier.description
    assert any("on one machine" in note for note in cluster.space.notes), cluster.space.notes
