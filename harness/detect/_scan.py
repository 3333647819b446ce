"""Classifier as detector: slide a trained tile classifier over large images.

The talk's "real life is hard" demo: cut the image in overlapping tiles of the
classifier's input size, at a few scales, score every tile, keep the confident
ones and merge overlapping hits with non-max suppression (greedy, as ``tf.image``'s).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.detect._runs import PICTURE_SUFFIX, model_origin, run_scores, write_picture
from harness.errors import DataError, UserError
from harness.report import Document, Picture, Published, Section, Table, md_code, md_text, publish
from harness.tasks import non_max_suppression
from harness.tracking import TASK_TAG

# Most pixels an image to scan may have, checked from its header before decoding, so a small
# file claiming a huge image is refused. PlanesNet's scenes are about 1200x1000 and Airbus
# images (detect-boxes' extras) 2560x2560; this allows 8192x8192, below Pillow's own
# decompression-bomb warning.
MAX_IMAGE_PIXELS = 8192 * 8192


@dataclasses.dataclass(frozen=True)
class ScanSettings:
    scales: tuple[float, ...] = (0.8, 1.0, 1.25)  # image resize factors: larger objects need < 1
    stride: int = 10  # pixels between windows at each scale (half a 20-px tile: overlapping)
    threshold: float = 0.9  # minimum P(positive class) of a kept window
    iou: float = 0.3  # NMS: windows overlapping more than this with a better one are dropped
    batch_size: int = 2048

    def __post_init__(self) -> None:
        # nan passes every comparison, and a factor of 1e9 asks for an image of exabytes
        if not 1 <= len(self.scales) <= 16 or not all(0 < s <= 10 for s in self.scales):
            raise UserError(f"scales must be 1 to 16 resize factors in (0, 10], but got scales={self.scales}")
        if self.stride < 1:
            raise UserError(f"stride must be >= 1 pixel, but got stride={self.stride}")
        if not 0.0 < self.threshold < 1.0:
            raise UserError(f"threshold must be in (0, 1), but got threshold={self.threshold}")
        if not 0.0 < self.iou <= 1.0:
            raise UserError(f"iou must be in (0, 1], but got iou={self.iou}")


@dataclasses.dataclass(frozen=True)
class Box:
    x: float  # top-left corner and side, in pixels of the original image
    y: float
    w: float
    h: float
    score: float
    scale: float


def read_image(path: Path, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An RGB uint8 array; a clear error naming the file if it cannot be decoded or is too large.

    ``Image.open`` reads the header only: the size is checked against ``max_pixels``
    before ``convert`` decodes any pixel.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise DataError(
                    f"{path}: the image header says {width}x{height} ({width * height} pixels), more than the"
                    f" {max_pixels} pixels an image to scan may have; refused before decoding"
                )
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own check in Image.open, for headers far past max_pixels; the warning is an
        # exception only under a warnings filter of "error".
        raise DataError(
            f"{path}: the image header claims a size past Pillow's decompression-bomb limit ({exc});"
            f" expected at most {max_pixels} pixels, refused before decoding"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc})") from None


def _windows(image: np.ndarray, size: tuple[int, int], stride: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``size`` windows every ``stride`` pixels, and their top-left (row, col)."""
    h, w = size
    view = np.lib.stride_tricks.sliding_window_view(image, (h, w), axis=(0, 1))[::stride, ::stride]
    rows, cols = np.meshgrid(np.arange(view.shape[0]) * stride, np.arange(view.shape[1]) * stride, indexing="ij")
    tiles = view.reshape(-1, image.shape[2], h, w).transpose(0, 2, 3, 1)  # -> [N, h, w, C]
    return tiles, np.stack([rows.ravel(), cols.ravel()], axis=1)


def scan(model: Any, image: np.ndarray, settings: ScanSettings) -> list[Box]:
    """Score every window at every scale; return the boxes NMS keeps, best first."""
    from PIL import Image
    from scipy.special import softmax

    _, h, w, channels = model.input_shape
    if channels != 3:
        raise UserError(
            f"the model takes {h}x{w}x{channels} inputs; detect-scan needs a classifier of RGB tiles "
            "(for example a PlanesNet rung)"
        )
    candidates: list[np.ndarray] = []  # rows of [y1, x1, y2, x2, score, scale]
    for scale in settings.scales:
        resized = image
        if scale != 1.0:
            size = (max(w, round(image.shape[1] * scale)), max(h, round(image.shape[0] * scale)))
            resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        if resized.shape[0] < h or resized.shape[1] < w:
            continue
        tiles, corners = _windows(resized, (h, w), settings.stride)
        logits = model.predict(tiles.astype(np.float32) / 255.0, batch_size=settings.batch_size, verbose=0)
        scores = softmax(np.asarray(logits, dtype=np.float64), axis=-1)[:, 1]
        keep = scores >= settings.threshold
        y1, x1 = corners[keep, 0] / scale, corners[keep, 1] / scale
        candidates.append(
            np.stack([y1, x1, y1 + h / scale, x1 + w / scale, scores[keep], np.full(keep.sum(), scale)], axis=1)
        )
    found = np.concatenate(candidates) if candidates else np.zeros((0, 6))
    if not len(found):
        return []
    kept = non_max_suppression(found[:, :4], found[:, 4], settings.iou)
    return [
        Box(float(r[1]), float(r[0]), float(r[3] - r[1]), float(r[2] - r[0]), float(r[4]), float(r[5]))
        for r in found[kept]
    ]


def draw(image: np.ndarray, boxes: Sequence[Box]) -> Any:
    """The image with every box drawn and its score written beside it."""
    from PIL import Image, ImageDraw

    out = Image.fromarray(image)
    pen = ImageDraw.Draw(out)
    for b in boxes:
        pen.rectangle([b.x, b.y, b.x + b.w, b.y + b.h], outline=(255, 40, 40), width=2)
        pen.text((b.x, max(0.0, b.y - 11)), f"{b.score:.2f}", fill=(255, 255, 0))
    return out


def write_outputs(
    image_path: Path, image: np.ndarray, boxes: Sequence[Box], settings: ScanSettings, run_id: str, out_dir: Path
) -> tuple[Path, Path]:
    """The annotated image (JPEG) and the detections (JSON) of one scanned image."""
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = write_picture(draw(image, boxes), out_dir / f"{image_path.stem}_detections{PICTURE_SUFFIX}")
    js = out_dir / f"{image_path.stem}_detections.json"
    js.write_text(
        json.dumps(
            {
                "image": str(image_path),
                "model_run_id": run_id,
                "height": image.shape[0],
                "width": image.shape[1],
                "settings": dataclasses.asdict(settings),
                "count": len(boxes),
                "boxes": [dataclasses.asdict(b) for b in boxes],
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return picture, js


@dataclasses.dataclass(frozen=True)
class ScanResult:
    image: Path
    height: int
    width: int
    boxes: tuple[Box, ...]


def write_summary(
    out_dir: Path, run: Any, results: Sequence[ScanResult], settings: ScanSettings, command: str
) -> Published:
    """The summary report (``summary.md``, ``.html``, ``.csv``): the model (its run and what it scored on its own
    eval split), detections per image, and the annotated images.

    ``run`` is the MLflow run of the model. The scenes have no ground truth, so detections are
    counted, not split into true and false positives: the annotated images are the evidence.
    """
    ladder, rung, variant, seed = model_origin(run)
    rows, pictures = [], []
    for r in results:
        scores = [b.score for b in r.boxes]
        best = max(scores) if scores else None
        median = float(np.median(scores)) if scores else None
        file = f"{r.image.stem}_detections{PICTURE_SUFFIX}"
        rows.append((r.image.name, r.width, r.height, len(r.boxes), best, median, file))
        pictures.append(Picture(file, md_text(r.image.name), f"{md_text(r.image.name)}: {len(r.boxes)} detections"))
    table = Table(
        ["image", "size (px)", "detections", "max P(plane)", "median P(plane)"],
        [
            [
                md_text(name),
                f"{w}×{h}",
                str(n),
                "–" if best is None else f"{best:.3f}",
                "–" if med is None else f"{med:.3f}",
            ]
            for name, w, h, n, best, med, _ in rows
        ],
        align="lrrrr",
    )
    doc = Document(  # run, ladder, rung and variant names and the command are user text: md_text / md_code
        title=f"Detection scan — {md_text(run.data.tags.get('mlflow.runName', run.info.run_id))}",
        generated=f"Command: {md_code(command)}",
        lead=[
            f"Model: MLflow run {md_code(run.info.run_id)}, ladder {md_code(ladder)}, rung {md_code(rung)}, "
            f"variant {md_code(variant)}, seed {md_text(seed)}",
            f"On its own eval tiles: {run_scores(run, run.data.tags.get(TASK_TAG))}",
            f"Scan: scales {', '.join(f'{s:g}' for s in settings.scales)}, stride {settings.stride} px, "
            f"P(plane) ≥ {settings.threshold:g}, NMS IoU {settings.iou:g}",
        ],
        sections=[
            Section(
                "Images",
                table=table,
                after=[
                    "These scenes have no ground-truth boxes: a detection here is any window the classifier scored "
                    "above the threshold, plane or not. Look at the images to tell them apart."
                ],
                pictures=pictures,
            )
        ],
    )
    columns = ["image", "width", "height", "detections", "max P(plane)", "median P(plane)", "picture"]
    return publish(doc, out_dir, "summary", pd.DataFrame(rows, columns=columns))
