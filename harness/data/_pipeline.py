"""tf.data pipelines over in-memory arrays (the fast way: shuffle, batch, map, prefetch).

TensorFlow is imported inside the functions, so that ``import harness.data`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf


def _normalize(x: Any, y: Any) -> tuple[Any, Any]:
    """uint8 images to floats in [0, 1]; other inputs only to float32."""
    import tensorflow as tf

    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0, y
    return tf.cast(x, tf.float32), y


def _augment(x: Any, y: Any) -> tuple[Any, Any]:
    """A random symmetry of the square per image (overhead views have no "up"), on a whole batch.

    Flip left-right, flip up-down and transpose, each with probability 1/2 and drawn per image,
    give the 8 symmetries of a square (the 4 rotations and their mirrors) with equal probability,
    as flips + ``rot90(k)`` do; batched, they are three vectorised selects instead of a
    ``map`` over every image (per-image maps cost about a third of the training throughput here).
    """
    import tensorflow as tf

    x = tf.image.random_flip_left_right(x)
    x = tf.image.random_flip_up_down(x)
    if x.shape[1] != x.shape[2]:  # a transpose would change the shape: rotate by 180 degrees at most
        return x, y
    swap = tf.random.uniform([tf.shape(x)[0], 1, 1, 1]) < 0.5
    return tf.where(swap, tf.transpose(x, [0, 2, 1, 3]), x), y


def train_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, augment: bool = False) -> tf.data.Dataset:
    """Endless, reshuffled every epoch, whole batches only (so every step sees ``batch_size``)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat().batch(batch_size, drop_remainder=True)
    if augment:
        ds = ds.map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(_normalize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def eval_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """One pass over the split, in order; cached after the first pass."""
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(batch_size)
        .map(_normalize, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
