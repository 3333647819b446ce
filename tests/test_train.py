"""The training loop on tiny learnable data: metrics, timings, schedule, NaN."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

import harness.models
import harness.tasks  # noqa: F401  (register the config sections)
from harness.config import config_from
from harness.data import load_dataset
from harness.errors import RunFailed
from harness.tasks import get_task
from harness.train import ExpDecayToFloor, build_and_compile, train


class ListSink:
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []
        self.closed = False

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        self.rows.append((step, dict(metrics)))

    def close(self) -> None:
        self.closed = True


def test_schedule_matches_the_formula() -> None:
    cfg = config_from({"lr0": 0.02, "lr1": 0.0002, "lr2": 1000})
    schedule = ExpDecayToFloor(cfg.optim.lr0, cfg.optim.lr1, cfg.optim.lr2)
    for step in (0, 500, 1000, 5000):
        assert float(schedule(step)) == pytest.approx(cfg.learning_rate(step), rel=1e-6)
    with pytest.raises(ValueError, match="lr2 must be > 0 steps, but got lr2=0"):
        ExpDecayToFloor(0.1, 0.0, 0)


def test_train_learns_and_reports_every_evaluation(tiny_data_dir: Path) -> None:
    data = load_dataset("mnist", tiny_data_dir)
    cfg = config_from(
        {
            "layers": [32],
            "bias_init": 0.1,
            "lr0": 0.01,
            "lr1": 0.001,
            "lr2": 20,
            "iterations": 60,
            "eval_every": 20,
            "batch_size": 50,
            "steps_per_execution": 10,
        }
    )
    sink = ListSink()
    result = train(cfg, data, [sink])
    assert [step for step, _ in sink.rows] == [20, 40, 60]
    assert [row["step"] for row in result.history] == [20, 40, 60]
    assert sink.rows[-1][1]["lr"] == pytest.approx(cfg.learning_rate(60))
    f = result.final
    assert f["final_test_accuracy"] > 0.8  # chance is 0.1; the blocks are easy to learn
    assert f["best_test_accuracy"] >= f["final_test_accuracy"]
    assert f["steps"] == 60 and f["params_count"] == 784 * 32 + 32 + 330
    assert f["time_warmup_s"] > 0 and f["time_train_steady_s"] > 0 and f["time_eval_s"] > 0
    assert f["time_total_s"] >= f["time_train_s"] + f["time_eval_s"]
    assert f["examples_per_s"] > 0
    assert "Total params" in result.summary


@pytest.mark.slow
def test_same_seed_same_result(tiny_data_dir: Path) -> None:
    data = load_dataset("mnist", tiny_data_dir)
    cfg = config_from(
        {"layers": [16], "iterations": 20, "eval_every": 10, "batch_size": 50, "steps_per_execution": 10, "seed": 3}
    )
    a, b = train(cfg, data), train(cfg, data)
    assert [r["test_loss"] for r in a.history] == pytest.approx([r["test_loss"] for r in b.history], rel=1e-5)


def test_summed_loss_for_the_softmax_rung(tiny_data_dir: Path) -> None:
    data = load_dataset("mnist", tiny_data_dir)
    model = build_and_compile(config_from({"loss_reduction": "sum", "optimizer": "sgd"}), data)
    assert model.loss.reduction == "sum"


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_logged_loss_is_the_mean_cross_entropy_whatever_trains_the_model(tiny_data_dir: Path, reduction: str) -> None:
    """Rows log the mean cross-entropy; a summed loss needs one more metric on every step, a mean loss none."""
    import keras

    data = load_dataset("mnist", tiny_data_dir)
    cfg = config_from(
        {"loss_reduction": reduction, "iterations": 10, "eval_every": 10, "batch_size": 50, "steps_per_execution": 10}
    )
    result = train(cfg, data)
    used = data.subset(cfg.data.train_subset, cfg.data.test_subset)
    logits = result.model.predict(used.x_test.astype("float32") / 255.0, verbose=0)
    mean = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(used.y_test, logits)
    assert result.history[-1]["test_loss"] == pytest.approx(float(mean), rel=1e-4)
    names = [m.name for m in get_task(cfg.task.name).metrics(cfg, used)]
    assert ("xent" in names) == (reduction == "sum"), names


def test_nan_loss_fails_the_run(tiny_data_dir: Path) -> None:
    data = load_dataset("mnist", tiny_data_dir)
    # a hidden ReLU layer overflows to inf, then inf - inf = NaN
    cfg = config_from(
        {
            "layers": [16],
            "optimizer": "sgd",
            "lr0": 1e10,
            "loss_reduction": "sum",
            "iterations": 20,
            "eval_every": 10,
            "steps_per_execution": 10,
            "batch_size": 50,
        }
    )
    with pytest.raises(RunFailed, match=r"training loss is (nan|inf) at step 10"):
        train(cfg, data)
