"""Input pipelines over in-memory arrays: tf.data where TensorFlow is installed (the fast way: shuffle,
batch, map, prefetch), else a ``keras.utils.PyDataset`` of the same batches, so that a run on JAX or
PyTorch trains on a machine without TensorFlow (the GPU machine this project can borrow).

TensorFlow and Keras are imported inside the functions, so that ``import harness.data`` stays light.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import _framework

if TYPE_CHECKING:
    import keras


def _normalize(x: Any, y: Any) -> tuple[Any, Any]:
    """uint8 images to floats in [0, 1]; other integers (a table's category indices) as they are; the rest
    to float32. ``x`` may be a dict of named inputs (a table's columns): each one alike."""
    import tensorflow as tf

    def scale(t: Any) -> Any:
        if t.dtype == tf.uint8:
            return tf.cast(t, tf.float32) / 255.0
        return t if t.dtype.is_integer else tf.cast(t, tf.float32)

    return tf.nest.map_structure(scale, x), y


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


def train_pipeline(x: Any, y: np.ndarray, batch_size: int, seed: int, augment: bool = False) -> Any:
    """Endless, reshuffled every epoch, whole batches only (so every step sees ``batch_size``). ``x``: an
    array, or a dict of named input arrays (a table's columns; not augmented)."""
    if not _framework.installed("tensorflow"):
        return array_batches(x, y, batch_size, seed=seed, augment=augment)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat().batch(batch_size, drop_remainder=True)
    if augment:
        ds = ds.map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(_normalize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def eval_pipeline(x: Any, y: np.ndarray, batch_size: int) -> Any:
    """One pass over the split, in order; cached after the first pass."""
    if not _framework.installed("tensorflow"):
        return array_batches(x, y, batch_size)
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(batch_size)
        .map(_normalize, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )


def normalize(x: Any) -> Any:
    """``_normalize`` in numpy: uint8 images to floats in [0, 1]; other integers as they are; the rest
    to float32; a dict of named inputs each alike."""
    if isinstance(x, dict):
        return {k: normalize(v) for k, v in x.items()}
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32, copy=False)


def _rows(x: Any, index: Any) -> Any:
    """Rows ``index`` of an array, or of every array of a dict of named inputs."""
    return {k: v[index] for k, v in x.items()} if isinstance(x, dict) else x[index]


def _length(x: Any) -> int:
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def augment_batch(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``_augment`` in numpy: per image, flip left-right, flip up-down and (square images) transpose, each
    with probability 1/2: the 8 symmetries of a square with equal probability."""
    n = len(x)
    x = np.where(rng.random((n, 1, 1, 1)) < 0.5, x[:, :, ::-1], x)
    x = np.where(rng.random((n, 1, 1, 1)) < 0.5, x[:, ::-1], x)
    if x.shape[1] == x.shape[2]:
        x = np.where(rng.random((n, 1, 1, 1)) < 0.5, x.transpose(0, 2, 1, 3), x)
    return x


def array_batches(
    x: Any, y: np.ndarray, batch_size: int, seed: int | None = None, augment: bool = False
) -> keras.utils.PyDataset:
    """The batches of ``train_pipeline`` (``seed`` given: endless, a new permutation every pass, whole
    batches only, optionally augmented) or of ``eval_pipeline`` (one pass in order), as a PyDataset.
    ``x``: an array, or a dict of named input arrays of one length (a table's columns)."""
    import keras

    n = _length(x)

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.per_pass = n // batch_size if seed is not None else -(-n // batch_size)
            self._order: tuple[int, np.ndarray] | None = None

        @property
        def num_batches(self) -> int | None:
            return None if seed is not None else self.per_pass

        def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
            if seed is None:
                rows = slice(index * batch_size, (index + 1) * batch_size)
                return normalize(_rows(x, rows)), y[rows]
            # the pass and the place in it from the index alone: the same batches however Keras iterates
            n_pass, i = divmod(index, self.per_pass)
            if self._order is None or self._order[0] != n_pass:
                self._order = (n_pass, np.random.default_rng([seed, n_pass]).permutation(n))
            take = self._order[1][i * batch_size : (i + 1) * batch_size]
            xb = normalize(_rows(x, take))
            if augment:
                xb = augment_batch(xb, np.random.default_rng([seed, n_pass, i, 1]))
            return xb, y[take]

    return ArrayBatches()


def stream_batches(examples: Iterator[tuple[np.ndarray, np.ndarray]], batch_size: int) -> keras.utils.PyDataset:
    """Endless batches of ``batch_size`` consecutive ``(x, y)`` of ``examples`` (an endless, seeded stream such
    as the YOLO tiles), x normalized as ``train_pipeline``'s, as a PyDataset. A stream has no random access:
    batches come in the order Keras asks for them, which is index order without worker processes."""
    import keras

    class StreamBatches(keras.utils.PyDataset):
        @property
        def num_batches(self) -> int | None:
            return None

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            xs, ys = zip(*(next(examples) for _ in range(batch_size)), strict=True)
            return normalize(np.stack(xs)), np.stack(ys).astype(np.float32)

    return StreamBatches()
