"""Undefined is not zero: metrics undefined for the data (AUC on one class, precision without positive
predictions, recall without positives, IoU without boxes, AP without true boxes) are neither logged
nor reported as 0.00%, and data that cannot train a model is refused before any run exists."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import model_server, store_runs
from test_census import CLI, _adult_dir, _rungs

from harness.config import config_from
from harness.data import ArrayDataset, TabularDataset, load_dataset
from harness.data._adult import CLASSES, COLUMNS, load_adult_synthetic, read_adult_file, synthetic_rows
from harness.errors import DataError
from harness.tasks import UNDEFINED_TAG, get_task

NAN = math.nan


def _ladder(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``harness ladder census --scale smoke EXTRA`` in its own process (its exit code and one-line error)."""
    return subprocess.run(
        [*CLI, "ladder", "census", "--scale", "smoke", *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )


def _csv_rows(x: np.ndarray, y: np.ndarray, test: bool = False) -> list[str]:
    """Rows as UCI ships them: comma-separated, no header; adult.test's labels end with a dot."""
    return [
        ", ".join([*(str(x[c.name][i]) for c in COLUMNS), CLASSES[int(y[i])] + ("." if test else "")])
        for i in range(len(y))
    ]


def _census_files(root: Path, test_label: int | None = 0, train_label: int | None = None) -> Path:
    """Tiny adult.data / adult.test from the synthetic rows (both classes), or of one class each."""
    rng = np.random.default_rng(7)
    x, y = synthetic_rows(1200, rng)
    train = np.arange(400) if train_label is None else np.flatnonzero(y == train_label)[:400]
    test = np.arange(400, 600) if test_label is None else np.flatnonzero(y == test_label)[-150:]
    return _adult_dir(root, _csv_rows(x[train], y[train]), _csv_rows(x[test], y[test], test=True))


# --- the metrics: NaN where undefined, Keras' own value elsewhere ----------------------------------


def test_binary_metrics_are_nan_where_undefined_and_keras_elsewhere() -> None:
    import keras

    from harness.tasks._metrics import (
        DefinedAUC,
        DefinedPrecision,
        DefinedRecall,
        PositiveClassPrecision,
        PositiveClassRecall,
    )

    scores = np.array([[0.1], [0.6], [0.3], [0.9]], np.float32)

    def result(metric: keras.metrics.Metric, labels: list[int], pred: np.ndarray = scores) -> float:
        metric.update_state(np.array(labels, np.float32).reshape(-1, 1), pred)
        return float(metric.result())

    assert math.isnan(result(DefinedAUC(num_thresholds=1000), [0, 0, 0, 0]))  # Keras says 0.0 here
    assert math.isnan(result(DefinedAUC(num_thresholds=1000), [1, 1, 1, 1]))
    assert math.isnan(result(DefinedPrecision(), [0, 1, 0, 1], scores * 0))  # nothing predicted positive
    assert math.isnan(result(DefinedRecall(), [0, 0, 0, 0]))  # no positive label
    both = [0, 1, 0, 1]
    for ours, keras_own in (
        (DefinedAUC(num_thresholds=1000), keras.metrics.AUC(num_thresholds=1000)),
        (DefinedPrecision(), keras.metrics.Precision()),
        (DefinedRecall(), keras.metrics.Recall()),
    ):
        assert result(ours, both) == pytest.approx(result(keras_own, both))
    logits = np.array([[1, 0], [1, 0], [0, 1]], np.float32)  # argmax: 0, 0, 1
    assert math.isnan(result(PositiveClassPrecision("p"), [1, 1, 0], logits * [[1, 0]]))  # no positive guess
    assert math.isnan(result(PositiveClassRecall("r"), [0, 0, 0], logits))
    assert result(PositiveClassPrecision("p"), [1, 1, 0], logits) == 0.0  # a positive guess, wrong: defined


def test_undefined_values_are_set_apart_with_their_reason_and_other_nans_stay() -> None:
    tabular = get_task("tabular")
    defined, undefined = tabular.split_undefined(
        {"test_auc": NAN, "final_test_recall": NAN, "train_precision": NAN, "test_loss": NAN, "test_accuracy": 0.5}
    )
    assert undefined == {
        "test_auc": "one class in the test set",
        "final_test_recall": "no positives in the test set",
        "train_precision": "no positive predictions",
    }
    assert defined["test_accuracy"] == 0.5 and math.isnan(defined["test_loss"])  # a NaN loss is a failure, kept
    assert tabular.undefined_reason("train_auc") == "one class in the training set"
    assert tabular.undefined_reason("majority_accuracy") is None


def test_the_recorder_logs_no_undefined_value_and_keeps_the_curve_gap(tmp_path: Path) -> None:
    from harness.tracking import JsonlSink
    from harness.train._callbacks import EvalRecorder

    sink = JsonlSink(tmp_path / "m.jsonl")
    recorder = EvalRecorder(get_task("tabular"), 10, lambda step: 0.1, [sink], 0.0)
    logs = {"loss": 0.5, "accuracy": 0.8, "auc": 0.7, "precision": 0.6, "recall": 0.5}
    recorder.on_epoch_end(0, {**logs, **{f"val_{k}": v for k, v in logs.items()}, "val_auc": NAN})
    sink.close()
    [row] = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert "test_auc" not in row and row["train_auc"] == 0.7 and row["test_precision"] == 0.6
    assert math.isnan(recorder.history[0]["test_auc"])  # the learning curve shows a gap, not a 0


def test_iou_without_any_box_is_undefined_not_zero_nor_one() -> None:
    import tensorflow as tf

    from harness.tasks._detection import MAX_ROIS, Packing, _metric_classes

    pack = Packing(grid_nn=4, cell_n=1)
    nothing = np.zeros((1, 4, 4, 1, 5), np.float32)
    nothing[..., 3] = 5.0  # P(no plane) wins in every slot: no detection

    def y(*boxes: tuple[float, float, float, float]) -> tf.Tensor:
        rois = np.zeros((MAX_ROIS, 4), np.float32)
        rois[: len(boxes)] = np.reshape(boxes, (-1, 4))
        return tf.constant(pack.pack(np.zeros((4, 4, 1, 3), np.float32), rois)[None])

    classes = _metric_classes()
    for name in ("iou", "iou_all"):
        metric = classes[name](pack, name)
        assert math.isnan(float(metric.result()))  # nothing evaluated (divide_no_nan said 0)
        metric.update_state(y(), tf.constant(nothing))
        assert math.isnan(float(metric.result()))  # no box, true or detected (the reference says 1)
        metric.update_state(y((0.1, 0.1, 0.3, 0.3)), tf.constant(nothing))
        assert float(metric.result()) == pytest.approx(0.5)  # a plane missed: the same mean as before
        metric.reset_state()
        assert math.isnan(float(metric.result()))
    detection = get_task("detection")
    rows = [{"step": 2, "test_iou": NAN}, {"step": 4, "test_iou": 0.4}]
    assert detection.summarize(rows)["best_test_iou"] == 0.4 and detection.summarize(rows)["best_step"] == 4
    final = detection.summarize([{"step": 2, "test_iou": NAN, "test_iou_all": NAN}])
    _, undefined = detection.split_undefined(final)
    assert undefined == {
        "final_test_iou": "no box in the test tiles, true or detected",
        "final_test_iou_all": "no box in the test tiles, true or detected",
        "best_test_iou": "no box in the test tiles, true or detected",
    }


def test_ap_without_true_boxes_is_undefined() -> None:
    from harness.tasks._yolo_boxes import coco_ap50

    no_truth = [np.zeros((0, 4)), np.zeros((0, 4))]
    found = [(np.array([[0, 0, 10, 10]], float), np.array([0.9])), (np.zeros((0, 4)), np.zeros(0))]
    got = coco_ap50(no_truth, found)
    assert math.isnan(got["ap50"]) and math.isnan(got["recall50"])
    assert got["precision50"] == 0.0  # one detection, no plane: defined, and wrong
    assert math.isnan(coco_ap50(no_truth, [(np.zeros((0, 4)), np.zeros(0))] * 2)["precision50"])
    _, undefined = get_task("detection").split_undefined({f"final_test_{k}": v for k, v in got.items()})
    assert undefined == {
        "final_test_ap50": "no true box in the evaluation images",
        "final_test_recall50": "no true box in the evaluation images",
    }


# --- data that cannot train a model, refused at load time -------------------------------------------


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e39"])
def test_reader_refuses_non_finite_numbers_naming_file_line_and_column(tmp_path: Path, value: str) -> None:
    x, y = synthetic_rows(3, np.random.default_rng(0))
    rows = _csv_rows(x, y)
    rows[1] = rows[1].replace(str(x["hours_per_week"][1]), value)
    path = tmp_path / "adult.data"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_adult_file(path)
    assert str(info.value) == f"{path}:2: hours_per_week must be a finite number, but got {value!r}"


def test_one_class_training_file_is_refused_naming_file_and_class(tmp_path: Path) -> None:
    root = _census_files(tmp_path, test_label=None, train_label=1)
    with pytest.raises(DataError) as info:
        load_dataset(config_from({"task": "tabular", "dataset": "adult", "model": "linear"}).data, root)
    assert str(info.value).startswith(f"{root / 'adult' / 'adult.data'}: every row has income >50K;")


def test_tasks_refuse_one_class_labels_and_non_finite_columns() -> None:
    tabular = get_task("tabular")
    cfg = config_from({"task": "tabular", "dataset": "adult_synthetic", "model": "linear"})
    table = load_adult_synthetic(None, cfg.data)
    tabular.check_data(table, cfg)  # both classes, finite numbers: fine
    x = table.x_train.copy()
    x["age"][4] = np.inf
    with pytest.raises(DataError, match=r"column age must hold finite numbers, but training row 5 holds inf"):
        tabular.check_data(dataclasses.replace(table, x_train=x), cfg)
    with pytest.raises(DataError, match=r"training set is class 0 \(<=50K\); a classifier needs"):
        tabular.check_data(dataclasses.replace(table, y_train=table.y_train * 0), cfg)
    assert isinstance(table, TabularDataset)

    images = np.zeros((6, 28, 28, 1), np.uint8)
    digits = ArrayDataset("tiny", images, np.array([3, 3, 3, 3, 7, 1]), images, np.arange(6), 10, "-", "gen/")
    mnist = config_from({"dataset": "mnist", "train_subset": 4})
    with pytest.raises(DataError, match=r"gen/: every label of the first 4 training examples \(train_subset=4\) is"):
        get_task("classification").check_data(digits, mnist)
    get_task("classification").check_data(digits, config_from({"dataset": "mnist"}))  # 3 classes: fine


def test_the_executor_refuses_one_class_data_before_any_run(tmp_path: Path) -> None:
    from harness.executor import Executor
    from harness.tracking import Tracker

    images = np.zeros((4, 28, 28, 1), np.uint8)
    planes = ArrayDataset("mnist", images, np.ones(4, np.int64), images, np.arange(4) % 2, 10, "-", "gen/")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    executor = Executor(tracker, tensorboard_dir=tmp_path / "tb", datasets={"mnist": planes})
    with pytest.raises(DataError, match=r"gen/: every label of the training set is class 1"):
        executor.prepare([config_from({"dataset": "mnist"})])
    assert not (tmp_path / "mlflow.db").exists()  # no store, no run


@pytest.mark.slow
def test_nan_in_the_training_file_exits_2_with_one_line_and_no_run(tmp_path: Path) -> None:
    root = _census_files(tmp_path / "data", test_label=None)
    train = root / "adult" / "adult.data"
    lines = train.read_text(encoding="utf-8").splitlines()
    lines[9] = "nan" + lines[9][lines[9].index(",") :]  # age of line 10
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _ladder(tmp_path, "--rungs", "linear", "--set", "dataset=adult", "--data-dir", str(root))
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip() == f"error: {train}:10: age must be a finite number, but got 'nan'"
    assert not store_runs(tmp_path, "ladder/census")  # refused before any run: none left RUNNING


@pytest.mark.slow
def test_one_class_training_file_exits_2_before_any_run(tmp_path: Path) -> None:
    root = _census_files(tmp_path / "data", train_label=0)
    done = _ladder(tmp_path, "--rungs", "linear", "--set", "dataset=adult", "--data-dir", str(root))
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().startswith(f"error: {root / 'adult' / 'adult.data'}: every row has income <=50K;")
    assert "Traceback" not in done.stderr
    assert not store_runs(tmp_path, "ladder/census")


# --- end to end: a one-class test set, its run, report and served model --------------------------------


@pytest.fixture(scope="module")
def one_class_ladder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The census ladder's linear rung at smoke scale on a test set of <=50K rows only."""
    tmp = tmp_path_factory.mktemp("one-class")
    root = _census_files(tmp / "data", test_label=0)
    done = _ladder(tmp, "--rungs", "linear", "--set", "dataset=adult", "--data-dir", str(root))
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, done


def _md_cell(md: str, header: str) -> str:
    table = [line for line in md.splitlines() if line.startswith("|")]
    headers = [h.strip() for h in table[0].strip("|").split("|")]
    return [c.strip() for c in table[2].strip("|").split("|")][headers.index(header)]


@pytest.mark.slow
def test_one_class_test_set_logs_and_reports_undefined_not_zero(
    one_class_ladder: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, done = one_class_ladder
    [run] = _rungs(tmp)
    assert run.info.status == "FINISHED"
    metrics, tags = run.data.metrics, run.data.tags
    assert not [k for k in metrics if "test_auc" in k], metrics  # train AUC is defined: both classes there
    assert 0.0 <= metrics["final_train_auc"] <= 1.0
    assert tags[f"{UNDEFINED_TAG}final_test_auc"] == "one class in the test set"
    assert "final_test_recall" not in metrics  # no >50K row to recall
    assert tags[f"{UNDEFINED_TAG}final_test_recall"] == "no positives in the test set"
    if "final_test_precision" in metrics:  # positive predictions on <=50K rows only: all wrong, defined
        assert metrics["final_test_precision"] == 0.0
    else:
        assert tags[f"{UNDEFINED_TAG}final_test_precision"] == "no positive predictions"
    assert 0.0 < metrics["final_test_accuracy"] <= 1.0 and metrics["majority_accuracy"] == 1.0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    assert client.get_metric_history(run.info.run_id, "test_auc") == []  # no step logged a made-up 0
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_auc")] == [30, 60]
    assert "AUC undefined (one class in the test set)" in done.stdout
    [md] = (tmp / "results").glob("census_ladder_smoke*.md")
    text = md.read_text(encoding="utf-8")
    assert _md_cell(text, "AUC %") == "undefined (one class in the test set)"
    assert _md_cell(text, "recall+ %") == "undefined (no positives in the test set)"
    assert _md_cell(text, "precision+ %") in {"0.00", "undefined (no positive predictions)"}
    assert "final_test_auc_undefined" in md.with_suffix(".csv").read_text(encoding="utf-8")


@pytest.mark.slow
def test_served_census_model_refuses_a_nan_age_naming_column_and_row(
    one_class_ladder: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.exceptions import MlflowException

    tmp, _ = one_class_ladder
    [run] = _rungs(tmp)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    x, _ = synthetic_rows(2, np.random.default_rng(1))
    rows = pd.DataFrame({c.name: x[c.name].astype(np.float64 if c.kind == "numeric" else str) for c in COLUMNS})
    rows.loc[1, "age"] = np.nan
    model = mlflow.pyfunc.load_model(run.data.tags["harness.model_uri"])
    assert len(model.predict(rows.iloc[:1])) == 1  # a complete row is answered
    with pytest.raises(MlflowException, match=r"input column 'age' must hold finite numbers, but row 1 holds nan"):
        model.predict(rows)

    with model_server(run.data.tags["harness.model_uri"], uri, Path.cwd(), timeout=180) as port:
        body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=120)
        assert info.value.code == 400
        answer = json.loads(info.value.read())
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "input column 'age' must hold finite numbers, but row 1 holds nan" in answer["message"]
