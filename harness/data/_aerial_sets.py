"""The registered whole-image detection datasets: Airbus' aircraft sample and the reference's layout.

Each loader reads big annotated images, splits them by image, and cuts the fixed eval tiles from
the held-out side (:func:`detection_dataset`); training tiles are streamed later by
``harness.data._tiles.tile_dataset``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from harness.data._aerial import (
    AIRBUS_DIR,
    AIRBUS_SPLIT_CSV,
    MAX_ROIS,
    TILE,
    AerialImages,
    AerialParams,
    AirbusParams,
    DetectionDataset,
    PlanespottingParams,
    read_airbus,
    read_planespotting,
    split_airbus,
)
from harness.data._base import DATA_DIR_ENV, register_dataset, resolve_data_dir
from harness.data._tiles import eval_tiles
from harness.errors import DataError


def detection_dataset(
    name: str, train: AerialImages, held_out: AerialImages, params: AerialParams, checksum: str, source: str
) -> DetectionDataset:
    """Train images to stream from, eval tiles cut from ``held_out``, and the held-out images for AP.

    Eval tiles come from every held-out image; ``params.eval_images`` only limits the full
    images kept for the final AP (full-image inference is the slow part).
    """
    x_test, y_test = eval_tiles(held_out, params.eval_tiles_per_gt_roi)
    return DetectionDataset(
        name=name,
        x_train=np.zeros((0, TILE, TILE, 3), dtype=np.uint8),
        y_train=np.zeros((0, MAX_ROIS, 4), dtype=np.float32),
        x_test=x_test,
        y_test=y_test,
        num_classes=0,
        checksum=checksum,
        source=source,
        train_images=train,
        eval_images=held_out.head(params.eval_images),
    )


# ----------------------------------------------------------------------------- Airbus and the reference layout


def load_airbus(data_dir: Path | None, params: AirbusParams | None = None) -> DetectionDataset:
    """Airbus' aircraft sample from ``data_dir/airbus_aircraft``, split by image as ``params.split`` says."""
    params = params or AirbusParams()
    resolved = resolve_data_dir(data_dir)
    if params.split == "source" and resolved is not None:
        split_csv = resolved / AIRBUS_DIR / AIRBUS_SPLIT_CSV
        if not split_csv.is_file():  # before decoding 2 GB of pixels only to refuse the split
            raise DataError(f"{split_csv}: split file not found; expected lines 'train|valid|extras,IMAGE.jpg'")
    images, checksum = read_airbus(resolved)
    train, held_out = split_airbus(images, params, resolved)
    source = f"{resolved / AIRBUS_DIR if resolved else AIRBUS_DIR} (split={params.split}, seed={params.split_seed})"
    return detection_dataset("airbus", train, held_out, params, checksum, source)


def load_planespotting(data_dir: Path | None, params: PlanespottingParams | None = None) -> DetectionDataset:
    """The reference's layout: ``data_dir/<folder>`` for training, ``data_dir/<folder>_eval`` held out."""
    params = params or PlanespottingParams()
    resolved = resolve_data_dir(data_dir)
    if resolved is None:
        raise DataError(
            f"planespotting has no download here: set {DATA_DIR_ENV} or --data-dir to a directory holding"
            f" {params.folder}/ and {params.folder}_eval/ (NAME.jpg + NAME.json pairs)"
        )
    train, train_sum = read_planespotting(resolved / params.folder)
    held_out, eval_sum = read_planespotting(resolved / f"{params.folder}_eval")
    checksum = hashlib.sha256(f"{train_sum}\0{eval_sum}".encode()).hexdigest()
    return detection_dataset("planespotting", train, held_out, params, checksum, str(resolved / params.folder))


@register_dataset("airbus", params=AirbusParams, tasks=("detection",))
def _load_airbus_registered(data_dir: Path | None, params: AirbusParams) -> DetectionDataset:
    return load_airbus(data_dir, params)


@register_dataset("planespotting", params=PlanespottingParams, tasks=("detection",))
def _load_planespotting_registered(data_dir: Path | None, params: PlanespottingParams) -> DetectionDataset:
    return load_planespotting(data_dir, params)
