"""The one training loop: Config + data -> trained model + measurements.

Everything it measures goes to the sinks it is given; it does not know about
MLflow, TensorBoard or the ladder that called it.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import math
import os
import time
from collections.abc import Sequence

import keras
import tensorflow as tf

from harness.config import Config
from harness.data import ArrayDataset
from harness.data._pipeline import eval_pipeline, train_pipeline
from harness.models import create_model
from harness.tracking._base import MetricSink
from harness.train._callbacks import Clock, EvalRecorder, StopOnSignal
from harness.train._metrics import PositiveClassPrecision, PositiveClassRecall
from harness.train._schedules import learning_rate


@dataclasses.dataclass
class TrainResult:
    """What one run produced: the model, the per-evaluation history and the timings."""

    model: keras.Model
    history: list[dict[str, float]]
    final: dict[str, float]  # final metrics and timings, MLflow-ready
    summary: str  # keras model.summary() text

    @property
    def best_step(self) -> int:
        return int(self.final["best_step"])


def fresh_session(seed: int) -> None:
    """Start a run from a clean Keras state so memory does not grow run over run."""
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(seed)


def build_and_compile(cfg: Config, data: ArrayDataset) -> keras.Model:
    """The model of ``cfg`` compiled with the talk's loss, optimizer and schedule."""
    model = create_model(cfg, data.input_shape, data.num_classes)
    lr = learning_rate(cfg.lr0, cfg.lr1, cfg.lr2)
    optimizer: keras.optimizers.Optimizer
    if cfg.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=lr)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    reduction = "sum" if cfg.loss_reduction == "sum" else "sum_over_batch_size"
    # "xent" is the mean cross-entropy whatever the training reduction, so losses compare
    metrics: list[keras.metrics.Metric] = [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent"),
    ]
    if data.num_classes == 2:  # imbalanced detection data: precision and recall of the positive class
        metrics += [PositiveClassPrecision(name="precision"), PositiveClassRecall(name="recall")]
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction),
        metrics=metrics,
        steps_per_execution=math.gcd(cfg.steps_per_execution, cfg.eval_every),
    )
    return model


def _rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def model_summary(model: keras.Model) -> str:
    buf = io.StringIO()
    model.summary(print_fn=lambda line, **_: buf.write(line + "\n"))
    return buf.getvalue()


def train(
    cfg: Config,
    data: ArrayDataset,
    sinks: Sequence[MetricSink] = (),
    strategy: tf.distribute.Strategy | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Train ``cfg`` on ``data`` for ``cfg.iterations`` steps, evaluating every ``eval_every``.

    Raises :class:`~harness.errors.RunFailed` on a non-finite loss.
    """
    started = time.perf_counter()
    fresh_session(cfg.seed)
    data = data.subset(cfg.train_subset, cfg.test_subset)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_and_compile(cfg, data)
    train_ds = train_pipeline(data.x_train, data.y_train, cfg.batch_size, cfg.seed, cfg.augment)
    test_ds = eval_pipeline(data.x_test, data.y_test, cfg.eval_batch_size)

    clock = Clock()
    recorder = EvalRecorder(cfg.eval_every, cfg.learning_rate, sinks, started)
    setup_s = time.perf_counter() - started
    model.fit(
        train_ds,
        epochs=cfg.iterations // cfg.eval_every,
        steps_per_epoch=cfg.eval_every,
        validation_data=test_ds,
        callbacks=[clock, recorder, StopOnSignal(), *extra_callbacks],
        shuffle=False,  # train_ds shuffles itself; Keras cannot shuffle a tf.data input
        verbose=0,
    )
    total_s = time.perf_counter() - started
    if not recorder.history:  # an extra callback stopped training before the first evaluation
        raise RuntimeError("training stopped before the first evaluation")
    last = recorder.history[-1]
    best = max(recorder.history, key=lambda row: row["test_accuracy"])
    steady_steps = last["step"] - clock.warmup_steps
    final = {
        **{f"final_{k}": v for k, v in last.items() if k.startswith("test_") and k not in ("test_loss",)},
        "final_test_accuracy": last["test_accuracy"],
        "final_test_loss": last["test_loss"],
        "final_train_accuracy": last["train_accuracy"],
        "final_train_loss": last["train_loss"],
        "best_test_accuracy": best["test_accuracy"],
        "best_step": best["step"],
        "steps": last["step"],
        "params_count": float(model.count_params()),
        "time_total_s": total_s,
        "time_setup_s": setup_s,
        "time_warmup_s": clock.warmup_s,
        "time_train_s": clock.warmup_s + clock.train_s,
        "time_train_steady_s": clock.train_s,
        "time_eval_s": clock.eval_s,
        "examples_per_s": steady_steps * cfg.batch_size / clock.train_s if clock.train_s > 0 else 0.0,
        "memory_rss_mb": _rss_mb(),  # after the run: flat across rungs if sessions are cleared
    }
    return TrainResult(model=model, history=recorder.history, final=final, summary=model_summary(model))
