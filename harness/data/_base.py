"""Dataset container and registry.

Datasets are small enough to live in memory as numpy arrays (MNIST, PlanesNet);
``harness.data._pipeline`` turns them into ``tf.data`` pipelines. A dataset is
registered with its parameter class (the ``data`` section of the config: a split,
for instance) and the tasks it serves; its loader takes those parameters.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import DataParams, params_class, register_params
from harness.errors import DataError
from harness.registry import Registry

DATA_DIR_ENV = "HARNESS_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """Train and test splits held in memory.

    For classification, images are ``uint8`` arrays of shape ``[N, H, W, C]`` and
    labels ``int64`` class indices of shape ``[N]``; other tasks say what their
    ``x`` and ``y`` hold (``num_classes`` is 0 where there are no classes).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    checksum: str  # sha256 over the source files, identifies the exact data
    source: str  # where it was read from, for humans

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if len(x) != len(y):
                raise DataError(f"{self.name} {split}: {len(x)} examples but {len(y)} labels in {self.source}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def subset(self, n_train: int | None, n_test: int | None) -> ArrayDataset:
        """The first ``n_train``/``n_test`` examples (None keeps the split whole)."""
        return dataclasses.replace(
            self,
            x_train=self.x_train[:n_train],
            y_train=self.y_train[:n_train],
            x_test=self.x_test[:n_test],
            y_test=self.y_test[:n_test],
        )


@dataclasses.dataclass(frozen=True)
class Split:
    """How to split a dataset into train and eval parts.

    ``kind="default"`` is the dataset's own choice (MNIST: the official
    train/test files; PlanesNet: by scene). Datasets that ship one fixed split
    accept only ``default``/``official``.
    """

    kind: str = "default"
    seed: int = 0
    eval_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 < self.eval_fraction < 1.0:
            raise DataError(f"eval_fraction must be in (0, 1), but got eval_fraction={self.eval_fraction}")


Loader = Callable[[Path | None, Any], ArrayDataset]


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    load: Loader
    synthetic: bool  # generated in memory: reads nothing from a data dir


DATASETS: Registry[DatasetEntry] = Registry("dataset", error=DataError)


def register_dataset(
    name: str,
    params: type[DataParams] = DataParams,
    tasks: tuple[str, ...] | None = None,
    synthetic: bool = False,
) -> Callable[[Loader], Loader]:
    """Decorator: register ``fn(data_dir, params) -> ArrayDataset`` under ``name``.

    ``params`` is the dataset's section of the config (a subclass of DataParams for
    a dataset with options of its own); ``tasks`` the tasks it serves (None: any);
    ``synthetic``: generated, never read from the data dir.
    """

    def wrap(fn: Loader) -> Loader:
        register_params("data", name, params, tasks)
        DATASETS.add(name, DatasetEntry(fn, synthetic))
        return fn

    return wrap


def list_datasets() -> list[str]:
    return DATASETS.names()


def is_synthetic(name: str) -> bool:
    """Whether dataset ``name`` is generated in memory (a data dir given for it is not read)."""
    return name in DATASETS and DATASETS.get(name).synthetic


def unread_data_dir(names: Iterable[str], data_dir: str | None) -> list[str]:
    """One warning per synthetic dataset among ``names`` when ``--data-dir`` was given: it reads nothing there."""
    if data_dir is None:
        return []
    return [
        f"warning: dataset {name} is synthetic and reads nothing from --data-dir {data_dir}"
        for name in dict.fromkeys(names)
        if is_synthetic(name)
    ]


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """The explicit directory, else ``$HARNESS_DATA_DIR``, else None."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else None


def load_dataset(params: DataParams | str, data_dir: str | Path | None = None) -> ArrayDataset:
    """Load a registered dataset (by its config section, or by name with default options)."""
    if isinstance(params, str):
        DATASETS.get(params)  # an unknown name is a DataError naming the valid ones
        params = params_class("data", params)(name=params)  # type: ignore[assignment]
    assert isinstance(params, DataParams)
    return DATASETS.get(params.name).load(resolve_data_dir(data_dir), params)
