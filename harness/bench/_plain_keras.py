"""The baseline: rung 6's CNN as a plain Keras script written the fast way.

Self-contained on purpose (no harness.models / harness.train): it is what a
user would write by hand, so the overhead benchmark compares against it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from harness.config import Config
from harness.data import ArrayDataset


@dataclasses.dataclass(frozen=True)
class PlainSpec:
    """The numbers the baseline shares with the harness run (the model itself is written below)."""

    iterations: int
    eval_every: int
    batch_size: int
    eval_batch_size: int
    steps_per_execution: int
    lr0: float
    lr1: float
    lr2: float
    seed: int
    train_subset: int | None
    test_subset: int | None

    @classmethod
    def from_config(cls, cfg: Config) -> PlainSpec:
        return cls(
            iterations=cfg.run.iterations,
            eval_every=cfg.run.eval_every,
            batch_size=cfg.run.batch_size,
            eval_batch_size=cfg.run.eval_batch_size,
            # same rule as the harness: an execution must not straddle an evaluation
            steps_per_execution=math.gcd(cfg.run.steps_per_execution, cfg.run.eval_every),
            lr0=cfg.optim.lr0,
            lr1=cfg.optim.lr1,
            lr2=cfg.optim.lr2,
            seed=cfg.run.seed,
            train_subset=cfg.data.train_subset,
            test_subset=cfg.data.test_subset,
        )


class Decay(keras.optimizers.schedules.LearningRateSchedule):
    """lr1 + lr0 * exp(-step / lr2)."""

    def __init__(self, lr0: float, lr1: float, lr2: float) -> None:
        self.lr0, self.lr1, self.lr2 = lr0, lr1, lr2

    def __call__(self, step: Any) -> Any:
        return self.lr1 + self.lr0 * keras.ops.exp(-keras.ops.cast(step, "float32") / self.lr2)

    def get_config(self) -> dict[str, float]:
        return {"lr0": self.lr0, "lr1": self.lr1, "lr2": self.lr2}


class SteadyClock(keras.callbacks.Callback):
    """Training time excluding the first execution (tracing) and every evaluation."""

    def __init__(self) -> None:
        super().__init__()
        self.warmup_s = self.train_s = 0.0
        self.warmup_steps = 0
        self._t = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if not self.warmup_steps:  # batch: index of the last step of the first execution
            now = time.perf_counter()
            self.warmup_s, self.warmup_steps, self._t = now - self._t, batch + 1, now

    def on_test_begin(self, logs: Any = None) -> None:
        self.train_s += time.perf_counter() - self._t


def build_model(input_shape: tuple[int, ...], num_classes: int, spec: PlainSpec) -> keras.Model:
    init: dict[str, Any] = {
        "kernel_initializer": keras.initializers.TruncatedNormal(stddev=0.1),
        "bias_initializer": keras.initializers.Constant(0.1),
    }
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Conv2D(4, 5, strides=1, padding="same", activation="relu", **init),
            keras.layers.Conv2D(8, 5, strides=2, padding="same", activation="relu", **init),
            keras.layers.Conv2D(12, 4, strides=2, padding="same", activation="relu", **init),
            keras.layers.Flatten(),
            keras.layers.Dense(200, activation="relu", **init),
            keras.layers.Dense(num_classes, **init),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=Decay(spec.lr0, spec.lr1, spec.lr2)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=spec.steps_per_execution,
    )
    return model


def _normalize(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(x, tf.float32) / 255.0, y


def _fresh(seed: int) -> None:
    """clear_session (and its gc) before the clock starts, as the harness path gets; same seed as the harness."""
    keras.backend.clear_session()  # it runs gc.collect() itself: a second one cost 0.24 s a run
    keras.utils.set_random_seed(seed)


def _result(start: float, model: keras.Model, history: Any, clock: SteadyClock, spec: PlainSpec) -> dict[str, float]:
    steady_steps = spec.iterations - clock.warmup_steps
    return {
        "wall_s": time.perf_counter() - start,
        "examples_per_s": steady_steps * spec.batch_size / clock.train_s if clock.train_s > 0 else 0.0,
        "time_warmup_s": clock.warmup_s,
        "time_train_steady_s": clock.train_s,
        "final_test_accuracy": float(history.history["val_accuracy"][-1]),
        "params_count": float(model.count_params()),
    }


def fit_tf_data(data: ArrayDataset, spec: PlainSpec) -> dict[str, float]:
    """In-memory tf.data, one ``fit`` with the harness's steps and evaluations; timed from data in memory."""
    _fresh(spec.seed)
    start = time.perf_counter()
    data = data.subset(spec.train_subset, spec.test_subset)
    train_ds = (
        tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        .shuffle(len(data.x_train), seed=spec.seed)
        .repeat()
        .batch(spec.batch_size, drop_remainder=True)
        .map(_normalize, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    test_ds = (
        tf.data.Dataset.from_tensor_slices((data.x_test, data.y_test))
        .batch(spec.eval_batch_size)
        .map(_normalize, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
    model = build_model(data.input_shape, data.num_classes, spec)
    clock = SteadyClock()
    history = model.fit(
        train_ds,
        epochs=spec.iterations // spec.eval_every,
        steps_per_epoch=spec.eval_every,
        validation_data=test_ds,
        callbacks=[clock],
        shuffle=False,  # train_ds shuffles itself
        verbose=0,
    )
    return _result(start, model, history, clock, spec)


def fit_numpy(data: ArrayDataset, spec: PlainSpec) -> dict[str, float]:
    """The same model and steps fed numpy arrays (``fit(x, y, batch_size=...)``), for comparison."""
    _fresh(spec.seed)
    start = time.perf_counter()
    data = data.subset(spec.train_subset, spec.test_subset)
    x_train = data.x_train.astype(np.float32) / 255.0
    x_test = data.x_test.astype(np.float32) / 255.0
    model = build_model(data.input_shape, data.num_classes, spec)
    clock = SteadyClock()
    history = model.fit(
        x_train,
        data.y_train,
        batch_size=spec.batch_size,
        epochs=spec.iterations // spec.eval_every,
        steps_per_epoch=spec.eval_every,
        validation_data=(x_test, data.y_test),
        validation_batch_size=spec.eval_batch_size,
        callbacks=[clock],
        verbose=0,
    )
    return _result(start, model, history, clock, spec)
