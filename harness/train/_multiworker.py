"""``fit`` for MultiWorkerMirroredStrategy, which Keras 3's own ``fit`` cannot drive.

Keras 3 (through 3.15) fails under MultiWorkerMirroredStrategy before the first
step: its symbolic build and its per-step reduction call ``strategy.reduce`` on
structures and scalars it cannot take (keras-team/keras#20585, open). This is the
same training, written as the custom loop TensorFlow documents for the strategy,
with the same compiled model, optimiser, task loss and metrics, and the same
Keras callbacks (Clock, EvalRecorder, StopOnSignal, a driver's extras) called at
the same points as ``fit`` calls them, so a multi-worker run logs the same rows.

The loss is scaled as Keras scales it (a per-replica mean divided by the number
of replicas, so the all-reduced gradient is the global batch's); metrics are
updated per replica and read in cross-replica context, where their variables
(synchronised on read) sum over every worker: every worker logs the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import keras
import tensorflow as tf


def fit_multiworker(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    test_ds: tf.data.Dataset,
    strategy: tf.distribute.Strategy,
    *,
    epochs: int,
    steps_per_epoch: int,
    steps_per_execution: int,
    loss: keras.losses.Loss,
    metrics: Callable[[], list[keras.metrics.Metric]],
    callbacks: Sequence[keras.callbacks.Callback],
    eval_only: Collection[str] = (),
) -> None:
    """Train ``model`` (compiled under ``strategy``) as ``model.fit`` would, calling ``callbacks``;
    the metrics named in ``eval_only`` are computed at evaluation only (``fit`` computes and drops them)."""
    replicas = strategy.num_replicas_in_sync
    scale = 1.0 if getattr(loss, "reduction", None) == "sum" else 1.0 / replicas
    optimizer = model.optimizer
    with strategy.scope():
        train_loss = keras.metrics.Mean(name="loss")
        val_loss = keras.metrics.Mean(name="loss")
        train_metrics = [train_loss, *(m for m in metrics() if m.name not in eval_only)]
        val_metrics = [val_loss, *metrics()]
        optimizer.build(model.trainable_variables)
    variables = model.trainable_variables

    def replica_step(x: Any, y: Any) -> None:
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            value = loss(y, pred)
            total = (value + (tf.add_n(model.losses) if model.losses else 0.0)) * scale
            scaled = optimizer.scale_loss(total)
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        train_loss.update_state(value)
        for m in train_metrics[1:]:
            m.update_state(y, pred)

    def replica_eval(x: Any, y: Any) -> None:
        pred = model(x, training=False)
        val_loss.update_state(loss(y, pred))
        for m in val_metrics[1:]:
            m.update_state(y, pred)

    @tf.function
    def train_execution(iterator: Any) -> None:
        for _ in tf.range(steps_per_execution):
            x, y = next(iterator)
            strategy.run(replica_step, args=(x, y))

    @tf.function
    def eval_batch(x: Any, y: Any) -> None:
        strategy.run(replica_eval, args=(x, y))

    iterator = iter(strategy.experimental_distribute_dataset(train_ds))
    test = strategy.experimental_distribute_dataset(test_ds)
    cbs = keras.callbacks.CallbackList(list(callbacks), model=model)
    model.stop_training = False
    cbs.on_train_begin()
    for epoch in range(epochs):
        for m in train_metrics:
            m.reset_state()
        cbs.on_epoch_begin(epoch)
        for begin in range(0, steps_per_epoch, steps_per_execution):
            cbs.on_train_batch_begin(begin)
            train_execution(iterator)
            cbs.on_train_batch_end(begin + steps_per_execution - 1, {})
            if model.stop_training:
                break
        logs = _results(train_metrics)
        for m in val_metrics:
            m.reset_state()
        cbs.on_test_begin()
        for batch, (x, y) in enumerate(test):
            cbs.on_test_batch_begin(batch)
            eval_batch(x, y)
            cbs.on_test_batch_end(batch, {})
        val = _results(val_metrics)
        cbs.on_test_end(val)
        logs.update({f"val_{k}": v for k, v in val.items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)


def _results(metrics: Sequence[keras.metrics.Metric]) -> dict[str, float]:
    return {m.name: float(m.result()) for m in metrics}
