"""Tests of the PlanesNet reader on tiny generated tiles (and one test on the real data)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.data import PlanesNetParams, Split, load_dataset
from harness.data._planesnet import (
    PlanesNetTiles,
    find_planesnet,
    load_planesnet,
    parse_tile_name,
    read_planesnet,
    split_indices,
)
from harness.errors import DataError

REAL_DATA = Path(os.environ.get("HARNESS_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
N_SCENES, PER_SCENE = 12, 5
PATTERN_RE = r"\{label\}__\{scene_id\}__\{lon\}_\{lat\}\.png"

Tile = tuple[str, np.ndarray]  # (file name, uint8 [20, 20, 3])


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)


# ----------------------------------------------------------------------------- generated data


def make_tiles(n_scenes: int = N_SCENES, per_scene: int = PER_SCENE, seed: int = 0) -> list[Tile]:
    """Random tiles named like the real ones: scene ids with underscores, negative longitudes."""
    rng = np.random.default_rng(seed)
    tiles: list[Tile] = []
    for s in range(n_scenes):
        scene = f"2017{s:04d}_1813{s:02d}_{s * 37:04x}"
        for t in range(per_scene):
            label = (s + t) % 2
            lon, lat = float(-122.5 + rng.random()), float(37.0 + rng.random())
            name = f"{label}__{scene}__{lon!r}_{lat!r}.png"
            tiles.append((name, rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)))
    return tiles


def png_bytes(image: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, mode=mode).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def expected(tiles: list[Tile]) -> PlanesNetTiles:
    """What the reader should return: tiles sorted by name, fields parsed from the names."""
    tiles = sorted(tiles)
    parsed = [parse_tile_name(name) for name, _ in tiles]
    assert all(p is not None for p in parsed)
    return PlanesNetTiles(
        images=np.stack([img for _, img in tiles]),
        labels=np.array([p[0] for p in parsed if p], dtype=np.int64),
        scene_ids=np.array([p[1] for p in parsed if p], dtype=np.str_),
        locations=np.array([(p[2], p[3]) for p in parsed if p], dtype=np.float64),
        checksum="",
        source="",
    )


def write_zip(
    path: Path, tiles: list[Tile], *, prefix: str = "planesnet/", extra: dict[str, bytes] | None = None
) -> bytes:
    """A zip with the tiles in reverse name order (the reader must sort), plus ``extra`` members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        if prefix:
            z.writestr(prefix, b"")  # a directory entry
        for name, img in sorted(tiles, reverse=True):
            z.writestr(prefix + name, png_bytes(img))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path.read_bytes()


def write_folder(folder: Path, tiles: list[Tile]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in tiles:
        (folder / name).write_bytes(png_bytes(img))
    return folder


def json_doc(tiles: list[Tile]) -> dict[str, list]:
    """Kaggle's layout, in sorted-name order: each item all red, then all green, then all blue."""
    exp = expected(tiles)
    return {
        "data": [img.transpose(2, 0, 1).reshape(-1).tolist() for img in exp.images],
        "labels": exp.labels.tolist(),
        "scene_ids": exp.scene_ids.tolist(),
        "locations": exp.locations.tolist(),
    }


def write_json(path: Path, doc: dict) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path.read_bytes()


def assert_same_tiles(got: PlanesNetTiles, want: PlanesNetTiles) -> None:
    n = len(want.labels)
    assert got.images.shape == (n, 20, 20, 3) and got.images.dtype == np.uint8
    assert got.labels.shape == (n,) and got.labels.dtype == np.int64
    assert got.locations.shape == (n, 2) and got.locations.dtype == np.float64
    assert got.scene_ids.dtype.kind == "U"
    np.testing.assert_array_equal(got.images, want.images)
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.scene_ids, want.scene_ids)
    np.testing.assert_array_equal(got.locations, want.locations)


@pytest.fixture(scope="module")
def tiles() -> list[Tile]:
    return make_tiles()


# ----------------------------------------------------------------------------- the three forms


def test_three_forms_give_identical_tiles(tmp_path: Path, tiles: list[Tile]) -> None:
    zip_raw = write_zip(tmp_path / "z" / "planesnet" / "planesnet.zip", tiles)
    json_raw = write_json(tmp_path / "j" / "planesnet.json", json_doc(tiles))
    write_folder(tmp_path / "f" / "planesnet" / "planesnet", tiles)
    want = expected(tiles)
    got = {form: read_planesnet(find_planesnet(tmp_path / form)) for form in ("z", "j", "f")}
    for form in got.values():
        assert_same_tiles(form, want)
    assert got["z"].checksum == hashlib.sha256(zip_raw).hexdigest()
    assert got["j"].checksum == hashlib.sha256(json_raw).hexdigest()
    assert len(got["f"].checksum) == 64
    # The same split of the same tiles, whatever the form.
    loaded = [load_planesnet(tmp_path / form, Split("scene", 3, 0.2)) for form in ("z", "j", "f")]
    for ds in loaded[1:]:
        np.testing.assert_array_equal(ds.x_train, loaded[0].x_train)
        np.testing.assert_array_equal(ds.y_test, loaded[0].y_test)


def test_loaded_dataset_shapes_and_source(tmp_path: Path, tiles: list[Tile]) -> None:
    write_zip(tmp_path / "planesnet" / "planesnet.zip", tiles)
    ds = load_planesnet(tmp_path, Split("scene", 0, 0.2))
    assert ds.name == "planesnet" and ds.num_classes == 2 and ds.input_shape == (20, 20, 3)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert len(ds.x_train) + len(ds.x_test) == len(tiles)
    assert set(np.unique(np.concatenate([ds.y_train, ds.y_test]))) == {0, 1}
    assert ds.source == f"{tmp_path / 'planesnet' / 'planesnet.zip'} (split=scene, seed=0)"


def test_load_dataset_through_registry(tmp_path: Path, tiles: list[Tile]) -> None:
    write_zip(tmp_path / "planesnet" / "planesnet.zip", tiles)
    ds = load_dataset(PlanesNetParams(split="scene", split_seed=0, eval_fraction=0.2), tmp_path)
    assert ds.name == "planesnet" and len(ds.x_train) + len(ds.x_test) == len(tiles)
    direct = load_planesnet(tmp_path, Split("scene", 0, 0.2))
    assert ds.source == direct.source and np.array_equal(ds.y_test, direct.y_test)


def test_data_dir_env_is_honoured(tmp_path: Path, tiles: list[Tile], monkeypatch: pytest.MonkeyPatch) -> None:
    write_zip(tmp_path / "planesnet.zip", tiles)
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    assert len(load_dataset("planesnet").y_train) > 0


def test_json_plane_order(tmp_path: Path) -> None:
    # Built by hand, independent of the reader's reshape: 400 red, 400 green, 400 blue, each row-major.
    red, green, blue = [10] * 400, [20] * 400, [30] * 400
    red[0], green[0], blue[0] = 200, 100, 50  # pixel [0, 0]
    red[399], green[399], blue[399] = 1, 2, 3  # pixel [19, 19]
    red[1] = 77  # row 0, column 1 (not row 1, column 0)
    doc = {"data": [red + green + blue], "labels": [1], "scene_ids": ["s1"], "locations": [[-1.5, 2.5]]}
    write_json(tmp_path / "planesnet.json", doc)
    img = read_planesnet(tmp_path / "planesnet.json").images[0]
    assert img[0, 0].tolist() == [200, 100, 50]
    assert img[19, 19].tolist() == [1, 2, 3]
    assert img[0, 1].tolist() == [77, 20, 30] and img[1, 0].tolist() == [10, 20, 30]


def test_json_keeps_file_order(tmp_path: Path, tiles: list[Tile]) -> None:
    doc = json_doc(tiles)
    for key in doc:
        doc[key] = doc[key][::-1]
    write_json(tmp_path / "planesnet.json", doc)
    got = read_planesnet(tmp_path / "planesnet.json")
    np.testing.assert_array_equal(got.images, expected(tiles).images[::-1])


def test_zip_ignores_directories_and_non_tiles(tmp_path: Path, tiles: list[Tile]) -> None:
    junk = {
        "__MACOSX/planesnet/._" + tiles[0][0]: b"\x00\x05\x16\x07 resource fork",
        "planesnet/._" + tiles[1][0]: b"resource fork beside the file",
        "planesnet/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "README.txt": b"PlanesNet",
    }
    write_zip(tmp_path / "planesnet.zip", tiles, prefix="deep/er/", extra=junk)
    assert_same_tiles(read_planesnet(tmp_path / "planesnet.zip"), expected(tiles))


def test_rgba_and_grey_tiles_are_converted(tmp_path: Path) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, (20, 20, 4), dtype=np.uint8)
    grey = np.arange(400, dtype=np.uint32).reshape(20, 20).astype(np.uint8)
    with zipfile.ZipFile(tmp_path / "planesnet.zip", "w") as z:
        z.writestr("planesnet/0__a__1.0_2.0.png", png_bytes(rgba))
        z.writestr("planesnet/1__b__1.0_2.0.png", png_bytes(grey))
    got = read_planesnet(tmp_path / "planesnet.zip")
    np.testing.assert_array_equal(got.images[0], rgba[..., :3])
    np.testing.assert_array_equal(got.images[1], np.repeat(grey[..., None], 3, axis=2))


def test_search_order(tmp_path: Path) -> None:
    a, b, c = make_tiles(2, 2, seed=1), make_tiles(2, 3, seed=2), make_tiles(3, 1, seed=3)
    write_folder(tmp_path / "planesnet" / "planesnet", c)
    assert find_planesnet(tmp_path) == tmp_path / "planesnet" / "planesnet"
    write_json(tmp_path / "planesnet.json", json_doc(b))
    assert find_planesnet(tmp_path) == tmp_path / "planesnet.json"  # json beats a folder
    write_json(tmp_path / "planesnet" / "planesnet.json", json_doc(b))
    assert find_planesnet(tmp_path) == tmp_path / "planesnet" / "planesnet.json"  # planesnet/ first
    write_zip(tmp_path / "planesnet.zip", a)
    assert find_planesnet(tmp_path) == tmp_path / "planesnet.zip"  # a zip beats everything
    assert len(load_planesnet(tmp_path).y_train) + len(load_planesnet(tmp_path).y_test) == len(a)


def test_folder_of_pngs_directly_in_planesnet_dir(tmp_path: Path, tiles: list[Tile]) -> None:
    write_folder(tmp_path / "planesnet", tiles)
    assert find_planesnet(tmp_path) == tmp_path / "planesnet"
    assert_same_tiles(read_planesnet(tmp_path / "planesnet"), expected(tiles))


def test_folder_checksum_covers_names_and_bytes(tmp_path: Path, tiles: list[Tile]) -> None:
    folder = write_folder(tmp_path / "planesnet", tiles[:4])
    before = read_planesnet(folder).checksum
    assert read_planesnet(folder).checksum == before
    name, img = tiles[0]
    (folder / name).write_bytes(png_bytes(255 - img))
    changed = read_planesnet(folder).checksum
    assert changed != before
    (folder / name).rename(folder / name.replace("__2017", "__2018"))
    assert read_planesnet(folder).checksum != changed


# ----------------------------------------------------------------------------- not found


def test_no_data_dir_says_there_is_no_download() -> None:
    with pytest.raises(DataError, match=r"no download.*login.*HARNESS_DATA_DIR or --data-dir.*planesnet\.zip"):
        load_planesnet(None)


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope does not exist; set HARNESS_DATA_DIR or --data-dir"):
        load_planesnet(tmp_path / "nope")


def test_empty_data_dir(tmp_path: Path) -> None:
    (tmp_path / "planesnet" / "scenes").mkdir(parents=True)
    with pytest.raises(DataError, match=r"PlanesNet not found in .*expected planesnet\.zip, planesnet\.json"):
        load_planesnet(tmp_path)


# ----------------------------------------------------------------------------- splits


def many_scene_ids(n_scenes: int = 400, seed: int = 0) -> np.ndarray:
    """Scene ids for 1..20 tiles per scene, in scene order like the sorted tiles."""
    sizes = np.random.default_rng(seed).integers(1, 21, n_scenes)
    return np.repeat(np.array([f"scene_{i:04d}" for i in range(n_scenes)]), sizes)


@pytest.mark.parametrize("kind", ["default", "scene"])
def test_scene_split_keeps_scenes_whole_and_hits_the_fraction(kind: str) -> None:
    scenes = many_scene_ids()
    for seed in range(5):
        train, ev = split_indices(scenes, Split(kind, seed, 0.2))
        np.testing.assert_array_equal(np.sort(np.concatenate([train, ev])), np.arange(len(scenes)))
        assert not set(scenes[train]) & set(scenes[ev])
        assert abs(len(ev) / len(scenes) - 0.2) < 0.02


def test_scene_split_on_loaded_tiles(tmp_path: Path, tiles: list[Tile]) -> None:
    write_zip(tmp_path / "planesnet.zip", tiles)
    all_tiles = read_planesnet(tmp_path / "planesnet.zip")
    ds = load_planesnet(tmp_path, Split("scene", 0, 0.2))
    train, ev = split_indices(all_tiles.scene_ids, Split("scene", 0, 0.2))
    assert not set(all_tiles.scene_ids[train]) & set(all_tiles.scene_ids[ev])
    assert len(ev) == 10  # 2 of the 12 five-tile scenes: 10/60 is the closest to 20% below 15/60
    np.testing.assert_array_equal(ds.x_test, all_tiles.images[ev])
    np.testing.assert_array_equal(ds.y_train, all_tiles.labels[train])


def test_split_is_deterministic_in_the_seed() -> None:
    scenes = many_scene_ids()
    a = split_indices(scenes, Split("scene", 7, 0.2))
    b = split_indices(scenes, Split("scene", 7, 0.2))
    c = split_indices(scenes, Split("scene", 8, 0.2))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert set(scenes[a[1]]) != set(scenes[c[1]])


def test_split_sides_are_shuffled() -> None:
    # ArrayDataset.subset keeps the first n; sorted order would put all label-0 tiles first.
    train, ev = split_indices(many_scene_ids(), Split("scene", 0, 0.2))
    assert not np.all(np.diff(train) > 0) and not np.all(np.diff(ev) > 0)


def test_random_split_is_tile_level() -> None:
    scenes = many_scene_ids()
    train, ev = split_indices(scenes, Split("random", 0, 0.2))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, ev])), np.arange(len(scenes)))
    assert len(ev) == round(0.2 * len(scenes))
    assert set(scenes[train]) & set(scenes[ev])  # it leaks neighbours: that is the point of comparing
    scene_ev = split_indices(scenes, Split("scene", 0, 0.2))[1]
    assert set(ev.tolist()) != set(scene_ev.tolist())
    again = split_indices(scenes, Split("random", 0, 0.2))[1]
    other = split_indices(scenes, Split("random", 1, 0.2))[1]
    np.testing.assert_array_equal(ev, again)
    assert set(ev.tolist()) != set(other.tolist())


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_other_fractions(fraction: float) -> None:
    scenes = many_scene_ids()
    for kind in ("scene", "random"):
        _, ev = split_indices(scenes, Split(kind, 0, fraction))
        assert abs(len(ev) / len(scenes) - fraction) < 0.02


def test_unknown_split_kind_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown split='official'; valid: default, scene, random"):
        load_planesnet(tmp_path, Split("official"))
    with pytest.raises(DataError, match=r"valid: default, scene, random"):
        split_indices(many_scene_ids(), Split("by-time"))


def test_scene_split_needs_two_scenes() -> None:
    with pytest.raises(DataError, match=r"at least 2 scenes, found 1; use split=random"):
        split_indices(np.array(["s"] * 10), Split("scene"))


# ----------------------------------------------------------------------------- bad zips


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "planesnet.zip").write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match=r"planesnet\.zip: is not a valid zip archive / is truncated \(BadZipFile"):
        load_planesnet(tmp_path)


def test_truncated_zip(tmp_path: Path, tiles: list[Tile]) -> None:
    raw = write_zip(tmp_path / "planesnet.zip", tiles)
    (tmp_path / "planesnet.zip").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"planesnet\.zip: is not a valid zip archive / is truncated"):
        load_planesnet(tmp_path)


def test_corrupt_zip_member_is_named(tmp_path: Path, tiles: list[Tile]) -> None:
    raw = write_zip(tmp_path / "planesnet.zip", tiles)
    name, img = tiles[7]
    at = raw.find(png_bytes(img))
    assert at > 0
    bad = bytearray(raw)
    bad[at + 100] ^= 0xFF
    (tmp_path / "planesnet.zip").write_bytes(bytes(bad))
    with pytest.raises(DataError, match=rf"planesnet\.zip: member 'planesnet/{name}': cannot be extracted.*CRC"):
        load_planesnet(tmp_path)


def test_zip_without_tiles(tmp_path: Path) -> None:
    write_zip(tmp_path / "planesnet.zip", [], extra={"README.txt": b"hi", "__MACOSX/._x.png": b"fork"})
    with pytest.raises(DataError, match=r"planesnet\.zip: no PlanesNet tiles in the archive; expected PNG members"):
        load_planesnet(tmp_path)


def bad_member(tmp_path: Path, name: str, data: bytes) -> None:
    """A zip of good tiles plus one bad member ``planesnet/{name}``."""
    write_zip(tmp_path / "planesnet.zip", make_tiles(2, 2), extra={f"planesnet/{name}": data})


@pytest.mark.parametrize(
    "name",
    [
        "plane.png",
        "1__scene.png",
        "1__scene__-122.5.png",
        "1__scene__abc_37.5.png",
        "x__scene__-122.5_37.5.png",
        "1__scene__nan_37.5.png",
        "1____-122.5_37.5.png",
    ],
)
def test_unparseable_file_name(tmp_path: Path, name: str) -> None:
    bad_member(tmp_path, name, png_bytes(np.zeros((20, 20, 3), np.uint8)))
    with pytest.raises(DataError, match=rf"member 'planesnet/{name}': file name .* does not match {PATTERN_RE}"):
        load_planesnet(tmp_path)


def test_label_other_than_0_or_1(tmp_path: Path) -> None:
    bad_member(tmp_path, "2__scene__-122.5_37.5.png", png_bytes(np.zeros((20, 20, 3), np.uint8)))
    with pytest.raises(DataError, match=r"2__scene__-122\.5_37\.5\.png': label must be 0 \(no plane\) or 1.*says 2"):
        load_planesnet(tmp_path)


@pytest.mark.parametrize(("shape", "found"), [((20, 21, 3), "21x20"), ((19, 20, 3), "20x19")])
def test_wrong_tile_size(tmp_path: Path, shape: tuple[int, int, int], found: str) -> None:
    bad_member(tmp_path, "1__s__1.0_2.0.png", png_bytes(np.zeros(shape, np.uint8)))
    with pytest.raises(DataError, match=rf"member 'planesnet/1__s__1\.0_2\.0\.png': expected a 20x20 tile.*is {found}"):
        load_planesnet(tmp_path)


def test_sixteen_bit_png_is_refused(tmp_path: Path) -> None:
    bad_member(tmp_path, "1__s__1.0_2.0.png", png_bytes(np.full((20, 20), 40000, np.uint16)))
    with pytest.raises(DataError, match=r"1__s__1\.0_2\.0\.png': expected an RGB PNG .* but the mode is I"):
        load_planesnet(tmp_path)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not an image at all", "UnidentifiedImageError"),
        (png_bytes(np.full((20, 20, 3), 7, np.uint8))[:60], "OSError"),  # header intact, pixels cut off
    ],
)
def test_undecodable_png(tmp_path: Path, data: bytes, error: str) -> None:
    bad_member(tmp_path, "0__s__1.0_2.0.png", data)
    with pytest.raises(DataError, match=rf"0__s__1\.0_2\.0\.png': cannot decode the PNG \({error}"):
        load_planesnet(tmp_path)


def test_jpeg_named_png(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, format="JPEG")
    bad_member(tmp_path, "0__s__1.0_2.0.png", buf.getvalue())
    with pytest.raises(DataError, match=r"0__s__1\.0_2\.0\.png': expected a PNG image but found JPEG"):
        load_planesnet(tmp_path)


def test_folder_errors_name_the_file(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "planesnet", make_tiles(2, 2))
    (folder / "1__s__1.0_2.0.png").write_bytes(png_bytes(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(
        DataError, match=r"planesnet/1__s__1\.0_2\.0\.png: expected a 20x20 tile but the image is 32x32"
    ):
        load_planesnet(tmp_path)


# ----------------------------------------------------------------------------- bad json


def write_bad_json(tmp_path: Path, **changes: object) -> None:
    doc: dict = json_doc(make_tiles(2, 2))
    doc.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del doc[key]
    write_json(tmp_path / "planesnet.json", doc)


def test_truncated_json(tmp_path: Path) -> None:
    write_bad_json(tmp_path)
    raw = (tmp_path / "planesnet.json").read_bytes()
    (tmp_path / "planesnet.json").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"planesnet\.json: invalid or truncated JSON at line 1 column \d+: "):
        load_planesnet(tmp_path)


def test_json_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "planesnet.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=r"planesnet\.json: expected a JSON object with keys data, labels.*found list"):
        load_planesnet(tmp_path)


def test_json_missing_key(tmp_path: Path) -> None:
    write_bad_json(tmp_path, locations=None)
    with pytest.raises(DataError, match=r"planesnet\.json: missing key locations; expected keys data, labels"):
        load_planesnet(tmp_path)


def test_json_lists_of_different_lengths(tmp_path: Path) -> None:
    write_bad_json(tmp_path, labels=[0, 1, 0])
    with pytest.raises(DataError, match=r"different lengths: data=4, labels=3, scene_ids=4, locations=4"):
        load_planesnet(tmp_path)


def test_json_item_of_wrong_length(tmp_path: Path) -> None:
    doc = json_doc(make_tiles(2, 2))
    doc["data"][1] = doc["data"][1][:-1]
    write_json(tmp_path / "planesnet.json", doc)
    with pytest.raises(DataError, match=r"data\[1\] must be a list of 1200 values .* but has length 1199"):
        load_planesnet(tmp_path)


@pytest.mark.parametrize("value", [256, -1])
def test_json_value_out_of_range(tmp_path: Path, value: int) -> None:
    doc = json_doc(make_tiles(2, 2))
    doc["data"][2][5] = value
    write_json(tmp_path / "planesnet.json", doc)
    with pytest.raises(DataError, match=rf"data values must be in 0\.\.255 but data\[2\]\[5\] is {value}"):
        load_planesnet(tmp_path)


def test_json_non_integer_values(tmp_path: Path) -> None:
    doc = json_doc(make_tiles(2, 2))
    doc["data"][0][0] = 1.5
    write_json(tmp_path / "planesnet.json", doc)
    with pytest.raises(DataError, match=r"planesnet\.json: data must hold integers"):
        load_planesnet(tmp_path)


def test_json_bad_label(tmp_path: Path) -> None:
    write_bad_json(tmp_path, labels=[0, 3, 1, 0])
    with pytest.raises(DataError, match=r"labels must be 0 \(no plane\) or 1 \(plane\) but labels\[1\] is 3"):
        load_planesnet(tmp_path)


def test_json_bad_locations(tmp_path: Path) -> None:
    write_bad_json(tmp_path, locations=[[1.0, 2.0]] * 3 + [[1.0]])
    with pytest.raises(DataError, match=r"planesnet\.json: locations must be .*\[lon, lat\]"):
        load_planesnet(tmp_path)


def test_json_without_tiles(tmp_path: Path) -> None:
    write_json(tmp_path / "planesnet.json", {"data": [], "labels": [], "scene_ids": [], "locations": []})
    with pytest.raises(DataError, match=r"planesnet\.json: no PlanesNet tiles"):
        load_planesnet(tmp_path)


# ----------------------------------------------------------------------------- the real data


@pytest.mark.realdata
def test_real_planesnet() -> None:
    archive = REAL_DATA / "planesnet" / "planesnet.zip"
    if not archive.is_file():
        pytest.skip(f"real PlanesNet not found at {archive} (set HARNESS_DATA_DIR)")
    start = time.perf_counter()
    tiles = read_planesnet(find_planesnet(REAL_DATA))
    elapsed = time.perf_counter() - start
    print(f"PlanesNet: read and decoded {len(tiles.labels)} tiles in {elapsed:.1f} s")
    assert tiles.images.shape == (32000, 20, 20, 3)
    assert int(tiles.labels.sum()) == 8000
    assert len(np.unique(tiles.scene_ids)) == 1621
    assert tiles.checksum == hashlib.sha256(archive.read_bytes()).hexdigest()
    train, ev = split_indices(tiles.scene_ids, Split("scene", 0, 0.2))
    assert not set(tiles.scene_ids[train]) & set(tiles.scene_ids[ev])
    assert abs(len(ev) / 32000 - 0.2) < 0.01
    ds = load_planesnet(REAL_DATA, Split("scene", 0, 0.2))
    assert len(ds.x_train) + len(ds.x_test) == 32000
    sums = REAL_DATA / "planesnet" / "planesnet_tiles.sha256"
    if sums.is_file():  # the published per-tile hashes match the members the reader decoded
        want = dict(line.split()[::-1] for line in sums.read_text().splitlines() if line.strip())
        with zipfile.ZipFile(archive) as z:
            got = {
                Path(i.filename).name: hashlib.sha256(z.read(i)).hexdigest()
                for i in z.infolist()
                if i.filename.endswith(".png")
            }
        assert got == want
