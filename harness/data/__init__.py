"""Datasets: readers for the standard file formats, their config sections, and tf.data pipelines."""

from harness.data import (
    _adult,  # noqa: F401  (registers "adult", "adult_synthetic")
    _aerial_sets,  # noqa: F401  (registers "airbus", "planespotting")
    _mnist,  # noqa: F401  (registers "mnist")
    _planesnet,  # noqa: F401  (registers "planesnet")
    _scenes,  # noqa: F401  (registers "aerial_synthetic")
    _synthetic,  # noqa: F401  (registers "synthetic_images")
)
from harness.data._aerial import AerialImages, AerialParams, DetectionDataset
from harness.data._base import (
    DATA_DIR_ENV,
    ArrayDataset,
    Split,
    is_synthetic,
    list_datasets,
    load_dataset,
    register_dataset,
    resolve_data_dir,
    unread_data_dir,
)
from harness.data._pipeline import array_batches, eval_pipeline, stream_batches, train_pipeline
from harness.data._planesnet import PlanesNetParams
from harness.data._synthetic import SyntheticImagesParams
from harness.data._tabular import TableColumn, TabularDataset
from harness.data._tiles import tile_dataset, tile_stream

__all__ = [
    "DATA_DIR_ENV",
    "AerialImages",
    "AerialParams",
    "ArrayDataset",
    "DetectionDataset",
    "PlanesNetParams",
    "Split",
    "SyntheticImagesParams",
    "TableColumn",
    "TabularDataset",
    "array_batches",
    "eval_pipeline",
    "is_synthetic",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "resolve_data_dir",
    "stream_batches",
    "tile_dataset",
    "tile_stream",
    "train_pipeline",
    "unread_data_dir",
]
