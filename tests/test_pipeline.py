"""tf.data pipelines and the positive-class metrics."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data._pipeline import train_pipeline
from harness.train._metrics import PositiveClassPrecision, PositiveClassRecall


def test_augmentation_only_flips_and_rotates() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 20, 20, 3), dtype=np.uint8)
    y = np.arange(8)
    batch_x, batch_y = next(iter(train_pipeline(x, y, 8, seed=1, augment=True)))
    for image, label in zip(batch_x.numpy(), batch_y.numpy(), strict=True):
        original = x[label].astype(np.float32) / 255.0
        variants = [
            np.rot90(v, k)
            for v in (original, original[:, ::-1], original[::-1], original[::-1, ::-1])
            for k in range(4)
        ]
        assert any(np.array_equal(image, v) for v in variants)


def test_positive_class_precision_and_recall() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0])
    logits = np.array([[0, 1], [0, 1], [1, 0], [0, 1], [1, 0], [1, 0]], np.float32)  # tp 2, fn 1, fp 1
    precision, recall = PositiveClassPrecision("p"), PositiveClassRecall("r")
    precision.update_state(labels, logits)
    recall.update_state(labels, logits)
    assert float(precision.result()) == pytest.approx(2 / 3)
    assert float(recall.result()) == pytest.approx(2 / 3)
