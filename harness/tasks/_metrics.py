"""Binary metrics that are NaN where they are undefined, never 0.

Keras' AUC, Precision and Recall answer 0 where they are undefined: AUC with one
class among the labels, precision with no positive predictions, recall with no
positive labels (``divide_no_nan``). A 0 there reads as a terrible model; these
answer NaN instead, which :meth:`harness.tasks.Task.split_undefined` turns into
"undefined (the reason)": not logged, and said so in reports. Where they are
defined they return exactly what Keras' metrics return.

``PositiveClassPrecision`` / ``PositiveClassRecall`` take 2-class logits and the
integer labels (via the argmax) rather than one probability per example.
"""

from __future__ import annotations

from typing import Any

import keras

NAN = float("nan")


class DefinedAUC(keras.metrics.AUC):
    """Keras' AUC, NaN while the labels seen hold only one class (no ROC curve to integrate)."""

    def result(self) -> Any:
        # every threshold sees all examples: tp + fn = the positives, fp + tn = the negatives
        positives = self.true_positives[0] + self.false_negatives[0]
        negatives = self.false_positives[0] + self.true_negatives[0]
        return keras.ops.where((positives > 0) & (negatives > 0), super().result(), NAN)


class DefinedPrecision(keras.metrics.Precision):
    """Keras' Precision (one threshold), NaN while nothing was predicted positive."""

    def result(self) -> Any:
        predicted = self.true_positives[0] + self.false_positives[0]
        return keras.ops.where(predicted > 0, super().result(), NAN)


class DefinedRecall(keras.metrics.Recall):
    """Keras' Recall (one threshold), NaN while no label was positive."""

    def result(self) -> Any:
        positives = self.true_positives[0] + self.false_negatives[0]
        return keras.ops.where(positives > 0, super().result(), NAN)


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


def _ratio(hits: Any, total: Any) -> Any:
    return keras.ops.where(total > 0, keras.ops.divide_no_nan(hits, total), NAN)


class PositiveClassPrecision(_PositiveClassCounts):
    def result(self) -> Any:
        return _ratio(self.tp, self.tp + self.fp)


class PositiveClassRecall(_PositiveClassCounts):
    def result(self) -> Any:
        return _ratio(self.tp, self.tp + self.fn)
