"""Deterministic synthetic aerial scenes (textured ground, aircraft-like shapes), registered as
``aerial_synthetic``: the detection path end to end in seconds without any download, a smoke test
of the plumbing, not a benchmark.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from harness.config import check
from harness.data._aerial import AerialImages, AerialParams, DetectionDataset, square
from harness.data._aerial_sets import detection_dataset
from harness.data._base import register_dataset

PLANE_SIZES = (20.0, 80.0)  # length (and about the span) of a synthetic plane, pixels
SYNTHETIC_EVAL_FRACTION = 0.25


# ----------------------------------------------------------------------------- synthetic scenes


@dataclasses.dataclass(frozen=True)
class SyntheticSceneParams(AerialParams):
    """Synthetic scenes, sized so that the smoke scale (load, a few steps, eval) takes seconds."""

    name: str = "aerial_synthetic"
    images: int = 8  # 3/4 train, 1/4 held out
    image_size: int = 512  # side of each square scene, pixels
    planes: int = 6  # per image, on average (at least one each)
    scene_seed: int = 0  # the scenes themselves (not training)
    data_tiles_per_gt_roi: int = 16  # 4x4: hundreds of tiles per pass instead of tens of thousands
    shuffle_buf: int = 500  # a few passes' worth; 3000 tiles would hold 600 MB for a toy
    eval_tiles_per_gt_roi: int = 2

    def check(self) -> None:
        super().check()
        check(self.images, self.images >= 2, "images", ">= 2 (a train and a held-out side)")
        check(self.image_size, self.image_size >= 128, "image_size", ">= 128 (pixels; planes are up to 80)")
        check(self.planes, self.planes >= 1, "planes", ">= 1")


def load_aerial_synthetic(data_dir: Path | None, params: SyntheticSceneParams | None = None) -> DetectionDataset:
    """Synthetic scenes (``data_dir`` is not used): the first 3/4 train, the rest held out."""
    params = params or SyntheticSceneParams()
    scenes = synthetic_scenes(params.images, params.image_size, params.planes, params.scene_seed)
    n_eval = min(max(round(len(scenes) * SYNTHETIC_EVAL_FRACTION), 1), len(scenes) - 1)
    train = scenes.take(range(len(scenes) - n_eval))
    held_out = scenes.take(range(len(scenes) - n_eval, len(scenes)))
    digest = hashlib.sha256()
    for image, boxes in zip(scenes.images, scenes.boxes, strict=True):
        digest.update(image.tobytes())
        digest.update(boxes.tobytes())
    source = f"synthetic scenes (images={params.images}, size={params.image_size}, seed={params.scene_seed})"
    return detection_dataset("aerial_synthetic", train, held_out, params, digest.hexdigest(), source)


def synthetic_scenes(n_images: int, image_size: int, planes: int, seed: int) -> AerialImages:
    """Deterministic scenes: textured ground with tarmac strips, aircraft-like shapes, square boxes.

    A plane is a fuselage, swept wings and a tail, 20-80 px long, any heading, light or dark;
    its box is the square of side max(w, h) around the drawn shape, as for real annotations.
    Boxes lie inside the image and planes do not overlap. Same arguments, same bytes.
    """
    rng = np.random.default_rng(seed)
    names, images, boxes = [], [], []
    for i in range(n_images):
        canvas = Image.fromarray(_ground(rng, image_size))
        draw = ImageDraw.Draw(canvas)
        placed: list[tuple[float, float, float]] = []  # centre x, centre y, radius
        rects: list[tuple[float, ...]] = []
        for _ in range(1 + int(rng.poisson(planes - 1))):
            outline = _plane_outline(rng, float(rng.uniform(*PLANE_SIZES)))
            # The box around the shape at the origin: pixels cover [j, j + 1), hence the + 1.
            box = np.array(square((*outline.min(axis=0), *(outline.max(axis=0) + 1))))
            reach = float(np.abs(box).max())  # the box stays inside the image when the centre is this far in
            spot = _free_spot(rng, image_size, reach, placed)
            if spot is None:
                continue
            placed.append((*spot, reach * math.sqrt(2.0)))
            colour = _plane_colour(rng)
            points = outline + np.array(spot)
            for part in np.split(points, len(points) // 4):
                draw.polygon([(float(x), float(y)) for x, y in part], fill=colour)
            rects.append(tuple(box + np.array([*spot, *spot])))
        names.append(f"scene{i:03d}")
        images.append(np.asarray(canvas, dtype=np.uint8))
        boxes.append(np.array(rects, dtype=np.float32).reshape(-1, 4))
    return AerialImages(names=tuple(names), images=tuple(images), boxes=tuple(boxes))


def _ground(rng: np.random.Generator, size: int) -> np.ndarray:
    """Grass, soil or concrete: a base colour, smooth blotches, fine grain, and 1-3 tarmac strips."""
    palette = np.array([[96, 112, 72], [140, 120, 90], [150, 150, 145], [110, 105, 95]], dtype=np.float32)
    base = palette[rng.integers(len(palette))] + rng.uniform(-15, 15, 3)
    coarse_side = size // 32 + 2
    shade = rng.normal(0, 35, (coarse_side, coarse_side, 1)) + rng.normal(0, 10, (coarse_side, coarse_side, 3))
    coarse = np.clip(128 + shade, 0, 255).astype(np.uint8)
    blotches = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR), np.float32)
    ground = base + (blotches - 128) * 0.5 + rng.normal(0, 6, (size, size, 1))
    canvas = Image.fromarray(np.clip(ground, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        width, angle = float(rng.uniform(30, 90)), float(rng.uniform(0, math.pi))
        cx, cy = rng.uniform(0, size, 2)
        d = np.array([math.cos(angle), math.sin(angle)]) * size * 1.5
        n = np.array([-math.sin(angle), math.cos(angle)]) * width / 2
        c = np.array([cx, cy])
        strip = [tuple(p) for p in (c - d - n, c + d - n, c + d + n, c - d + n)]
        grey = int(rng.integers(60, 110))
        draw.polygon(strip, fill=(grey, grey, grey + int(rng.integers(0, 8))))
    return np.asarray(canvas, dtype=np.uint8)


def _plane_outline(rng: np.random.Generator, length: float) -> np.ndarray:
    """Quads (4 points each, in drawing order) of a plane centred at 0, nose along the heading."""
    f = length * rng.uniform(0.05, 0.08)  # fuselage half-width
    span = length * rng.uniform(0.8, 1.05) / 2  # half wingspan
    root, sweep, chord = length * rng.uniform(0.0, 0.12), length * rng.uniform(0.1, 0.25), length * 0.12
    tail = length * rng.uniform(0.15, 0.22)  # half span of the tail plane
    h = length / 2
    quads = [
        [(h, -f * 0.6), (h, f * 0.6), (-h, f), (-h, -f)],  # fuselage
        [(root, f), (root - sweep, span), (root - sweep - chord, span), (root - chord * 1.5, f)],  # wings
        [(root, -f), (root - sweep, -span), (root - sweep - chord, -span), (root - chord * 1.5, -f)],
        [(-h * 0.7, f), (-h * 0.95, tail), (-h, tail), (-h, f)],  # tail plane
        [(-h * 0.7, -f), (-h * 0.95, -tail), (-h, -tail), (-h, -f)],
    ]
    heading = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(heading), -math.sin(heading)], [math.sin(heading), math.cos(heading)]])
    points: np.ndarray = np.array(quads, dtype=np.float64).reshape(-1, 2) @ rot.T
    return points


def _free_spot(
    rng: np.random.Generator, size: int, reach: float, placed: list[tuple[float, float, float]]
) -> tuple[float, float] | None:
    """A centre ``reach`` inside the borders whose disc clears the planes placed so far (None after 50 tries)."""
    if 2 * reach >= size:
        return None
    radius = reach * math.sqrt(2.0)
    for _ in range(50):
        x, y = rng.uniform(reach, size - reach, 2)
        if all(math.hypot(x - px, y - py) > radius + pr for px, py, pr in placed):
            return float(x), float(y)
    return None


def _plane_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """Mostly white or light grey liveries with a tint, sometimes a dark one."""
    level = rng.uniform(190, 250) if rng.random() < 0.8 else rng.uniform(40, 90)
    r, g, b = np.clip(level + rng.uniform(-20, 20, 3), 0, 255).astype(int)
    return int(r), int(g), int(b)


@register_dataset("aerial_synthetic", params=SyntheticSceneParams, tasks=("detection",), synthetic=True)
def _load_aerial_synthetic_registered(data_dir: Path | None, params: SyntheticSceneParams) -> DetectionDataset:
    return load_aerial_synthetic(data_dir, params)
