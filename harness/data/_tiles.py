"""Training and eval tiles cut around the boxes of big aerial images (the reference's image mode).

The reference trains on 256x256 tiles centred near each plane (datagen.py, "image mode"):
``tiles_per_roi`` T is factored as floor(sqrt T) slices x ceil(sqrt T) offsets (166 -> 12x13 =
156 tiles per box); per slice one set of offsets, each a rounded truncated normal (sigma =
distmax*256/2, cut at 2 sigma, so at most distmax tile sides away), is shared by every box of the
image, and a tile is centred at box centre + offset. There are no explicit background tiles:
large offsets make the empty ones. Here tiles are numpy slices (the reference's crop_and_resize
at scale 1 is the same window), zero outside the image, so a Python generator makes them much
faster than a model trains on them. Augmentation is the reference's: one of the 8 symmetries of
the square per tile, and a channel drop plus hue rotation per tile.

A tile's ``rois`` are every box overlapping it (area > 0) in tile-side units, not clipped,
float32 ``[50, 4]`` padded with zero rows (a row is a box iff x2 - x1 > 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.data._aerial import MAX_ROIS, TILE, AerialImages, AerialParams
from harness.errors import DataError

if TYPE_CHECKING:
    import tensorflow as tf

EVAL_DISTMAX = 2.0  # the reference cuts eval tiles with distmax 2.0 whatever the training value
# The reference's 18 channel masks: 6 scale one or two RGB channels (the zeros) by U[0.5, 1), 12 are identity.
HUE_MASKS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]] + [[1, 1, 1]] * 12, dtype=np.float32
)
HUE_MAX_DELTA = 0.5  # tf.image.random_hue(max_delta=0.5): any hue rotation


def slices_and_offsets(tiles_per_roi: int) -> tuple[int, int]:
    """The reference's factorisation (almost_sqrt_factors): floor(sqrt T) slices, ceil(sqrt T) offsets each."""
    root = math.sqrt(tiles_per_roi)
    return math.floor(root), math.ceil(root)


def tile_rois(boxes_px: np.ndarray, y0: int, x0: int, tile: int = TILE) -> np.ndarray:
    """float32 ``[50, 4]``: the boxes overlapping the tile at ``(y0, x0)``, tile-relative, zero-padded.

    A box counts when the overlap has an area (touching edges do not), as the reference's
    boxintersect with min_intersect=0; coordinates are not clipped. With more than 50 the 50
    largest are kept (in their original order) instead of failing as the reference asserts.
    """
    out = np.zeros((MAX_ROIS, 4), dtype=np.float32)
    b = np.asarray(boxes_px, dtype=np.float64).reshape(-1, 4)
    hit = (b[:, 0] < x0 + tile) & (b[:, 2] > x0) & (b[:, 1] < y0 + tile) & (b[:, 3] > y0)
    hit &= (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    sel = b[hit]
    if len(sel) > MAX_ROIS:
        area = (sel[:, 2] - sel[:, 0]) * (sel[:, 3] - sel[:, 1])
        sel = sel[np.sort(np.argsort(-area, kind="stable")[:MAX_ROIS])]
    out[: len(sel)] = (sel - np.array([x0, y0, x0, y0], dtype=np.float64)) / tile
    return out


def cut_tile(image: np.ndarray, y0: int, x0: int, tile: int = TILE) -> np.ndarray:
    """uint8 ``[tile, tile, 3]``: the window at ``(y0, x0)``, zero where it leaves the image."""
    height, width = image.shape[:2]
    if 0 <= y0 <= height - tile and 0 <= x0 <= width - tile:
        return image[y0 : y0 + tile, x0 : x0 + tile].copy()
    out = np.zeros((tile, tile, image.shape[2]), dtype=image.dtype)
    ya, yb, xa, xb = max(y0, 0), min(y0 + tile, height), max(x0, 0), min(x0 + tile, width)
    if ya < yb and xa < xb:
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] = image[ya:yb, xa:xb]
    return out


def _offsets(rng: np.random.Generator, n: int, distmax: float) -> np.ndarray:
    """``n`` pixel offsets: round(truncated normal), sigma = distmax*TILE/2, redrawn beyond 2 sigma (as TF's)."""
    z = rng.standard_normal(n)
    while True:
        bad = np.abs(z) > 2.0
        if not bad.any():
            return np.round(z * (distmax * TILE / 2.0))
        z[bad] = rng.standard_normal(int(bad.sum()))


def _plan(
    images: AerialImages,
    n_slices: int,
    n_offsets: int,
    distmax: float,
    rng: np.random.Generator,
    shuffle_files: bool,
) -> Iterator[tuple[int, int, int, int]]:
    order = rng.permutation(len(images)) if shuffle_files else np.arange(len(images))
    for i in order:
        boxes = images.boxes[i].astype(np.float64)
        if not len(boxes):
            continue  # no box, no tile: as the reference, empty tiles come from large offsets only
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0
        for _ in range(n_slices):
            dx = _offsets(rng, n_offsets, distmax)
            dy = _offsets(rng, n_offsets, distmax)
            # Window [c - TILE/2, c + TILE/2) with c = box centre + offset; half pixels round up.
            x0 = np.floor(cx[:, None] + dx[None, :] - TILE / 2 + 0.5).astype(np.int64)
            y0 = np.floor(cy[:, None] + dy[None, :] - TILE / 2 + 0.5).astype(np.int64)
            for r in range(len(boxes)):
                for o in range(n_offsets):
                    yield int(i), r, int(y0[r, o]), int(x0[r, o])


def plan_tiles(
    images: AerialImages, tiles_per_roi: int, distmax: float, rng: np.random.Generator, shuffle_files: bool
) -> Iterator[tuple[int, int, int, int]]:
    """Where :func:`generate_tiles` cuts, as ``(image index, box index, y0, x0)``, drawing from ``rng`` alike.

    Order: image by image (shuffled iff ``shuffle_files``), slice by slice, box by box, offset
    by offset.
    """
    n_slices, n_offsets = slices_and_offsets(tiles_per_roi)
    return _plan(images, n_slices, n_offsets, distmax, rng, shuffle_files)


def generate_tiles(
    images: AerialImages, tiles_per_roi: int, distmax: float, rng: np.random.Generator, shuffle_files: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One pass of training tiles: ``(uint8 [256, 256, 3], float32 [50, 4] rois)`` per planned window."""
    for i, _, y0, x0 in plan_tiles(images, tiles_per_roi, distmax, rng, shuffle_files):
        yield cut_tile(images.images[i], y0, x0), tile_rois(images.boxes[i], y0, x0)


def eval_tiles(
    images: AerialImages, tiles_per_roi: int, distmax: float = EVAL_DISTMAX, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed eval tiles: 1 slice x ``tiles_per_roi`` offsets around each box, images in order.

    As the reference's eval (1x20, distmax 2.0, no augmentation, no shuffle), but seeded, so
    every run of a ladder is scored on the same tiles. uint8 ``[M, 256, 256, 3]`` and float32
    ``[M, 50, 4]`` with M = boxes x ``tiles_per_roi``; written in place to keep the peak memory
    at one copy.
    """
    rng = np.random.default_rng(seed)
    m = images.num_boxes * tiles_per_roi
    x = np.zeros((m, TILE, TILE, 3), dtype=np.uint8)
    y = np.zeros((m, MAX_ROIS, 4), dtype=np.float32)
    for j, (i, _, y0, x0) in enumerate(_plan(images, 1, tiles_per_roi, distmax, rng, shuffle_files=False)):
        x[j] = cut_tile(images.images[i], y0, x0)
        y[j] = tile_rois(images.boxes[i], y0, x0)
    return x, y


def orient(tile: np.ndarray, rois: np.ndarray, k: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 symmetries of the square: optional left-right flip, then ``np.rot90`` k times.

    Boxes (tile-side units) move with the pixels about the tile centre: a flip maps x to 1 - x,
    a counter-clockwise quarter turn maps (x, y) to (y, 1 - x); x1 < x2, y1 < y2 are kept.
    Zero padding rows stay zero.
    """
    # Move whole pixels (one 3-byte item each, not 3 strided bytes): the transposing copy is much faster.
    pixels = np.ascontiguousarray(tile).view(np.dtype((np.void, tile.shape[2] * tile.itemsize))).reshape(tile.shape[:2])
    pixels = np.ascontiguousarray(np.rot90(pixels[:, ::-1] if flip else pixels, k % 4))
    t = pixels.view(tile.dtype).reshape(pixels.shape + tile.shape[2:])
    out = np.array(rois, dtype=np.float32)
    real = out[:, 2] - out[:, 0] > 0
    x1, y1, x2, y2 = (out[real, c] for c in range(4))
    if flip:
        x1, x2 = 1.0 - x2, 1.0 - x1
    for _ in range(k % 4):
        x1, y1, x2, y2 = y1, 1.0 - x2, y2, 1.0 - x1
    out[real] = np.stack([x1, y1, x2, y2], axis=1)
    return t, out


def _hue_draw(rng: np.random.Generator) -> tuple[np.ndarray, np.float32]:
    """Per-channel factors (one of the 18 masks, dropped channels scaled by U[0.5, 1)) and a hue delta."""
    mask = HUE_MASKS[rng.integers(len(HUE_MASKS))]
    strength = rng.uniform(0.5, 1.0, 3).astype(np.float32)
    factors = mask + (1.0 - mask) * strength
    return factors.astype(np.float32), np.float32(rng.uniform(-HUE_MAX_DELTA, HUE_MAX_DELTA))


def _apply_hue(tile: Any, rois: Any, factors: Any, delta: Any) -> tuple[Any, Any]:
    import tensorflow as tf

    scaled = tf.cast(tf.cast(tile, tf.float32) * factors, tf.uint8)  # truncates, as the reference
    return tf.image.adjust_hue(scaled, delta), rois  # random_hue(0.5) is adjust_hue with delta ~ U(-0.5, 0.5)


def hue_numpy(tile: np.ndarray, factors: np.ndarray, delta: float) -> np.ndarray:
    """``_apply_hue`` in numpy: the channel scaling (truncated to uint8, as the reference), then the hue turned by
    ``delta`` in HSV (matplotlib's conversions) and back to uint8 as ``tf.image.convert_image_dtype`` does."""
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    scaled = (tile.astype(np.float32) * factors).astype(np.uint8)
    hsv = rgb_to_hsv(scaled.astype(np.float32) / np.float32(255.0))
    hsv[..., 0] = (hsv[..., 0] + delta) % 1.0
    return (hsv_to_rgb(hsv) * 255.5).astype(np.uint8)  # x * (255 + 0.5), truncated: TensorFlow's float -> uint8


def _check_boxes(images: AerialImages) -> None:
    if images.num_boxes == 0:
        raise DataError(f"no boxes in the {len(images)} training image(s): there is nothing to cut tiles around")


def _drawn(images: AerialImages, params: AerialParams, augment: bool, seed: int) -> Iterator[tuple[Any, ...]]:
    """Endless passes of :func:`generate_tiles`, each tile oriented iff asked, with its hue draw iff asked:
    what :func:`tile_dataset` and :func:`tile_stream` share (every draw from numpy, seeded by ``seed``)."""
    rotate = augment and params.data_rnd_orientation
    hue = augment and params.data_rnd_hue
    gen_seq, aug_seq = np.random.SeedSequence(seed).spawn(2)
    gen_rng, aug_rng = np.random.default_rng(gen_seq), np.random.default_rng(aug_seq)
    while True:
        passed = generate_tiles(images, params.data_tiles_per_gt_roi, params.data_rnd_distmax, gen_rng, params.shuffle)
        for tile, rois in passed:
            if rotate:
                tile, rois = orient(tile, rois, int(aug_rng.integers(4)), bool(aug_rng.integers(2)))
            yield (tile, rois, *_hue_draw(aug_rng)) if hue else (tile, rois)


def tile_dataset(images: AerialImages, params: AerialParams, augment: bool, seed: int) -> tf.data.Dataset:
    """Endless stream of ``(tile uint8 [256, 256, 3], rois float32 [50, 4])``, not batched.

    Passes of :func:`generate_tiles` (image order shuffled iff ``params.shuffle``, new draws
    each pass), then, iff ``augment`` and ``data_rnd_orientation``, a random symmetry per tile;
    then ``shuffle(shuffle_buf)`` iff ``params.shuffle``; then, iff ``augment`` and
    ``data_rnd_hue``, the reference's hue change per tile. Every random draw comes from numpy
    generators seeded by ``seed`` (hue values ride along with their tile), so a seed gives the
    same stream.
    """
    import tensorflow as tf

    _check_boxes(images)
    hue = augment and params.data_rnd_hue
    spec: tuple[tf.TensorSpec, ...] = (
        tf.TensorSpec([TILE, TILE, 3], tf.uint8),
        tf.TensorSpec([MAX_ROIS, 4], tf.float32),
    )
    if hue:
        spec += (tf.TensorSpec([3], tf.float32), tf.TensorSpec([], tf.float32))
    ds = tf.data.Dataset.from_generator(lambda: _drawn(images, params, augment, seed), output_signature=spec)
    if params.shuffle:
        ds = ds.shuffle(params.shuffle_buf, seed=seed)
    if hue:
        ds = ds.map(_apply_hue, num_parallel_calls=tf.data.AUTOTUNE)
    return ds


def _shuffled(items: Iterator[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """tf.data's ``shuffle(size)``: fill a buffer, then emit a random element and put the next in its place."""
    buffer = [item for _, item in zip(range(size), items, strict=False)]
    for item in items:
        i = int(rng.integers(len(buffer)))
        yield buffer[i]
        buffer[i] = item
    yield from (buffer[i] for i in rng.permutation(len(buffer)))


def tile_stream(images: AerialImages, params: AerialParams, augment: bool, seed: int) -> Iterator[tuple[Any, Any]]:
    """:func:`tile_dataset`'s stream in numpy, for a machine without TensorFlow: the same tiles, orientations and
    hue draws; the shuffle buffer (drawing from its own seeded generator) and the hue change in numpy."""
    _check_boxes(images)  # now, not at the first tile
    drawn = _drawn(images, params, augment, seed)
    if params.shuffle:
        drawn = _shuffled(drawn, params.shuffle_buf, np.random.default_rng([seed, 2]))
    return ((hue_numpy(tile, *hue), rois) if hue else (tile, rois) for tile, rois, *hue in drawn)
