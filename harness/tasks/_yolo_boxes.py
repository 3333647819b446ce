"""YOLO box targets and box scoring, in numpy, after the reference (tensorflow-planespotting).

The targets and the IoU follow ``trainer_yolo/utils_box.py`` (see ``../shared/reference/planespotting.md``
§1.4, §2, §4) so that a harness model is trained and scored on the same terms as the talk's; the numpy
IoU is the oracle the TensorFlow metric is tested against. Whole-image inference (overlapping tiles,
non-max suppression across tile borders) and COCO AP@0.5 are ours: the reference had neither.

Units: a tile's boxes are x1, y1, x2, y2 in units of the tile side (0..1 inside it, not clipped); the
head's (x, y, w) are the centre relative to the cell centre in half-cells and the square's side as a
fraction of the tile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Sequence

import numpy as np

from harness.config import check
from harness.errors import DataError

TILE = 256
MAX_DETECTIONS = 60  # detected boxes per tile before the reference's IoU reports 0 (settings.py:22)

# The swarm decision table (utils_box.py:242-273), keyed by which of (r1, r2, p1, p2) have w > 0 as the
# 4-bit number 8*r1 + 4*r2 + 2*p1 + p2; each entry picks the two slots' ROIs from (r1, r2, p1, p2) = 0..3.
# Rows the reference marks "cannot happen" are kept as it maps them.
# fmt: off
_SWARM_TABLE = np.array(
    [
        (0, 0), (3, 3), (2, 2), (2, 3),  # none; p2; p1; p1 p2
        (1, 1), (1, 3), (1, 2), (1, 2),  # r2; r2 p2; r2 p1; r2 p1 p2
        (0, 0), (0, 3), (0, 2), (0, 2),  # r1; r1 p2; r1 p1; r1 p1 p2
        (0, 1), (0, 1), (0, 1), (0, 1),  # r1 r2 (with any periph)
    ],
    dtype=np.intp,
)
# fmt: on


@dataclasses.dataclass(frozen=True)
class Grid:
    """The head's grid: ``grid_nn`` cells per side, ``cell_n`` boxes per cell, and how far (in cells,
    ``cell_grow`` - 1 on each side) the swarm assignment looks past a cell's border."""

    grid_nn: int
    cell_n: int
    cell_grow: float = 1.3

    def __post_init__(self) -> None:
        check(self.grid_nn, isinstance(self.grid_nn, int) and self.grid_nn >= 1, "grid_nn", "an int >= 1")
        check(self.cell_n, isinstance(self.cell_n, int) and self.cell_n >= 1, "cell_n", "an int >= 1")
        check(self.cell_grow, self.cell_grow >= 1.0, "cell_grow", ">= 1.0")


def _rois(rois: np.ndarray) -> np.ndarray:
    """The real boxes of a padded ``[n, 4]`` array (w > 0), as float32."""
    rois = np.asarray(rois, dtype=np.float32)
    if rois.ndim != 2 or rois.shape[1] != 4:
        raise DataError(f"rois must be an array [n, 4] of x1, y1, x2, y2, but got shape {rois.shape}")
    return rois[rois[:, 2] - rois[:, 0] > 0]


def _select(rois: np.ndarray, g: int, n: int, by_width: bool, expand: float) -> np.ndarray:
    """Per cell, the ``n`` ROIs centred in the cell (widened by ``expand``), in head units ``[g, g, n, 3]``.

    As utils_box.py:100-216: centred means ``left - (e-1)*cw <= cx < left + e*cw`` (half-open, so a centre
    on a border belongs to the right / bottom cell); the order is decreasing width ("largest_w") or
    increasing L1 distance to the cell centre ("closest_to_center"), ties to the earlier ROI as argmax /
    argmin do; the centre comes from (x1+x2)/2, (y1+y2)/2 and the side from the width alone (76-83).
    Computed in float32 like the reference, so border cases land as they did there.
    """
    if len(rois) == 0:
        return np.zeros((g, g, n, 3), dtype=np.float32)
    cx = (rois[:, 0] + rois[:, 2]) / np.float32(2.0)
    cy = (rois[:, 1] + rois[:, 3]) / np.float32(2.0)
    w = rois[:, 2] - rois[:, 0]
    cw = np.float32(1.0) / np.float32(g)
    left = np.arange(g, dtype=np.float32) * cw  # cell j's left (or top) edge
    centre = (left + left + cw) / np.float32(2.0)
    lo, hi = left - np.float32(expand - 1.0) * cw, left + np.float32(expand) * cw
    in_x = (cx[None, :] >= lo[:, None]) & (cx[None, :] < hi[:, None])  # [g(j), m]
    in_y = (cy[None, :] >= lo[:, None]) & (cy[None, :] < hi[:, None])  # [g(i), m]
    inside = in_y[:, None, :] & in_x[None, :, :]  # [i, j, m]
    if by_width:
        key = np.broadcast_to(-w, inside.shape)
    else:
        key = np.abs(cx[None, None, :] - centre[None, :, None]) + np.abs(cy[None, None, :] - centre[:, None, None])
    order = np.argsort(np.where(inside, key, np.inf), axis=-1, kind="stable")
    pick = np.zeros((g, g, n), dtype=np.intp)
    k = min(n, len(rois))
    pick[..., :k] = order[..., :k]
    ok = np.zeros((g, g, n), dtype=bool)
    ok[..., :k] = np.take_along_axis(inside, order[..., :k], axis=-1)
    half = cw / np.float32(2.0)
    x = (cx[pick] - centre[None, :, None]) / half
    y = (cy[pick] - centre[:, None, None]) / half
    out = np.stack([x, y, w[pick]], axis=-1)
    return np.where(ok[..., None], out, np.float32(0.0)).astype(np.float32)


def _swarm_combine(normal: np.ndarray, periph: np.ndarray) -> np.ndarray:
    """The reference's swarm rule on ``[..., 2, 3]`` normal and periphery picks (utils_box.py:225-286):
    a periphery slot whose width equals the normal ROI's in the same slot counts as the same ROI and is
    dropped (279-281), then the decision table picks the two slots from (r1, r2, p1, p2)."""
    periph = np.where((periph[..., 2] == normal[..., 2])[..., None], np.float32(0.0), periph)
    both = np.concatenate([normal, periph], axis=-2)  # [..., 4, 3] = r1, r2, p1, p2
    nz = both[..., 2] > 0
    code = nz[..., 0] * 8 + nz[..., 1] * 4 + nz[..., 2] * 2 + nz[..., 3]
    return np.take_along_axis(both, _SWARM_TABLE[code][..., None], axis=-2)


def yolo_targets(rois: np.ndarray, grid: Grid, swarm: bool) -> np.ndarray:
    """The head's targets ``[g, g, cell_n, 3]`` (x, y, w) for one tile's boxes ``[n, 4]`` (zero rows = padding).

    naive (``swarm`` False): per cell, the ``cell_n`` widest ROIs centred in it. swarm (``cell_n`` 2 only, as
    the reference): the 2 ROIs closest (L1) to the cell centre among those centred in it, the same among
    those centred in the cell widened by ``cell_grow``, merged by the decision table, so that one plane
    trains both of a cell's detectors. Empty slots are (0, 0, 0). Eval targets use ``cell_grow`` 1.0.
    Padding rows are not ROIs here (the reference fed them to the assignment too, where their centre
    (0, 0) could fill or shadow slots of the top-left cell).
    """
    real = _rois(rois)
    g, n = grid.grid_nn, grid.cell_n
    if not swarm:
        return _select(real, g, n, by_width=True, expand=1.0)
    check(n, n == 2, "cell_n", "2 with the swarm assignment (the reference implements it for 2 boxes per cell)")
    normal = _select(real, g, 2, by_width=False, expand=1.0)
    periph = _select(real, g, 2, by_width=False, expand=grid.cell_grow)
    return _swarm_combine(normal, periph).astype(np.float32)


def decode(xyw: np.ndarray, grid_nn: int) -> np.ndarray:
    """Head units ``[..., g, g, n, 3]`` -> tile-relative square boxes ``[..., g, g, n, 4]`` x1, y1, x2, y2
    (utils_box.py:293-329 over 256, model.py:208); ``x, y`` already include ``cell_grow``."""
    xyw = np.asarray(xyw, dtype=np.float32)
    if xyw.ndim < 4 or xyw.shape[-4:-2] != (grid_nn, grid_nn) or xyw.shape[-1] != 3:
        raise DataError(f"xyw must be [..., {grid_nn}, {grid_nn}, n, 3], but got shape {xyw.shape}")
    cw = np.float32(1.0) / np.float32(grid_nn)
    centre = (np.arange(grid_nn, dtype=np.float32) * np.float32(2.0) * cw + cw) / np.float32(2.0)
    cx = centre[:, None] + xyw[..., 0] * cw / np.float32(2.0)
    cy = centre[:, None, None] + xyw[..., 1] * cw / np.float32(2.0)
    half = xyw[..., 2] / np.float32(2.0)
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1).astype(np.float32)


def _union(boxes: np.ndarray, tile: int) -> np.ndarray:
    """The ``[tile, tile]`` bitmap of the union of boxes scaled by ``tile`` and rounded (half to even, as
    tf.round), pixel (i, j) inside iff x1 <= j < x2 and y1 <= i < y2 (utils_box.py:464-545)."""
    b = np.round(np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * np.float32(tile))
    ij = np.arange(tile, dtype=np.float32)
    cols = (ij[None, :] >= b[:, 0:1]) & (ij[None, :] < b[:, 2:3])
    rows = (ij[None, :] >= b[:, 1:2]) & (ij[None, :] < b[:, 3:4])
    return np.any(rows[:, :, None] & cols[:, None, :], axis=0)


def reference_iou_tile(detected: np.ndarray, truth: np.ndarray, tile: int = TILE) -> float:
    """The reference's tile IoU: pixel IoU of the union of the detected boxes with the union of the true
    ones (not a per-box matching), 1.0 when both unions are empty (nothing to find, nothing found)."""
    det, gt = _union(detected, tile), _union(truth, tile)
    union = int(np.count_nonzero(det | gt))
    return 1.0 if union == 0 else int(np.count_nonzero(det & gt)) / union


def reference_iou_batch(per_tile_ious: Sequence[float] | np.ndarray, n_detections: Sequence[int] | np.ndarray) -> float:
    """The reference's batch IoU (utils_box.py:547-590): the mean over tiles whose IoU is not exactly 1
    (so perfect tiles drop out too), 1.0 when none is left, and 0.0 when any tile has more detections
    than the 60 its IoU can hold."""
    ious = np.asarray(per_tile_ious, dtype=np.float64)
    if np.any(np.asarray(n_detections) > MAX_DETECTIONS):
        return 0.0
    kept = ious[ious != 1.0]
    return 1.0 if kept.size == 0 else float(kept.mean())


def _starts(size: int, tile: int, step: int) -> list[int]:
    return [0] if size <= tile else [*range(0, size - tile, step), size - tile]


def tile_origins(height: int, width: int, tile: int = TILE, overlap: int = 64) -> list[tuple[int, int]]:
    """(y0, x0) of overlapping tiles covering the whole image, row by row; the last tile of a row or column
    is flush with the border so that no tile hangs out (an image smaller than a tile gets one, padded)."""
    check(overlap, 0 <= overlap < tile, "overlap", f"in [0, {tile})")
    step = tile - overlap
    return [(y, x) for y in _starts(height, tile, step) for x in _starts(width, tile, step)]


def cut_tiles(image: np.ndarray, origins: Sequence[tuple[int, int]], tile: int = TILE) -> np.ndarray:
    """The tiles ``uint8 [T, tile, tile, 3]`` at ``origins``, zero-filled past the image's border."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"image must be uint8 [H, W, 3], but got {image.dtype} {image.shape}")
    out = np.zeros((len(origins), tile, tile, 3), dtype=np.uint8)
    for t, (y0, x0) in enumerate(origins):
        patch = image[y0 : y0 + tile, x0 : x0 + tile]
        out[t, : patch.shape[0], : patch.shape[1]] = patch
    return out


def merge_detections(
    boxes_per_tile: np.ndarray,
    scores: np.ndarray,
    origins: Sequence[tuple[int, int]],
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    tile: int = TILE,
) -> tuple[np.ndarray, np.ndarray]:
    """Tile-relative boxes ``[T, K, 4]`` and scores ``[T, K]`` -> image-pixel boxes ``[D, 4]`` and scores
    ``[D]``, best first: boxes with score >= ``score_threshold`` and a positive area, then non-max
    suppression over the whole image, so that a plane seen by two overlapping tiles is counted once."""
    boxes = np.asarray(boxes_per_tile, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if boxes.shape[:-1] != scores.shape or boxes.shape[-1:] != (4,) or len(origins) != len(boxes):
        got = f"{boxes.shape}, {scores.shape}, {len(origins)}"
        raise DataError(f"expected boxes [T, K, 4], scores [T, K] and T origins, but got {got}")
    yx = np.asarray(origins, dtype=np.float32).reshape(-1, 2)
    shift = np.stack([yx[:, 1], yx[:, 0], yx[:, 1], yx[:, 0]], axis=-1)[:, None, :]
    pixels = (boxes * np.float32(tile) + shift).reshape(-1, 4)
    flat = scores.reshape(-1)
    keep = (flat >= score_threshold) & (pixels[:, 2] > pixels[:, 0]) & (pixels[:, 3] > pixels[:, 1])
    pixels, flat = pixels[keep], flat[keep]
    if len(flat) == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    chosen = non_max_suppression(pixels, flat, iou_threshold)
    return pixels[chosen], flat[chosen]


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """The indices of the boxes kept, best first: greedy non-max suppression as ``tf.image.non_max_suppression``
    (the best remaining box is kept and every box whose IoU with it exceeds ``iou_threshold`` dropped), in numpy
    so that it runs without TensorFlow. ``boxes`` [n, 4] are two opposite corners, either way round."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = np.concatenate([np.minimum(b[:, :2], b[:, 2:]), np.maximum(b[:, :2], b[:, 2:])], axis=1)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    kept: list[int] = []
    while len(order):
        best, order = order[0], order[1:]
        kept.append(int(best))
        order = order[_iou_matrix(b[best][None], b[order])[0] <= iou_threshold]
    return np.asarray(kept, dtype=np.int64)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Continuous IoU of every box of ``a`` [k, 4] with every box of ``b`` [m, 4] (x1, y1, x2, y2)."""
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a, area_b = np.prod(a[:, 2:] - a[:, :2], axis=-1), np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def _greedy_true_positives(truth: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> int:
    """Detections best first, each matched to the unmatched true box it overlaps most if IoU >= 0.5."""
    ious = _iou_matrix(boxes[np.argsort(-scores, kind="stable")], truth)
    free, hits = np.ones(len(truth), dtype=bool), 0
    for row in ious:
        cand = np.where(free, row, -1.0)
        if len(cand) and cand.max() >= 0.5:
            free[int(cand.argmax())] = False
            hits += 1
    return hits


def coco_ap50(
    truth: Sequence[np.ndarray], detections: Sequence[tuple[np.ndarray, np.ndarray]], min_score: float = 0.5
) -> dict[str, float]:
    """COCO AP at IoU 0.5 (pycocotools, bbox, all areas, up to 1000 detections an image) over whole images,
    with ``precision50`` / ``recall50``: greedy one-to-one matching at IoU >= 0.5 of the detections with
    score >= ``min_score`` (a fixed operating point next to AP's ranking). Boxes are image pixels x1, y1,
    x2, y2. Undefined values are NaN, not 0: ap50 and recall50 without true boxes, precision50 without a
    detection at ``min_score``. True boxes but no detection at all: ap50 0.0 (nothing found)."""
    if len(truth) != len(detections):
        raise DataError(f"expected one detection set per image, but got {len(detections)} for {len(truth)} images")
    truth = [np.asarray(t, dtype=np.float64).reshape(-1, 4) for t in truth]
    dets = [(np.asarray(b, np.float64).reshape(-1, 4), np.asarray(s, np.float64).reshape(-1)) for b, s in detections]
    n_true = sum(len(t) for t in truth)
    strong = [(b[s >= min_score], s[s >= min_score]) for b, s in dets]
    n_strong = sum(len(s) for _, s in strong)
    hits = sum(_greedy_true_positives(t, b, s) for t, (b, s) in zip(truth, strong, strict=True))
    nan = float("nan")
    result = {"precision50": hits / n_strong if n_strong else nan, "recall50": hits / n_true if n_true else nan}
    if n_true == 0:
        return {"ap50": nan, **result}
    if sum(len(s) for _, s in dets) == 0:
        return {"ap50": 0.0, **result}
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b: np.ndarray) -> list[float]:
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    pairs = [(i + 1, b) for i, t in enumerate(truth) for b in t]
    gts = [
        {"id": k, "image_id": i, "category_id": 1, "bbox": xywh(b), "area": float(np.prod(b[2:] - b[:2])), "iscrowd": 0}
        for k, (i, b) in enumerate(pairs, start=1)
    ]
    res = [
        {"image_id": i + 1, "category_id": 1, "bbox": xywh(b), "score": float(s)}
        for i, (bs, ss) in enumerate(dets)
        for b, s in zip(bs, ss, strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        images = [{"id": i + 1} for i in range(len(truth))]
        coco.dataset = {"images": images, "annotations": gts, "categories": [{"id": 1, "name": "plane"}]}
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(res), "bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.params.maxDets = [1, 10, 1000]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, 0, 0, -1]  # IoU 0.5, every recall, the class, area "all", 1000 dets
    valid = precision[precision > -1]
    return {"ap50": float(valid.mean()) if valid.size else 0.0, **result}
