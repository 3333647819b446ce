"""Metrics computed on evaluation batches only, under Keras' own ``fit``.

Keras updates every compiled metric on every training step as well as at evaluation, and ``compile``
has no evaluation-only list. A metric the user reads only at evaluation (the YOLO IoU: the reference
computes it in EVAL only, and it costs more per batch than the rest of the step's metrics together)
is wrapped in :class:`EvalOnly`, whose update runs under a ``tf.cond`` on a gate variable: the
skipped branch costs nothing, in graph mode and under XLA alike. :class:`EvalGate`, a callback, shuts
the gates when a training epoch begins and opens them when an evaluation begins and when training ends
(so that a later ``model.evaluate`` computes them too).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class EvalOnly(keras.metrics.Metric):
    """``inner``, updated only while its gate is open; its result is ``inner``'s, under its name."""

    def __init__(self, inner: keras.metrics.Metric) -> None:
        super().__init__(name=inner.name)
        self.inner = inner
        self.gate = self.add_variable(shape=(), initializer="ones", name="gate", aggregation="only_first_replica")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        def update() -> Any:
            self.inner.update_state(y_true, y_pred, sample_weight)
            return tf.constant(True)

        tf.cond(self.gate > 0, update, lambda: tf.constant(False))

    def result(self) -> Any:
        return self.inner.result()

    def reset_state(self) -> None:
        # Keras resets every metric right after on_test_begin: the gate must survive it
        self.inner.reset_state()


class EvalGate(keras.callbacks.Callback):
    """Shuts the gates of ``metrics`` for training epochs, opens them for evaluation and after training."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[EvalOnly] = []

    def wrap(self, metric: keras.metrics.Metric) -> EvalOnly:
        """``metric``, evaluation-only under this gate."""
        self.metrics.append(EvalOnly(metric))
        return self.metrics[-1]

    def _set(self, value: float) -> None:
        for m in self.metrics:
            m.gate.assign(value)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._set(0.0)

    def on_test_begin(self, logs: Any = None) -> None:
        self._set(1.0)

    def on_train_end(self, logs: Any = None) -> None:
        self._set(1.0)
