"""Datasets: readers for the standard file formats, and tf.data pipelines."""

from harness.data import (
    _mnist,  # noqa: F401  (registers "mnist")
    _planesnet,  # noqa: F401  (registers "planesnet")
)
from harness.data._base import (
    DATA_DIR_ENV,
    ArrayDataset,
    Split,
    list_datasets,
    load_dataset,
    register_dataset,
    resolve_data_dir,
)

__all__ = [
    "DATA_DIR_ENV",
    "ArrayDataset",
    "Split",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "resolve_data_dir",
]
