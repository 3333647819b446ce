"""tf.data pipelines over in-memory arrays (the fast way: shuffle, batch, map, prefetch)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _normalize(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(x, tf.float32) / 255.0, y


def _augment(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Random flips and a random multiple of 90 degrees, per image (overhead views have no "up")."""
    x = tf.image.random_flip_left_right(x)
    x = tf.image.random_flip_up_down(x)
    k = tf.random.uniform([], 0, 4, dtype=tf.int32)
    return tf.image.rot90(x, k), y


def train_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, augment: bool = False) -> tf.data.Dataset:
    """Endless, reshuffled every epoch, whole batches only (so every step sees ``batch_size``)."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat()
    if augment:
        ds = ds.map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
    return (
        ds.batch(batch_size, drop_remainder=True)
        .map(_normalize, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """One pass over the split, in order; cached after the first pass."""
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(batch_size)
        .map(_normalize, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
