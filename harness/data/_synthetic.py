"""Random images with random labels, registered as ``synthetic_images``: the input of throughput
benchmarks (ResNet-50 images/s on 224x224x3, as MLPerf and the TensorFlow benchmarks report it).

Nothing is read or downloaded, so a benchmark measures the accelerator, not a disk or a mirror.
The labels carry no signal: accuracy stays at chance, and is not what these runs are for.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from harness.config import DataParams, check
from harness.data._base import ArrayDataset, register_dataset
from harness.errors import ConfigError

CHANNELS = 3
MAX_EXAMPLES = 100_000  # per split
# Both splits live in memory, and tf.data's shuffle buffer holds a second copy of the train split.
MAX_BYTES = 4 * 2**30


@dataclasses.dataclass(frozen=True)
class SyntheticImagesParams(DataParams):
    name: str = "synthetic_images"
    image_size: int = 224  # side of each square RGB image, pixels
    classes: int = 1000
    train_examples: int = 256  # the train pipeline repeats them: a few batches suffice for throughput
    test_examples: int = 64
    image_seed: int = 0  # the images and labels themselves (not training; "seed" is the run's)

    def check(self) -> None:
        super().check()
        check(self.image_size, 32 <= self.image_size <= 1024, "image_size", "in 32..1024 (pixels)")
        check(self.classes, self.classes >= 2, "classes", ">= 2")
        for key in ("train_examples", "test_examples"):
            value = getattr(self, key)
            check(value, 1 <= value <= MAX_EXAMPLES, key, f"in 1..{MAX_EXAMPLES}")
        check(self.image_seed, self.image_seed >= 0, "image_seed", ">= 0")
        n = self.train_examples + self.test_examples
        size = n * self.image_size**2 * CHANNELS
        if size > MAX_BYTES:
            raise ConfigError(
                f"synthetic_images would hold {size / 2**30:.1f} GiB ({n} images of "
                f"{self.image_size}x{self.image_size}x{CHANNELS} bytes), more than {MAX_BYTES // 2**30} GiB; "
                f"lower train_examples={self.train_examples}, test_examples={self.test_examples} "
                f"or image_size={self.image_size}"
            )


@register_dataset("synthetic_images", params=SyntheticImagesParams, tasks=("classification",), synthetic=True)
def load_synthetic_images(data_dir: Path | None, params: SyntheticImagesParams | None = None) -> ArrayDataset:
    """Uniform random uint8 images and int64 labels in [0, classes); ``data_dir`` is not used.

    The same parameters give the same arrays. The splits come from independent streams of
    ``image_seed``, so changing ``train_examples`` leaves the test split as it was.
    """
    p = params or SyntheticImagesParams()
    shape = (p.image_size, p.image_size, CHANNELS)
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(p.image_seed).spawn(2))
    x_train, y_train = _images(train_rng, p.train_examples, shape, p.classes)
    x_test, y_test = _images(test_rng, p.test_examples, shape, p.classes)
    # A hash of the bytes, not of the parameters: numpy does not promise the same stream across versions.
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_test, y_test):
        digest.update(array.tobytes())
    size = f"{p.image_size}x{p.image_size}x{CHANNELS}"
    return ArrayDataset(
        name="synthetic_images",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=p.classes,
        checksum=digest.hexdigest(),
        source=f"synthetic_images({size}, {p.classes} classes, image_seed {p.image_seed})",
    )


def _images(rng: np.random.Generator, n: int, shape: tuple[int, ...], classes: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    y = rng.integers(0, classes, size=n, dtype=np.int64)
    return x, y
