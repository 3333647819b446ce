"""Tests of the aerial detection data: file readers, tile cutting, augmentation, synthetic scenes."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import REAL_DATA, missing_real_data
from PIL import Image

from harness.config import params_class
from harness.config._catalog import check_serves
from harness.data import list_datasets, load_dataset
from harness.data._aerial import (
    MAX_ROIS,
    TILE,
    AerialImages,
    AerialParams,
    AirbusParams,
    DetectionDataset,
    PlanespottingParams,
    extras,
    random_split,
    read_airbus,
    read_planespotting,
    source_split,
    square,
)
from harness.data._aerial_sets import detection_dataset, load_airbus, load_planespotting
from harness.data._scenes import SyntheticSceneParams, synthetic_scenes
from harness.data._tiles import (
    cut_tile,
    eval_tiles,
    generate_tiles,
    hue_numpy,
    orient,
    plan_tiles,
    slices_and_offsets,
    tile_dataset,
    tile_rois,
    tile_stream,
)
from harness.errors import ConfigError, DataError

SIDE = 300  # the fixtures' JPEGs are SIDE x SIDE


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)


def real_rows(rois: np.ndarray) -> np.ndarray:
    return rois[rois[:, 2] - rois[:, 0] > 0]


def hand_scenes() -> AerialImages:
    """Two random images; integer box centres, so the shared offsets show exactly in the tile origins."""
    rng = np.random.default_rng(7)
    images = (rng.integers(0, 256, (600, 700, 3), dtype=np.uint8), rng.integers(0, 256, (400, 400, 3), dtype=np.uint8))
    boxes = (
        np.array([[100, 100, 140, 140], [300, 350, 360, 410], [650, 20, 700, 70]], dtype=np.float32),
        np.array([[180, 180, 220, 220]], dtype=np.float32),
    )
    return AerialImages(names=("a", "b"), images=images, boxes=boxes)


# ----------------------------------------------------------------------------- boxes in tiles


def test_square_keeps_the_centre_and_takes_the_longer_side() -> None:
    assert square((10, 20, 30, 60)) == (0.0, 20.0, 40.0, 60.0)
    assert square((0, 0, 8, 2)) == (0.0, -3.0, 8.0, 5.0)


def test_tile_rois_overlap_test_no_clipping_and_zero_padding() -> None:
    boxes = np.array(
        [
            [10, 10, 30, 30],  # inside
            [-20, 100, 20, 140],  # across the left edge: kept, not clipped
            [256, 0, 300, 40],  # touches the right edge only: no area, dropped
            [300, 300, 340, 340],  # outside
            [250, 250, 290, 290],  # corner overlap
        ],
        dtype=np.float32,
    )
    rois = tile_rois(boxes, 0, 0)
    assert rois.shape == (MAX_ROIS, 4) and rois.dtype == np.float32
    np.testing.assert_allclose(real_rows(rois) * TILE, boxes[[0, 1, 4]])
    assert not rois[3:].any()
    # The origin moves the frame: tile at (y0, x0) = (100, -20).
    np.testing.assert_allclose(tile_rois(boxes[[1]], 100, -20)[0] * TILE, [0, 0, 40, 40])


def test_tile_rois_keeps_the_50_largest_of_more() -> None:
    sides = np.arange(1, 61, dtype=np.float32)  # 60 boxes, sides 1..60, all overlapping the tile
    order = np.random.default_rng(0).permutation(60)
    boxes = np.stack([np.zeros(60), np.zeros(60), sides[order], sides[order]], axis=1).astype(np.float32)
    rows = real_rows(tile_rois(boxes, 0, 0))
    assert len(rows) == MAX_ROIS
    kept = rows[:, 2] * TILE
    assert sorted(np.round(kept).astype(int)) == list(range(11, 61))
    np.testing.assert_allclose(kept, [s for s in sides[order] if s > 10])  # original order kept


def test_cut_tile_is_the_window_with_zeros_outside() -> None:
    image = np.random.default_rng(1).integers(1, 256, (300, 400, 3), dtype=np.uint8)
    np.testing.assert_array_equal(cut_tile(image, 10, 20), image[10:266, 20:276])
    tile = cut_tile(image, -50, 300)
    np.testing.assert_array_equal(tile[50:, :100], image[:206, 300:400])
    assert not tile[:50].any() and not tile[:, 100:].any()
    assert not cut_tile(image, 1000, 1000).any()


# ----------------------------------------------------------------------------- tile generation


@pytest.mark.parametrize(("t", "expected"), [(166, (12, 13)), (100, (10, 10)), (20, (4, 5)), (1, (1, 1))])
def test_slices_and_offsets_factorisation(t: int, expected: tuple[int, int]) -> None:
    assert slices_and_offsets(t) == expected


def test_plan_order_count_and_offsets() -> None:
    scenes = hand_scenes()
    plan = list(plan_tiles(scenes, 166, 2.0, np.random.default_rng(0), shuffle_files=False))
    assert len(plan) == scenes.num_boxes * 156  # 166 -> 12 slices x 13 offsets
    assert Counter((i, r) for i, r, _, _ in plan) == {(0, 0): 156, (0, 1): 156, (0, 2): 156, (1, 0): 156}
    # Image by image, slice by slice, box by box, offset by offset.
    expected = [(0, r) for _ in range(12) for r in range(3) for _ in range(13)]
    expected += [(1, 0)] * 156
    assert [(i, r) for i, r, _, _ in plan] == expected
    offsets = []
    for i, r, y0, x0 in plan:
        b = scenes.boxes[i][r]
        offsets.append((x0 + TILE / 2 - (b[0] + b[2]) / 2, y0 + TILE / 2 - (b[1] + b[3]) / 2))
    off = np.array(offsets)
    assert np.abs(off).max() <= 2.0 * TILE
    assert np.abs(off).max() > 0.5 * TILE  # they do spread
    # One set of 13 offsets per slice, shared by the 3 boxes of image 0.
    first = off[: 3 * 13].reshape(3, 13, 2)
    np.testing.assert_array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[0], first[2])
    assert not np.array_equal(off[:13], off[39:52])  # the next slice draws new ones
    centred = list(plan_tiles(scenes, 4, 0.0, np.random.default_rng(0), shuffle_files=False))
    assert all(
        (x0, y0) == (int((b[0] + b[2]) / 2) - TILE // 2, int((b[1] + b[3]) / 2) - TILE // 2)
        for i, r, y0, x0 in centred
        for b in [scenes.boxes[i][r]]
    )


def test_generated_tiles_hold_their_window_and_every_overlapping_box() -> None:
    scenes = hand_scenes()
    plan = list(plan_tiles(scenes, 20, 1.0, np.random.default_rng(3), shuffle_files=True))
    tiles = list(generate_tiles(scenes, 20, 1.0, np.random.default_rng(3), shuffle_files=True))
    assert len(tiles) == len(plan) == scenes.num_boxes * 20
    empty = 0
    for (i, _, y0, x0), (tile, rois) in zip(plan, tiles, strict=True):
        assert tile.shape == (TILE, TILE, 3) and tile.dtype == np.uint8
        np.testing.assert_array_equal(tile, cut_tile(scenes.images[i], y0, x0))
        rows = real_rows(rois) * TILE + [x0, y0, x0, y0]
        assert not rois[len(rows) :].any()
        for b in scenes.boxes[i]:
            w = min(b[2], x0 + TILE) - max(b[0], x0)
            h = min(b[3], y0 + TILE) - max(b[1], y0)
            present = any(np.allclose(b, row, atol=1e-3) for row in rows)
            assert present == (w > 0 and h > 0), (b, x0, y0)
        empty += not len(rows)
    assert 0 < empty < len(tiles)  # large offsets make the empty tiles


def test_shuffled_file_order_is_seeded() -> None:
    scenes = AerialImages(
        names=tuple("abcdef"),
        images=tuple(np.zeros((300, 300, 3), np.uint8) for _ in range(6)),
        boxes=tuple(np.array([[10, 10, 50, 50]], np.float32) for _ in range(6)),
    )

    def order(seed: int, shuffle: bool) -> list[int]:
        return [i for i, _, _, _ in plan_tiles(scenes, 1, 2.0, np.random.default_rng(seed), shuffle)]

    assert order(0, False) == list(range(6))
    assert sorted(order(0, True)) == list(range(6)) and order(0, True) != list(range(6))
    assert order(5, True) == order(5, True)


def test_eval_tiles_are_deterministic() -> None:
    scenes = hand_scenes()
    x, y = eval_tiles(scenes, 5)
    assert x.shape == (4 * 5, TILE, TILE, 3) and x.dtype == np.uint8
    assert y.shape == (4 * 5, MAX_ROIS, 4) and y.dtype == np.float32
    x2, y2 = eval_tiles(scenes, 5)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(y, eval_tiles(scenes, 5, seed=1)[1])


# ----------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_orient_moves_boxes_with_their_pixels(k: int, flip: bool) -> None:
    tile = np.zeros((TILE, TILE, 3), np.uint8)
    rois = np.zeros((MAX_ROIS, 4), np.float32)
    boxes = [(32, 128, 80, 224), (200, 10, 250, 40)]  # x1, y1, x2, y2 pixels, not symmetric
    for j, (x1, y1, x2, y2) in enumerate(boxes):
        tile[y1:y2, x1:x2, j] = 255
        rois[j] = np.array([x1, y1, x2, y2]) / TILE
    rois[2] = (-0.2, 0.9, 0.1, 1.2)  # a box past the tile border moves too
    out_tile, out_rois = orient(tile, rois, k, flip)
    expected = np.rot90(tile[:, ::-1] if flip else tile, k)
    np.testing.assert_array_equal(out_tile, expected)
    assert out_tile.flags.c_contiguous and out_tile.dtype == np.uint8
    for j in range(2):
        ys, xs = np.nonzero(out_tile[:, :, j])
        covered = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) / TILE
        np.testing.assert_allclose(out_rois[j], covered, atol=1e-6)
    assert (out_rois[:3, 2] > out_rois[:3, 0]).all() and (out_rois[:3, 3] > out_rois[:3, 1]).all()
    np.testing.assert_allclose(np.ptp(out_rois[2, [0, 2]]) * np.ptp(out_rois[2, [1, 3]]), 0.3 * 0.3, atol=1e-6)
    assert not out_rois[3:].any()  # padding stays zero


def test_the_eight_orientations_are_distinct() -> None:
    tile = np.random.default_rng(2).integers(0, 256, (TILE, TILE, 3), dtype=np.uint8)
    rois = np.zeros((MAX_ROIS, 4), np.float32)
    seen = {orient(tile, rois, k, flip)[0].tobytes() for k in range(4) for flip in (False, True)}
    assert len(seen) == 8
    same, _ = orient(tile, rois, 0, False)
    np.testing.assert_array_equal(same, tile)


# ----------------------------------------------------------------------------- the tf.data stream


def test_tile_dataset_is_endless_seeded_and_augmented() -> None:
    scenes = hand_scenes()
    params = AerialParams(name="x", data_tiles_per_gt_roi=4, shuffle_buf=8, augment=True)
    n = scenes.num_boxes * 4 * 3  # three passes

    def take(augment: bool, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(tile_dataset(scenes, params, augment=augment, seed=seed).take(n).as_numpy_iterator())

    plain, again, hued = take(False, 0), take(False, 0), take(True, 0)
    assert len(plain) == n
    for (t1, r1), (t2, r2) in zip(plain, again, strict=True):
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(r1, r2)
    for tile, rois in hued:
        assert tile.shape == (TILE, TILE, 3) and tile.dtype == np.uint8
        assert rois.shape == (MAX_ROIS, 4) and rois.dtype == np.float32
        assert not rois[len(real_rows(rois)) :].any()
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(plain, hued, strict=True))
    with pytest.raises(DataError, match="no boxes"):
        empty = AerialImages(names=("e",), images=(scenes.images[1],), boxes=(np.zeros((0, 4), np.float32),))
        tile_dataset(empty, params, augment=False, seed=0)


def test_tile_stream_is_the_tf_data_stream_in_numpy() -> None:
    """Without a shuffle buffer the two streams are the same tiles; with one, the same multiset per buffer-free
    pass is not promised (each buffer draws its own order), so shuffled streams are checked for seeding only."""
    scenes = hand_scenes()
    params = AerialParams(name="x", data_tiles_per_gt_roi=4, shuffle=False, augment=True, data_rnd_hue=False)
    n = scenes.num_boxes * 4 * 2
    want = list(tile_dataset(scenes, params, augment=True, seed=5).take(n).as_numpy_iterator())
    got = [next(s) for s in [tile_stream(scenes, params, augment=True, seed=5)] for _ in range(n)]
    for (t1, r1), (t2, r2) in zip(want, got, strict=True):
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(r1, r2)
    shuffled = dataclasses.replace(params, shuffle=True, shuffle_buf=8, data_rnd_hue=True)

    def take(seed: int) -> list[bytes]:
        stream = tile_stream(scenes, shuffled, augment=True, seed=seed)
        return [next(stream)[0].tobytes() for _ in range(n)]

    assert take(1) == take(1) and take(1) != take(2)
    with pytest.raises(DataError, match="no boxes"):
        empty = AerialImages(names=("e",), images=(scenes.images[1],), boxes=(np.zeros((0, 4), np.float32),))
        tile_stream(empty, params, augment=False, seed=0)


def test_hue_in_numpy_is_tensorflows_to_one_level() -> None:
    from harness.data._tiles import _apply_hue, _hue_draw

    rng = np.random.default_rng(4)
    for _ in range(6):
        tile = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        factors, delta = _hue_draw(rng)
        want = _apply_hue(tile, None, factors, delta)[0].numpy().astype(int)
        got = hue_numpy(tile, factors, float(delta)).astype(int)
        assert np.abs(got - want).max() <= 1 and np.mean(got != want) < 0.05


# ----------------------------------------------------------------------------- synthetic scenes and the catalog


def test_synthetic_scenes_are_deterministic_with_boxes_inside() -> None:
    start = time.perf_counter()
    a = synthetic_scenes(8, 512, 6, seed=0)
    elapsed = time.perf_counter() - start
    b = synthetic_scenes(8, 512, 6, seed=0)
    assert elapsed < 5.0
    assert a.names == b.names
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a.images, b.images, strict=True))
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a.boxes, b.boxes, strict=True))
    assert a.images[0].tobytes() != synthetic_scenes(8, 512, 6, seed=1).images[0].tobytes()
    boxes = np.concatenate(a.boxes)
    assert len(boxes) >= 8 and all(len(bx) for bx in a.boxes)
    assert (boxes >= 0).all() and (boxes <= 512).all()
    side = boxes[:, 2] - boxes[:, 0]
    np.testing.assert_allclose(side, boxes[:, 3] - boxes[:, 1], rtol=1e-5)
    assert side.min() >= 10 and side.max() <= 90


def test_synthetic_dataset_through_the_catalog() -> None:
    assert {"airbus", "planespotting", "aerial_synthetic"} <= set(list_datasets())
    for name in ("airbus", "planespotting", "aerial_synthetic"):
        check_serves("data", name, "detection")
        with pytest.raises(ConfigError):
            check_serves("data", name, "classification")
    assert params_class("data", "aerial_synthetic") is SyntheticSceneParams
    data = load_dataset(SyntheticSceneParams())
    assert isinstance(data, DetectionDataset)
    assert data.x_train.shape == (0, TILE, TILE, 3) and data.y_train.shape == (0, MAX_ROIS, 4)
    assert data.input_shape == (TILE, TILE, 3) and data.num_classes == 0
    assert (len(data.train_images), len(data.eval_images)) == (6, 2)
    assert len(data.x_test) == data.eval_images.num_boxes * 2 and data.x_test.dtype == np.uint8
    assert len(data.y_test) == len(data.x_test)
    small = data.subset(2, 3)
    assert isinstance(small, DetectionDataset)
    assert small.train_images.names == data.train_images.names[:2] and len(small.x_test) == 3
    assert small.eval_images is data.eval_images
    one = load_dataset(SyntheticSceneParams(eval_images=1))
    assert isinstance(one, DetectionDataset)
    assert len(one.eval_images) == 1 and len(one.x_test) == len(data.x_test)
    assert one.checksum == data.checksum


@pytest.mark.parametrize(
    ("cls", "key", "value"),
    [
        (AerialParams, "data_tiles_per_gt_roi", 0),
        (AerialParams, "data_rnd_distmax", -1.0),
        (AerialParams, "shuffle_buf", 0),
        (AerialParams, "eval_tiles_per_gt_roi", 0),
        (AerialParams, "eval_images", -1),
        (AirbusParams, "split", "scene"),
        (AirbusParams, "eval_fraction", 1.0),
        (PlanespottingParams, "folder", " "),
        (SyntheticSceneParams, "images", 1),
        (SyntheticSceneParams, "image_size", 64),
        (SyntheticSceneParams, "planes", 0),
    ],
)
def test_bad_params_name_their_key(cls: type[AerialParams], key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"^{key} must be"):
        cls(**{key: value})


def test_airbus_split_tag() -> None:
    assert AirbusParams(split="source").tags() == {"data.split": "source"}


# ----------------------------------------------------------------------------- Airbus layout fixtures


def jpeg(path: Path, seed: int = 0, side: int = SIDE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def polygon(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'"[({x1}, {y1}), ({x2}, {y1}), ({x2}, {y2}), ({x1}, {y2}), ({x1}, {y1})]"'


GOOD_ROWS = [
    ("a.jpg", polygon(10, 20, 50, 40), "Airplane"),  # 40x20 -> square 40 on the same centre
    ("a.jpg", polygon(250, 100, 305, 160), "Truncated_airplane"),  # overshoots the border by 5 px: fine
    ("b.jpg", polygon(100, 100, 130, 130), "Airplane"),
    ("c.jpg", polygon(0, 0, 30, 30), "Airplane"),
]


def write_airbus(root: Path, rows: list[tuple[str, str, str]] | None = None, images: str = "abc") -> Path:
    folder = root / "airbus_aircraft"
    for seed, name in enumerate(images):
        jpeg(folder / "images" / f"{name}.jpg", seed)
    jpeg(folder / "extras" / "x.jpg", 9)
    lines = ["id,image_id,geometry,class"]
    lines += [f"{i},{name},{geom},{cls}" for i, (name, geom, cls) in enumerate(rows or GOOD_ROWS, start=1)]
    (folder / "annotations.csv").write_text("\n".join(lines) + "\n")
    (folder / "split_in_source_repo.csv").write_text("extras,x.jpg\ntrain,a.jpg\ntrain,b.jpg\nvalid,c.jpg\n")
    return folder


def test_airbus_fixture_reads_squares_and_splits(tmp_path: Path) -> None:
    folder = write_airbus(tmp_path)
    images, checksum = read_airbus(tmp_path)
    assert images.names == ("a.jpg", "b.jpg", "c.jpg")
    assert images.images[0].shape == (SIDE, SIDE, 3) and images.images[0].dtype == np.uint8
    np.testing.assert_allclose(images.boxes[0], np.array([[10, 10, 50, 50], [247.5, 100, 307.5, 160]]))
    assert images.num_boxes == 4
    assert read_airbus(tmp_path)[1] == checksum
    (folder / "images" / "b.jpg").write_bytes((folder / "images" / "b.jpg").read_bytes() + b"\0")
    assert read_airbus(tmp_path)[1] != checksum
    train, held = source_split(images, folder / "split_in_source_repo.csv")
    assert (train.names, held.names) == (("a.jpg", "b.jpg"), ("c.jpg",))
    train, held = random_split(images, 0, 0.34)
    assert len(held) == 1 and sorted(train.names + held.names) == list(images.names)
    assert extras(tmp_path) == [folder / "extras" / "x.jpg"]
    data = load_airbus(tmp_path, AirbusParams(split="source", eval_tiles_per_gt_roi=3))
    assert data.train_images.names == ("a.jpg", "b.jpg") and data.x_test.shape == (3, TILE, TILE, 3)
    assert data.source.endswith("(split=source, seed=0)")


def test_airbus_csv_without_an_image_is_read_with_no_boxes(tmp_path: Path) -> None:
    write_airbus(tmp_path, rows=GOOD_ROWS[:2], images="abc")
    images, _ = read_airbus(tmp_path)
    assert [len(b) for b in images.boxes] == [2, 0, 0]


def bad_case(tmp_path: Path, case: str) -> tuple[str, str]:
    """Break one thing in a good fixture; return (path, line or '') the message must name."""
    folder = write_airbus(tmp_path)
    csv_path = folder / "annotations.csv"
    rows = list(GOOD_ROWS)
    if case == "no folder":
        return str(tmp_path / "nowhere" / "airbus_aircraft"), ""
    if case == "no csv":
        csv_path.unlink()
        return str(csv_path), ""
    if case == "no images":
        for p in (folder / "images").iterdir():
            p.unlink()
        (folder / "images").rmdir()
        return str(folder / "images"), ""
    if case == "bad image":
        (folder / "images" / "b.jpg").write_bytes(b"not a jpeg at all")
        return str(folder / "images" / "b.jpg"), ""
    if case == "truncated image":
        data = (folder / "images" / "b.jpg").read_bytes()
        (folder / "images" / "b.jpg").write_bytes(data[: len(data) // 3])
        return str(folder / "images" / "b.jpg"), ""
    if case == "polygon":
        rows[2] = ("b.jpg", '"[(100, 100), (130, oops)]"', "Airplane")
    elif case == "two points":
        rows[2] = ("b.jpg", '"[(100, 100), (130, 130)]"', "Airplane")
    elif case == "flat box":
        rows[2] = ("b.jpg", polygon(100, 100, 130, 100), "Airplane")
    elif case == "outside":
        rows[2] = ("b.jpg", polygon(400, 10, 450, 60), "Airplane")
    elif case == "mostly outside":
        rows[2] = ("b.jpg", polygon(280, 10, 340, 60), "Airplane")
    elif case == "missing image":
        rows[2] = ("zzz.jpg", polygon(10, 10, 40, 40), "Airplane")
    elif case == "fields":
        csv_path.write_text("id,image_id,geometry,class\n1,a.jpg,Airplane\n")
        return str(csv_path), ":2"
    elif case == "header":
        csv_path.write_text("id,image,polygon,class\n1,a.jpg," + polygon(1, 1, 9, 9) + ",Airplane\n")
        return str(csv_path), ":1"
    elif case == "empty":
        csv_path.write_text("")
        return str(csv_path), ""
    elif case == "header only":
        csv_path.write_text("id,image_id,geometry,class\n")
        return str(csv_path), ""
    write_airbus(tmp_path, rows=rows)
    return str(csv_path), ":4"  # the header is line 1, rows[2] is line 4


BAD_CASES = [
    "no folder",
    "no csv",
    "no images",
    "bad image",
    "truncated image",
    "polygon",
    "two points",
    "flat box",
    "outside",
    "mostly outside",
    "missing image",
    "fields",
    "header",
    "empty",
    "header only",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_airbus_input_names_file_and_line(tmp_path: Path, case: str) -> None:
    where, line = bad_case(tmp_path, case)
    data_dir = tmp_path / "nowhere" if case == "no folder" else tmp_path
    with pytest.raises(DataError) as err:
        read_airbus(data_dir)
    assert f"{where}{line}" in str(err.value), str(err.value)


def test_no_data_dir_is_a_data_error() -> None:
    with pytest.raises(DataError, match="HARNESS_DATA_DIR"):
        read_airbus(None)
    with pytest.raises(DataError, match="HARNESS_DATA_DIR"):
        load_planespotting(None)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("train,a.jpg\ntrain,b.jpg\nvalid,c.jpg\ntest,d.jpg\n", ":4", "expected 'train|valid|extras"),
        ("train,a.jpg\ntrain,b.jpg\nvalid,zzz.jpg\n", ":3", "not among the annotated"),
        ("train,a.jpg\ntrain,a.jpg\nvalid,c.jpg\n", ":2", "listed twice"),
        ("train,a.jpg\nvalid,c.jpg\n", "", "does not list 1"),
    ],
)
def test_bad_source_split_names_file_and_line(tmp_path: Path, text: str, line: str, message: str) -> None:
    folder = write_airbus(tmp_path)
    images, _ = read_airbus(tmp_path)
    path = folder / "split_in_source_repo.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        source_split(images, path)
    assert f"{path}{line}" in str(err.value)


def test_missing_source_split_fails_before_decoding(tmp_path: Path) -> None:
    folder = write_airbus(tmp_path)
    (folder / "split_in_source_repo.csv").unlink()
    (folder / "images" / "a.jpg").write_bytes(b"garbage")  # never reached
    with pytest.raises(DataError, match="split file not found"):
        load_airbus(tmp_path, AirbusParams(split="source"))


# ----------------------------------------------------------------------------- the reference's layout


def write_planespotting(root: Path, folder: str = "planespotting") -> None:
    for sub, n in ((folder, 2), (f"{folder}_eval", 1)):
        for k in range(n):
            jpeg(root / sub / f"airport{k}.jpg", k)
            markers = {"markers": [{"x": 20 + 40 * k, "y": 30, "w": 50}, {"x": 200, "y": 200, "w": 40.5}]}
            (root / sub / f"airport{k}.json").write_text(json.dumps(markers))


def test_planespotting_layout(tmp_path: Path) -> None:
    write_planespotting(tmp_path)
    data = load_planespotting(tmp_path, PlanespottingParams(eval_tiles_per_gt_roi=2))
    assert data.train_images.names == ("airport0.jpg", "airport1.jpg")
    np.testing.assert_allclose(data.train_images.boxes[1], np.array([[60, 30, 110, 80], [200, 200, 240.5, 240.5]]))
    assert data.eval_images.names == ("airport0.jpg",) and data.x_test.shape[0] == 4
    assert data.checksum == load_planespotting(tmp_path, PlanespottingParams(eval_tiles_per_gt_roi=2)).checksum


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"marks": []}, "no 'markers' key"),
        ({"markers": [{"x": 1, "y": 2}]}, "markers[0]"),
        ({"markers": [{"x": 1, "y": 2, "w": -3}]}, "markers[0]"),
        ({"markers": [{"x": 1, "y": 2, "w": True}]}, "markers[0]"),
        ({"markers": [{"x": 10, "y": 10, "w": 5}, {"x": 900, "y": 10, "w": 5}]}, "markers[1]: box"),
        ('{"markers": [\n{"x": 1,}]}', ":2: invalid JSON"),
    ],
)
def test_bad_markers_name_the_file(tmp_path: Path, content: object, fragment: str) -> None:
    write_planespotting(tmp_path)
    path = tmp_path / "planespotting" / "airport1.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(DataError) as err:
        read_planespotting(tmp_path / "planespotting")
    assert str(path) in str(err.value) and fragment in str(err.value), str(err.value)


def test_unpaired_planespotting_files_are_errors(tmp_path: Path) -> None:
    write_planespotting(tmp_path)
    (tmp_path / "planespotting" / "airport1.json").unlink()
    with pytest.raises(DataError, match=r"airport1\.jpg: no markers file airport1\.json"):
        read_planespotting(tmp_path / "planespotting")
    with pytest.raises(DataError, match="planespotting_x: folder not found"):
        read_planespotting(tmp_path / "planespotting_x")


def test_grey_jpeg_becomes_rgb(tmp_path: Path) -> None:
    write_planespotting(tmp_path)
    buf = io.BytesIO()
    Image.fromarray(np.full((SIDE, SIDE), 77, np.uint8)).save(buf, format="JPEG")
    (tmp_path / "planespotting" / "airport0.jpg").write_bytes(buf.getvalue())
    images, _ = read_planespotting(tmp_path / "planespotting")
    assert images.images[0].shape == (SIDE, SIDE, 3)


# ----------------------------------------------------------------------------- the real data


@pytest.fixture(scope="module")
def airbus() -> tuple[AerialImages, str]:
    """The 103 real images, decoded once for the module (about 2 GB)."""
    if not (REAL_DATA / "airbus_aircraft" / "annotations.csv").is_file():
        missing_real_data("Airbus aircraft (airbus_aircraft/annotations.csv)")
    return read_airbus(REAL_DATA)


@pytest.mark.realdata
def test_real_airbus_counts(airbus: tuple[AerialImages, str]) -> None:
    images, checksum = airbus
    assert len(images) == 103 and images.num_boxes == 3425
    assert all(im.shape == (2560, 2560, 3) and im.dtype == np.uint8 for im in images.images)
    boxes = np.concatenate(images.boxes)
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert max(len(b) for b in images.boxes) == 92
    assert len(checksum) == 64
    assert len(extras(REAL_DATA)) == 6


@pytest.mark.realdata
def test_real_airbus_splits_by_image(airbus: tuple[AerialImages, str]) -> None:
    images, _ = airbus
    train, held = random_split(images, 0, 0.2)
    assert (len(train), len(held)) == (82, 21)
    assert not set(train.names) & set(held.names)
    assert len(set(train.names) | set(held.names)) == 103
    train, held = source_split(images, REAL_DATA / "airbus_aircraft" / "split_in_source_repo.csv")
    assert (len(train), len(held)) == (95, 8) and not set(train.names) & set(held.names)


@pytest.mark.realdata
def test_real_airbus_tiles(airbus: tuple[AerialImages, str]) -> None:
    images, checksum = airbus
    train, held = random_split(images, 0, 0.2)
    params = AirbusParams(eval_tiles_per_gt_roi=1, eval_images=3)
    data = detection_dataset("airbus", train, held, params, checksum, "real")
    assert data.x_test.shape == (held.num_boxes, TILE, TILE, 3) and len(data.eval_images) == 3
    # The tile at each eval box holds that box and every other one it overlaps.
    for i in range(5):
        assert len(real_rows(data.y_test[i])) >= 1
    tiles = generate_tiles(train, 166, 2.0, np.random.default_rng(0), shuffle_files=True)
    for _ in range(500):
        tile, rois = next(tiles)
        assert tile.shape == (TILE, TILE, 3) and len(real_rows(rois)) <= MAX_ROIS


def test_detection_dataset_is_an_array_dataset_replacement() -> None:
    data = load_dataset(SyntheticSceneParams(images=2, planes=1, eval_tiles_per_gt_roi=1))
    assert isinstance(data, DetectionDataset)
    moved = dataclasses.replace(data, name="other")
    assert moved.train_images is data.train_images
