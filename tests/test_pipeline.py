"""tf.data pipelines and the positive-class metrics."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data._pipeline import train_pipeline
from harness.tasks._metrics import PositiveClassPrecision, PositiveClassRecall


def _symmetries(image: np.ndarray) -> list[np.ndarray]:
    """The 8 symmetries of a square image: 4 rotations, each mirrored or not."""
    return [np.rot90(m, k) for m in (image, image[:, ::-1]) for k in range(4)]


def test_augmentation_draws_every_symmetry_of_the_square_per_image() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (256, 20, 20, 3), dtype=np.uint8)
    y = np.arange(256)
    seen: set[int] = set()
    batch_x, batch_y = next(iter(train_pipeline(x, y, 256, seed=1, augment=True)))
    for image, label in zip(batch_x.numpy(), batch_y.numpy(), strict=True):
        variants = _symmetries(x[label].astype(np.float32) / 255.0)
        matches = [i for i, v in enumerate(variants) if np.array_equal(image, v)]
        assert len(matches) == 1  # random pixels: the 8 symmetries are distinct
        seen.add(matches[0])
    # one batch: drawn per image, not per batch; 256 draws miss one of the 8 with p ~ 1e-14
    assert seen == set(range(8))


def test_augmentation_of_non_square_images_keeps_their_shape() -> None:
    x = np.random.default_rng(0).integers(0, 256, (8, 20, 30, 3), dtype=np.uint8)
    batch_x, _ = next(iter(train_pipeline(x, np.arange(8), 8, seed=1, augment=True)))
    assert batch_x.shape == (8, 20, 30, 3)


def test_positive_class_precision_and_recall() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0])
    logits = np.array([[0, 1], [0, 1], [1, 0], [0, 1], [1, 0], [1, 0]], np.float32)  # tp 2, fn 1, fp 1
    precision, recall = PositiveClassPrecision("p"), PositiveClassRecall("r")
    precision.update_state(labels, logits)
    recall.update_state(labels, logits)
    assert float(precision.result()) == pytest.approx(2 / 3)
    assert float(recall.result()) == pytest.approx(2 / 3)
