"""Tiny generated MNIST files in the standard IDX format, for fast tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

IMAGES, LABELS = 2051, 2049


def write_idx(path: Path, array: np.ndarray, magic: int, *, gz: bool | None = None) -> bytes:
    """Write ``array`` (uint8) as an IDX file; gzipped when the name ends in .gz."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.name.endswith(".gz") if gz is None else gz:
        data = gzip.compress(data, compresslevel=1, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def learnable_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise images where class k lights up a 7x7 block at a class-specific place.

    Learnable in a few steps, so tests can tell training from no training.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 4)
        images[i, 7 * r : 7 * r + 7, 7 * c : 7 * c + 7] = 255
    return images, labels


def write_tiny_mnist(folder: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """The four gzipped IDX files of a tiny learnable MNIST in ``folder``/mnist."""
    x, y = learnable_digits(n_train, seed)
    xt, yt = learnable_digits(n_test, seed + 1)
    out = folder / "mnist"
    write_idx(out / "train-images-idx3-ubyte.gz", x, IMAGES)
    write_idx(out / "train-labels-idx1-ubyte.gz", y, LABELS)
    write_idx(out / "t10k-images-idx3-ubyte.gz", xt, IMAGES)
    write_idx(out / "t10k-labels-idx1-ubyte.gz", yt, LABELS)
    return folder
