"""Precision and recall of the positive class (index 1) from 2-class logits.

Keras' Precision/Recall expect one probability per example; these take the
logits the models output and the integer labels, via the argmax.
"""

from __future__ import annotations

from typing import Any

import keras


class _PositiveClassCounts(keras.metrics.Metric):
    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.tp = self.add_variable(shape=(), initializer="zeros", name="tp")
        self.fp = self.add_variable(shape=(), initializer="zeros", name="fp")
        self.fn = self.add_variable(shape=(), initializer="zeros", name="fn")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        truth = keras.ops.cast(keras.ops.reshape(y_true, [-1]) == 1, "float32")
        guess = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1) == 1, "float32")
        self.tp.assign_add(keras.ops.sum(truth * guess))
        self.fp.assign_add(keras.ops.sum((1 - truth) * guess))
        self.fn.assign_add(keras.ops.sum(truth * (1 - guess)))

    def reset_state(self) -> None:
        for v in (self.tp, self.fp, self.fn):
            v.assign(0.0)


class PositiveClassPrecision(_PositiveClassCounts):
    def result(self) -> Any:
        return keras.ops.divide_no_nan(self.tp, self.tp + self.fp)


class PositiveClassRecall(_PositiveClassCounts):
    def result(self) -> Any:
        return keras.ops.divide_no_nan(self.tp, self.tp + self.fn)
