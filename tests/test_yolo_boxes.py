"""YOLO targets (naive and swarm, reference utils_box.py), decoding, the reference IoU, whole-image helpers, AP."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.tasks._yolo_boxes import (
    Grid,
    _swarm_combine,
    coco_ap50,
    cut_tiles,
    decode,
    merge_detections,
    non_max_suppression,
    reference_iou_batch,
    reference_iou_tile,
    tile_origins,
    yolo_targets,
)

# On a 4x4 grid cell (1, 1) spans [0.25, 0.5) on both axes, its centre is 0.375 and a half-cell is 0.125;
# widened by cell_grow 1.3 it spans [0.175, 0.575).
G4 = Grid(4, 2, 1.3)


def sq(cx: float, cy: float, w: float) -> list[float]:
    return [cx - w / 2, cy - w / 2, cx + w / 2, cy + w / 2]


def rois(*boxes: list[float]) -> np.ndarray:
    """Boxes padded with zero rows to 50, as the data pipeline gives them."""
    out = np.zeros((50, 4), np.float32)
    if boxes:
        out[: len(boxes)] = boxes
    return out


def head(cx: float, cy: float, w: float, row: int = 1, col: int = 1) -> list[float]:
    """(x, y, w) of a box centred at (cx, cy) relative to cell (row, col) of the 4x4 grid."""
    return [(cx - (col + 0.5) / 4) / 0.125, (cy - (row + 0.5) / 4) / 0.125, w]


def test_grid_and_swarm_check_their_values() -> None:
    with pytest.raises(ConfigError, match="grid_nn"):
        Grid(0, 2)
    with pytest.raises(ConfigError, match="cell_grow"):
        Grid(4, 2, 0.9)
    with pytest.raises(ConfigError, match="cell_n must be 2"):
        yolo_targets(rois(sq(0.4, 0.4, 0.1)), Grid(4, 3), swarm=True)


@pytest.mark.parametrize("swarm", [False, True])
def test_encode_decode_round_trip(swarm: bool) -> None:
    rng = np.random.default_rng(0)
    g = 16
    cells = rng.choice(g * g, size=20, replace=False)
    centres = (np.stack([cells % g, cells // g], axis=1) + rng.uniform(0, 1, (20, 2))) / g
    sides = rng.uniform(0.05, 0.3, 20)
    boxes = np.concatenate([centres - sides[:, None] / 2, centres + sides[:, None] / 2], axis=1)
    xyw = yolo_targets(rois(*boxes.tolist()), Grid(g, 2, 1.0), swarm)
    assert xyw.shape == (g, g, 2, 3) and xyw.dtype == np.float32
    decoded = decode(xyw[None], g)[0]
    first = decoded[:, :, 0][xyw[:, :, 0, 2] > 0]  # one box per occupied cell
    order = np.argsort(cells)  # row-major, as the cells come out
    np.testing.assert_allclose(first, boxes[order], atol=1e-6)


def test_naive_keeps_the_widest_centred_in_the_cell() -> None:
    three = rois(sq(0.3, 0.3, 0.1), sq(0.4, 0.45, 0.3), sq(0.45, 0.3, 0.2))
    out = yolo_targets(three, G4, swarm=False)
    np.testing.assert_allclose(out[1, 1], [head(0.4, 0.45, 0.3), head(0.45, 0.3, 0.2)], atol=1e-6)
    assert np.count_nonzero(out[..., 2]) == 2  # the narrowest is dropped, not moved elsewhere
    out3 = yolo_targets(three, Grid(4, 3), swarm=False)
    np.testing.assert_allclose(out3[1, 1, 2], head(0.3, 0.3, 0.1), atol=1e-6)


def test_naive_centre_on_a_border_goes_to_the_right_and_bottom_cell() -> None:
    on_both = sq(0.5, 0.5, 0.25)  # x1 = 0.375, x2 = 0.625: the centre is exactly 0.5
    on_x = [0.375, 0.25, 0.625, 0.5]  # centre (0.5, 0.375)
    out = yolo_targets(rois(on_both, on_x), Grid(4, 1), swarm=False)
    np.testing.assert_allclose(out[2, 2, 0], [-1.0, -1.0, 0.25])
    np.testing.assert_allclose(out[1, 2, 0], [-1.0, 0.0, 0.25])  # [row (y), column (x)]
    assert np.count_nonzero(out[..., 2]) == 2


def test_padding_rows_are_not_rois() -> None:
    out = yolo_targets(rois(sq(0.6, 0.6, 0.1)), G4, swarm=False)
    assert np.count_nonzero(out[..., 2]) == 1 and out[2, 2, 0, 2] > 0
    assert not out[0, 0].any()
    assert not yolo_targets(rois(), G4, swarm=True).any()


A_CENTRE = sq(0.4, 0.375, 0.1)  # in cell (1, 1), near its centre
A_CORNER = sq(0.26, 0.26, 0.1)  # in cell (1, 1), L1 0.23 from its centre
B_PERIPH = sq(0.55, 0.375, 0.2)  # in cell (1, 2), in (1, 1)'s widened cell, L1 0.175 from (1, 1)'s centre
C_PERIPH = sq(0.375, 0.19, 0.15)  # in cell (0, 1), in (1, 1)'s widened cell, L1 0.185


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([A_CENTRE], ["A", "A"]),  # r1 -> (r1, r1): one plane trains both detectors
        ([A_CENTRE, sq(0.3, 0.45, 0.2)], ["A", "D"]),  # r1 r2 -> (r1, r2), by distance not width
        ([A_CORNER, B_PERIPH], ["a", "B"]),  # r1 p1 p2 (p1 = B is closer than A) -> (r1, p1)
        ([sq(0.375, 0.375, 0.1), B_PERIPH], ["O", "B"]),  # r1 p2 (p1 is r1, dropped) -> (r1, p2)
        ([B_PERIPH], ["B", "B"]),  # p1 -> (p1, p1)
        ([B_PERIPH, C_PERIPH], ["B", "C"]),  # p1 p2 -> (p1, p2)
        ([A_CENTRE, sq(0.3, 0.45, 0.2), B_PERIPH], ["A", "D"]),  # r1 r2 p1 p2 -> (r1, r2)
        # the same width (exactly, as float32 computes it): the closer periphery ROI counts as r1 and is dropped
        ([sq(17 / 64, 17 / 64, 1 / 8), sq(35 / 64, 0.375, 1 / 8)], ["e", "e"]),
    ],
)
def test_swarm_decision_table_on_scenes(boxes: list[list[float]], expected: list[str]) -> None:
    named = {
        "A": head(0.4, 0.375, 0.1),
        "a": head(0.26, 0.26, 0.1),
        "O": head(0.375, 0.375, 0.1),
        "B": head(0.55, 0.375, 0.2),
        "C": head(0.375, 0.19, 0.15),
        "D": head(0.3, 0.45, 0.2),
        "e": head(17 / 64, 17 / 64, 1 / 8),
    }
    out = yolo_targets(rois(*boxes), G4, swarm=True)
    np.testing.assert_allclose(out[1, 1], [named[k] for k in expected], atol=1e-6)
    assert out.dtype == np.float32


def test_swarm_eval_targets_use_the_plain_cell() -> None:
    out = yolo_targets(rois(A_CENTRE, B_PERIPH), Grid(4, 2, 1.0), swarm=True)
    np.testing.assert_allclose(out[1, 1], [head(0.4, 0.375, 0.1)] * 2, atol=1e-6)
    np.testing.assert_allclose(out[1, 2], [head(0.55, 0.375, 0.2, col=2)] * 2, atol=1e-6)
    assert np.count_nonzero(out[..., 2]) == 4


# utils_box.py:242-273: which of (r1, r2, p1, p2) are non-empty -> the two slots.
REFERENCE_TABLE = {
    (): ("r1", "r1"),
    ("p2",): ("p2", "p2"),
    ("p1",): ("p1", "p1"),
    ("p1", "p2"): ("p1", "p2"),
    ("r2",): ("r2", "r2"),
    ("r2", "p2"): ("r2", "p2"),
    ("r2", "p1"): ("r2", "p1"),
    ("r2", "p1", "p2"): ("r2", "p1"),
    ("r1",): ("r1", "r1"),
    ("r1", "p2"): ("r1", "p2"),
    ("r1", "p1"): ("r1", "p1"),
    ("r1", "p1", "p2"): ("r1", "p1"),
    ("r1", "r2"): ("r1", "r2"),
    ("r1", "r2", "p2"): ("r1", "r2"),
    ("r1", "r2", "p1"): ("r1", "r2"),
    ("r1", "r2", "p1", "p2"): ("r1", "r2"),
}


def test_swarm_combine_follows_every_row_of_the_reference_table() -> None:
    names = ("r1", "r2", "p1", "p2")
    for present, (first, second) in REFERENCE_TABLE.items():
        # distinct widths, so that the same-width rule does not fire; absent candidates are (0, 0, 0)
        cand = {n: np.array([0.1 + i, -0.2 - i, 0.1 * (i + 1)]) * (n in present) for i, n in enumerate(names)}
        got = _swarm_combine(np.stack([cand["r1"], cand["r2"]]), np.stack([cand["p1"], cand["p2"]]))
        np.testing.assert_array_equal(got, np.stack([cand[first], cand[second]]), err_msg=str(present))


def test_decode_places_boxes_by_cell() -> None:
    xyw = np.zeros((2, 2, 1, 3), np.float32)
    xyw[1, 0, 0] = [1.0, -0.5, 0.2]  # row 1, column 0: centre (0.25 + 0.25, 0.75 - 0.125)
    boxes = decode(xyw, 2)
    np.testing.assert_allclose(boxes[1, 0, 0], [0.4, 0.525, 0.6, 0.725], atol=1e-6)
    assert decode(np.zeros((3, 4, 4, 2, 3)), 4).shape == (3, 4, 4, 2, 4)


def test_reference_iou_tile_on_hand_drawn_boxes() -> None:
    ten = np.array([[0, 0, 10, 10]]) / 256
    shifted = np.array([[5, 0, 15, 10]]) / 256
    assert reference_iou_tile(ten, shifted) == pytest.approx(50 / 150)
    assert reference_iou_tile(np.zeros((60, 4)), np.zeros((50, 4))) == 1.0
    assert reference_iou_tile(np.zeros((0, 4)), ten) == 0.0
    both = np.array([[0, 0, 10, 10], [5, 0, 15, 10]]) / 256  # a union, not a matching: 150 px against 100
    assert reference_iou_tile(both, ten) == pytest.approx(100 / 150)
    outside = np.array([[-10, -10, 10, 10]]) / 256  # clipped by the bitmap
    assert reference_iou_tile(outside, ten) == 1.0


def test_reference_iou_tile_matches_the_reference_unit_test() -> None:
    """test_utils_box.py:273-327 (tile side 5, boxes in pixels)."""
    r1 = [[1, 1, 4, 3], [2, 3, 7, 5], [3, 4, 4, 5]]
    r3 = [[1, 1, 3, 3], [2, 3, 7, 5], [3, 4, 4, 5]]
    no1 = [[1, 1, 1, 3], [2, 3, 7, 3], [3, 4, 4, 4]]
    no2 = [[10, 10, 12, 12], [2, 3, 2, 3], [-3, -4, -2, -3]]
    part = [[1, 1, 3, 3], [2, 3, 2, 3], [-3, -4, -2, -3]]
    zero = [[0, 0, 0, 0]] * 3
    pairs = [(r1, r1), (r3, r1), (r1, no1), (no1, no2), (r3, part), (zero, zero)]
    got = [reference_iou_tile(np.array(a) / 5, np.array(b) / 5, tile=5) for a, b in pairs]
    np.testing.assert_allclose(got, [1.0, 10 / 12, 0.0, 1.0, 4 / 10, 1.0], atol=1e-9)


def test_reference_iou_batch_rules() -> None:
    """test_utils_box.py:329-355, plus the > 60 detections rule."""
    assert reference_iou_batch([0, 1, 0.3, 0.9, 0.8], [1] * 5) == pytest.approx(0.5)
    assert reference_iou_batch([0] * 5, [0] * 5) == 0.0
    assert reference_iou_batch([1] * 5, [0] * 5) == 1.0
    assert reference_iou_batch([1, 1, 1, 0.99, 1], [0] * 5) == pytest.approx(0.99)
    assert reference_iou_batch([0.5, 0.7], [60, 3]) == pytest.approx(0.6)
    assert reference_iou_batch([0.5, 0.7], [61, 3]) == 0.0


def test_tile_origins_cover_the_image_flush_with_the_border() -> None:
    origins = tile_origins(2560, 1000)
    ys, xs = sorted({y for y, _ in origins}), sorted({x for _, x in origins})
    assert ys[0] == 0 and ys[-1] == 2560 - 256 and xs[-1] == 1000 - 256
    assert len(origins) == len(ys) * len(xs)
    assert all(0 < b - a <= 256 - 64 for a, b in itertools.pairwise(xs))
    assert tile_origins(100, 300) == [(0, 0), (0, 44)]
    with pytest.raises(ConfigError, match="overlap"):
        tile_origins(500, 500, overlap=256)


def test_cut_tiles_pads_with_zeros() -> None:
    image = np.arange(100 * 300 * 3, dtype=np.int64).reshape(100, 300, 3).astype(np.uint8)
    tiles = cut_tiles(image, tile_origins(100, 300))
    assert tiles.shape == (2, 256, 256, 3) and tiles.dtype == np.uint8
    np.testing.assert_array_equal(tiles[1, :100], image[:, 44:300])
    assert not tiles[:, 100:].any()


def test_merge_detections_keeps_one_of_two_duplicates_across_a_tile_border() -> None:
    origins = [(0, 0), (0, 192)]
    plane = np.array([200.0, 10.0, 240.0, 50.0])  # image pixels, inside both tiles
    other = np.array([20.0, 20.0, 60.0, 60.0])
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[0, 0] = plane / 256
    boxes[0, 1] = other / 256
    boxes[1, 0] = (plane - [192, 0, 192, 0]) / 256
    boxes[1, 1] = other / 256  # a weak box: below the score threshold
    scores = np.array([[0.8, 0.7, 0.9], [0.9, 0.2, 0.0]], np.float32)  # [0, 2] has no area
    got, got_scores = merge_detections(boxes, scores, origins)
    np.testing.assert_allclose(got, [plane, other], atol=1e-4)
    np.testing.assert_allclose(got_scores, [0.9, 0.7])
    empty, none = merge_detections(boxes, scores * 0, origins)
    assert empty.shape == (0, 4) and none.shape == (0,)


TRUTH = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([[50, 50, 70, 70]], float)]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 40), threshold=st.sampled_from([0.1, 0.3, 0.5, 0.7]))
def test_non_max_suppression_keeps_what_tensorflow_keeps(seed: int, n: int, threshold: float) -> None:
    """The numpy NMS (no TensorFlow needed) against tf.image.non_max_suppression on random clustered boxes."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, 100, (n, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 40, (n, 2))], axis=1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32) / max(n, 1)  # distinct: no tie to break either way
    want = tf.image.non_max_suppression(boxes, scores, max(n, 1), threshold).numpy() if n else np.zeros(0)
    np.testing.assert_array_equal(non_max_suppression(boxes, scores, threshold), want)
    flipped = boxes[:, [2, 3, 0, 1]]  # corners the other way round: the same boxes
    np.testing.assert_array_equal(non_max_suppression(flipped, scores, threshold), want)


def test_coco_ap50_perfect_detections() -> None:
    dets = [(t, np.full(len(t), 0.9)) for t in TRUTH]
    assert coco_ap50(TRUTH, dets) == {"ap50": 1.0, "precision50": 1.0, "recall50": 1.0}


def test_coco_ap50_mix_by_hand() -> None:
    # Ranked: hit (0.9), miss (0.8), hit (0.7), hit (0.6) on image 2 at IoU 0.9 -> precision 1, 1/2, 2/3, 3/4 at
    # recall 1/3, 1/3, 2/3, 1. COCO's 101-point interpolation: 34 points (recall 0..0.33) at 1, 67 at 3/4.
    # A weak hit (0.3) ranked last changes nothing: the recall is already 1.
    dets = [
        (np.array([[0, 0, 10, 10], [100, 100, 110, 110], [20, 20, 30, 30]], float), np.array([0.9, 0.8, 0.7])),
        (np.array([[50, 50, 68, 70], [50, 50, 70, 70]], float), np.array([0.6, 0.3])),
    ]
    got = coco_ap50(TRUTH, dets)
    assert got["ap50"] == pytest.approx((34 + 67 * 0.75) / 101)
    assert got["precision50"] == pytest.approx(3 / 4)  # the 0.3 detection is below the operating point
    assert got["recall50"] == 1.0


def test_coco_ap50_without_detections() -> None:
    empty = [(np.zeros((0, 4)), np.zeros(0)) for _ in TRUTH]
    got = coco_ap50(TRUTH, empty)
    assert (got["ap50"], got["recall50"]) == (0.0, 0.0)  # planes to find, none found
    assert math.isnan(got["precision50"])  # no detection: precision is undefined, not 0
