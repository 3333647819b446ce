"""PlanesNet reader: 20x20 RGB satellite tiles, label 1 = plane, 0 = no plane.

Three published forms are accepted, searched in this order (the first hit wins,
whichever of the two folders it is in):

1. ``planesnet.zip`` in ``data_dir/planesnet/``, then in ``data_dir/``;
2. Kaggle's ``planesnet.json`` in ``data_dir/planesnet/``, then in ``data_dir/``;
3. a folder of tile PNGs: ``data_dir/planesnet/planesnet/*.png``, then ``data_dir/planesnet/*.png``.

The zip comes first because it is the upstream release and the cheapest to hash
and parse; the JSON holds the same tiles without file names. Tiles are named
``{label}__{scene_id}__{lon}_{lat}.png``. There is no download: the Kaggle copy
needs a login.

The default split is by scene: tiles cut from one satellite scene overlap and
share lighting, so a tile-level ``random`` split (the talk's setting) leaks
neighbours into eval and flatters accuracy. Every file is read once; the same
bytes are hashed and parsed, and any defect becomes a :class:`DataError` naming
the file (and zip member) and what was expected. Only numpy, Pillow and the
standard library are used, so that importing the registry stays fast.

A tile is small by format, so sizes are checked before anything is inflated or
decoded: a zip member or tile file may hold at most :data:`MAX_TILE_BYTES`, is read
no further than that, and is decoded right away (one at a time, never all held); a
PNG header must say 20x20 before any pixel is decoded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from harness.config import DataParams, check
from harness.data._base import DATA_DIR_ENV, ArrayDataset, Split, register_dataset
from harness.errors import DataError

ZIP_NAME = "planesnet.zip"
JSON_NAME = "planesnet.json"
SIDE = 20
CHANNELS = 3
ITEM_LEN = SIDE * SIDE * CHANNELS  # 1200 values per JSON item: all red, then green, then blue
# Most bytes one tile (a zip member or a PNG file) may hold. A 20x20 RGBA PNG is under
# 2 KB even with its pixels stored uncompressed; the rest is room for metadata chunks.
# A bigger member is refused from its declared size, before it is inflated.
MAX_TILE_BYTES = 64 * 1024
NUM_CLASSES = 2
NAME_PATTERN = "{label}__{scene_id}__{lon}_{lat}.png"
SPLIT_KINDS = ("default", "scene", "random")
JSON_KEYS = ("data", "labels", "scene_ids", "locations")
EXPECTED_FILES = (
    f"{ZIP_NAME}, {JSON_NAME} (Kaggle), or a folder planesnet/ of PNG tiles named {NAME_PATTERN},"
    f" in <data-dir>/planesnet/ or <data-dir>/"
)
# Pillow modes that become RGB without losing meaning: alpha is dropped, grey is
# copied to all three channels, a palette is expanded. 16-bit, 1-bit, CMYK... are refused.
CONVERTIBLE_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA")

# Label, then the scene id (which itself contains single underscores), then lon_lat.
# The scene part is greedy and lon/lat contain no "_", so lon/lat are the last two fields.
_NAME_RE = re.compile(r"^(?P<label>-?\d+)__(?P<scene>.+)__(?P<lon>[^_]+)_(?P<lat>[^_]+)\.png$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class PlanesNetTiles:
    """All tiles of one PlanesNet source, before any split."""

    images: np.ndarray  # uint8 [N, 20, 20, 3]
    labels: np.ndarray  # int64 [N], 0 = no plane, 1 = plane
    scene_ids: np.ndarray  # np.str_ [N]
    locations: np.ndarray  # float64 [N, 2]: lon, lat
    checksum: str  # sha256 of the zip / json bytes, or of the folder's sorted names + bytes
    source: str


@dataclasses.dataclass(frozen=True)
class PlanesNetParams(DataParams):
    """The ``data`` section of a PlanesNet run: how tiles are split into train and eval."""

    name: str = "planesnet"
    split: str = "scene"  # scene (tiles of a scene on one side only) or random (the talk's, leaky)
    split_seed: int = 0  # seed of the split (not of training)
    eval_fraction: float = 0.2  # share of tiles (about) held out for evaluation

    def tags(self) -> dict[str, str]:
        return {"data.split": self.split}

    def check(self) -> None:
        super().check()
        check(self.split, self.split in SPLIT_KINDS, "split", f"one of {', '.join(SPLIT_KINDS)}")
        check(self.eval_fraction, 0.0 < self.eval_fraction < 1.0, "eval_fraction", "in (0, 1)")


@register_dataset("planesnet", params=PlanesNetParams, tasks=("classification",))
def _load_registered(data_dir: Path | None, params: PlanesNetParams) -> ArrayDataset:
    return load_planesnet(data_dir, Split(params.split, params.split_seed, params.eval_fraction))


def load_planesnet(data_dir: Path | None, split: Split | None = None) -> ArrayDataset:
    """Load PlanesNet from ``data_dir`` and split it (``default``/``scene``: by scene; ``random``: by tile).

    Train is ``x_train``/``y_train``, the eval side ``x_test``/``y_test``.
    """
    split = split or Split()
    _check_kind(split)  # before reading 30 MB only to refuse the split
    if data_dir is None:
        raise DataError(
            "PlanesNet has no download here (the Kaggle dataset needs a login): set"
            f" {DATA_DIR_ENV} or --data-dir to a directory holding {EXPECTED_FILES}"
        )
    tiles = read_planesnet(find_planesnet(Path(data_dir)))
    train_idx, eval_idx = split_indices(tiles.scene_ids, split)
    return ArrayDataset(
        name="planesnet",
        x_train=tiles.images[train_idx],
        y_train=tiles.labels[train_idx],
        x_test=tiles.images[eval_idx],
        y_test=tiles.labels[eval_idx],
        num_classes=NUM_CLASSES,
        checksum=tiles.checksum,
        source=f"{tiles.source} (split={split.kind}, seed={split.seed})",
    )


# ----------------------------------------------------------------------------- search


def find_planesnet(data_dir: Path) -> Path:
    """The PlanesNet source in ``data_dir``: a zip, a json or a folder, in the module's search order."""
    hint = f"set {DATA_DIR_ENV} or --data-dir to a directory holding {EXPECTED_FILES}"
    if not data_dir.exists():
        raise DataError(f"PlanesNet data directory {data_dir} does not exist; {hint}")
    if not data_dir.is_dir():
        raise DataError(f"PlanesNet data directory {data_dir} is not a directory; {hint}")
    folders = (data_dir / "planesnet", data_dir)
    for name in (ZIP_NAME, JSON_NAME):
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
    for folder in (data_dir / "planesnet" / "planesnet", data_dir / "planesnet"):
        if folder.is_dir() and any(_is_png(p.name) for p in folder.iterdir() if p.is_file()):
            return folder
    raise DataError(
        f"PlanesNet not found in {data_dir} or {data_dir / 'planesnet'}: expected {EXPECTED_FILES}."
        f" The directory came from {DATA_DIR_ENV} or --data-dir; point it at a directory holding those files"
    )


def read_planesnet(path: Path) -> PlanesNetTiles:
    """Read one source: a folder of PNGs, a ``.json`` file, or else a zip archive."""
    if path.is_dir():
        return _read_folder(path)
    if path.suffix.lower() == ".json":
        return _read_json(path)
    return _read_zip(path)


# ----------------------------------------------------------------------------- split


def _check_kind(split: Split) -> None:
    if split.kind not in SPLIT_KINDS:
        raise DataError(f"planesnet: unknown split={split.kind!r}; valid: {', '.join(SPLIT_KINDS)}")


def split_indices(scene_ids: np.ndarray, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(train, eval) tile indices for ``split``; deterministic in ``split.seed``.

    ``default``/``scene``: the sorted unique scenes are shuffled and whole scenes
    go to eval until it holds about ``eval_fraction`` of the tiles, so no scene
    is on both sides. ``random``: a tile-level split (neighbouring tiles leak).
    Each side comes back shuffled, because ``ArrayDataset.subset`` keeps the
    first n and the tiles are sorted by name, i.e. all negatives first.
    """
    _check_kind(split)
    n = len(scene_ids)
    rng = np.random.default_rng(split.seed)
    if split.kind == "random":
        if n < 2:
            raise DataError(f"planesnet: a random split needs at least 2 tiles, found {n}")
        order = rng.permutation(n)
        n_eval = min(max(round(n * split.eval_fraction), 1), n - 1)
        return order[n_eval:], order[:n_eval]
    scenes, inverse, counts = np.unique(np.asarray(scene_ids), return_inverse=True, return_counts=True)
    if len(scenes) < 2:
        raise DataError(
            f"planesnet: a scene split needs at least 2 scenes, found {len(scenes)}; use split=random instead"
        )
    order = rng.permutation(len(scenes))
    cum = np.cumsum(counts[order])
    # Take the k first shuffled scenes whose tile count is closest to the target; 1 <= k <= S-1
    # keeps both sides non-empty.
    k = int(np.argmin(np.abs(cum[:-1] - split.eval_fraction * n))) + 1
    in_eval = np.zeros(len(scenes), dtype=bool)
    in_eval[order[:k]] = True
    tile_in_eval = in_eval[inverse.reshape(-1)]
    train_idx, eval_idx = np.flatnonzero(~tile_in_eval), np.flatnonzero(tile_in_eval)
    return rng.permutation(train_idx), rng.permutation(eval_idx)


# ----------------------------------------------------------------------------- zip and folder


def _is_png(name: str) -> bool:
    # "._x.png" are macOS resource forks (in __MACOSX/ or beside the file), not images.
    return name.lower().endswith(".png") and not name.startswith("._")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from e


def _too_big(where: str, what: str) -> DataError:
    return DataError(
        f"{where}: {what}, but a {SIDE}x{SIDE} PNG tile needs at most {MAX_TILE_BYTES} bytes;"
        " the file is corrupt or a decompression bomb"
    )


def _read_zip(path: Path) -> PlanesNetTiles:
    raw = _read_bytes(path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DataError(
            f"{path}: is not a valid zip archive / is truncated ({type(e).__name__}: {e});"
            f" expected {ZIP_NAME} holding PNG tiles named {NAME_PATTERN}"
        ) from e
    with archive:
        # (tile name, info); string ops rather than PurePosixPath, which costs a second on 32,000 members.
        named = [
            (info.filename.rsplit("/", 1)[-1], info)
            for info in archive.infolist()
            if not info.is_dir() and "__MACOSX/" not in f"/{info.filename}"
        ]
        # By tile name, then full path: the same order as the folder form, whatever the zip's order.
        named = sorted(((name, info) for name, info in named if _is_png(name)), key=lambda t: (t[0], t[1].filename))
        if not named:
            raise DataError(f"{path}: no PlanesNet tiles in the archive; expected PNG members named {NAME_PATTERN}")
        entries = [(f"{path}: member {info.filename!r}", name) for name, info in named]

        def read(i: int) -> bytes:
            return _read_member(archive, named[i][1], entries[i][0])

        arrays = _decode_tiles(entries, read)
    return PlanesNetTiles(*arrays, checksum=hashlib.sha256(raw).hexdigest(), source=str(path))


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """One member's bytes, refused from its declared size and read no further than MAX_TILE_BYTES."""
    # zipfile cuts a member at its declared size (a longer stream then fails its CRC), but an
    # unbounded read() inflates all of the stream before cutting: hence the bounded read.
    if info.file_size > MAX_TILE_BYTES:
        raise _too_big(where, f"the zip says it inflates to {info.file_size} bytes (refused before inflating)")
    try:
        with archive.open(info) as f:
            data = f.read(MAX_TILE_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as e:
        raise DataError(f"{where}: cannot be extracted ({type(e).__name__}: {e}); the archive is corrupt") from e
    if len(data) > MAX_TILE_BYTES:
        raise _too_big(where, f"it inflates to more than {MAX_TILE_BYTES} bytes (reading stopped there)")
    return data


def _read_folder(folder: Path) -> PlanesNetTiles:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_png(p.name))
    if not files:
        raise DataError(f"{folder}: no PlanesNet tiles; expected PNG files named {NAME_PATTERN}")
    digest = hashlib.sha256()

    def read(i: int) -> bytes:
        p = files[i]
        try:
            with p.open("rb") as f:
                data = f.read(MAX_TILE_BYTES + 1)
        except OSError as e:
            raise DataError(f"{p}: cannot read: {e}") from e
        if len(data) > MAX_TILE_BYTES:
            raise _too_big(str(p), f"it holds more than {MAX_TILE_BYTES} bytes (reading stopped there)")
        # Name and length delimit each file, so moving bytes between files changes the hash.
        digest.update(f"{p.name}\0{len(data)}\0".encode())
        digest.update(data)
        return data

    arrays = _decode_tiles([(str(p), p.name) for p in files], read)
    return PlanesNetTiles(*arrays, checksum=digest.hexdigest(), source=str(folder))


def parse_tile_name(name: str) -> tuple[int, str, float, float] | None:
    """``(label, scene_id, lon, lat)`` from a tile file name, or None if it does not match the pattern.

    The label is returned as written (checking it is 0/1 is the caller's job, for a clearer message).
    """
    m = _NAME_RE.match(name)
    if m is None:
        return None
    try:
        lon, lat = float(m["lon"]), float(m["lat"])
    except ValueError:
        return None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return int(m["label"]), m["scene"], lon, lat


def _decode_tiles(
    entries: Sequence[tuple[str, str]], read: Callable[[int], bytes]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode ``(where, file name)`` entries in order: images, labels, scene ids, locations.

    ``read(i)`` gives entry i's PNG bytes; each is decoded as soon as it is read, so at
    most one tile's bytes are held. Names are checked first: a bad name costs no reading.
    ``where`` names the file (and member) in errors.
    """
    n = len(entries)
    images = np.empty((n, SIDE, SIDE, CHANNELS), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    locations = np.empty((n, 2), dtype=np.float64)
    scenes: list[str] = []
    for i, (where, name) in enumerate(entries):
        parsed = parse_tile_name(name)
        if parsed is None:
            raise DataError(
                f"{where}: file name {name!r} does not match {NAME_PATTERN} (label 0 or 1, lon/lat numbers)"
            )
        label, scene, lon, lat = parsed
        if label not in (0, 1):
            raise DataError(f"{where}: label must be 0 (no plane) or 1 (plane) but the file name says {label}")
        labels[i] = label
        locations[i] = (lon, lat)
        scenes.append(scene)
    for i, (where, _) in enumerate(entries):
        images[i] = _decode_png(where, read(i))
    return images, labels, np.array(scenes, dtype=np.str_), locations


def _decode_png(where: str, data: bytes) -> np.ndarray:
    try:
        # Image.open reads the header only; a bomb-sized header raises DecompressionBombError
        # (or warns) right there, before any pixel is decoded.
        with Image.open(io.BytesIO(data)) as im:
            # Size and mode come from the header: check them before decoding any pixels.
            if im.format != "PNG":
                raise DataError(f"{where}: expected a PNG image but found {im.format}")
            if im.size != (SIDE, SIDE):
                w, h = im.size
                raise DataError(f"{where}: expected a {SIDE}x{SIDE} tile but the image is {w}x{h}")
            if im.mode not in CONVERTIBLE_MODES:
                raise DataError(
                    f"{where}: expected an RGB PNG (RGBA, grey or palette are converted) but the mode is {im.mode}"
                )
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # The warning is an exception only under a warnings filter of "error".
        raise DataError(
            f"{where}: expected a {SIDE}x{SIDE} tile but the PNG header claims a far larger image"
            f" ({type(e).__name__}: {e}); refused before decoding"
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
        # UnidentifiedImageError is an OSError; truncated pixel data is an OSError from load().
        raise DataError(f"{where}: cannot decode the PNG ({type(e).__name__}: {e})") from e


# ----------------------------------------------------------------------------- Kaggle json


def _read_json(path: Path) -> PlanesNetTiles:
    """Kaggle's ``planesnet.json``; tiles stay in file order (it has no file names to sort by)."""
    raw = _read_bytes(path)
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}: invalid or truncated JSON at line {e.lineno} column {e.colno}: {e.msg};"
            f" expected an object with keys {', '.join(JSON_KEYS)}"
        ) from e
    except (UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"{path}: is not a readable JSON file ({type(e).__name__}: {e})") from e
    if not isinstance(doc, dict):
        raise DataError(
            f"{path}: expected a JSON object with keys {', '.join(JSON_KEYS)} but found {type(doc).__name__}"
        )
    missing = [k for k in JSON_KEYS if k not in doc]
    if missing:
        raise DataError(
            f"{path}: missing key {', '.join(missing)}; expected keys {', '.join(JSON_KEYS)}"
            f" but found {', '.join(map(str, doc)) or 'none'}"
        )
    lists = {k: doc[k] for k in JSON_KEYS}
    for k, v in lists.items():
        if not isinstance(v, list):
            raise DataError(f"{path}: {k!r} must be a list but is {type(v).__name__}")
    lengths = {k: len(v) for k, v in lists.items()}
    if len(set(lengths.values())) != 1:
        found = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise DataError(f"{path}: the lists must have one entry per tile but have different lengths: {found}")
    n = lengths["data"]
    if n == 0:
        raise DataError(f"{path}: no PlanesNet tiles; the lists {', '.join(JSON_KEYS)} are empty")

    for i, item in enumerate(lists["data"]):
        if not isinstance(item, list) or len(item) != ITEM_LEN:
            found = f"length {len(item)}" if isinstance(item, list) else type(item).__name__
            raise DataError(
                f"{path}: data[{i}] must be a list of {ITEM_LEN} values ({SIDE}x{SIDE} red, then green,"
                f" then blue) but has {found}"
            )
    values = _int_array(path, "data", lists["data"])
    if values.min() < 0 or values.max() > 255:
        i, j = np.argwhere((values < 0) | (values > 255))[0]
        raise DataError(f"{path}: data values must be in 0..255 but data[{i}][{j}] is {values[i, j]}")
    # Channel-major planes: [N, 1200] -> [N, 3, 20, 20] -> [N, 20, 20, 3].
    images = np.ascontiguousarray(values.astype(np.uint8).reshape(n, CHANNELS, SIDE, SIDE).transpose(0, 2, 3, 1))

    labels = _int_array(path, "labels", lists["labels"])
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be a flat list of 0/1 but has shape {list(labels.shape)}")
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
        raise DataError(f"{path}: labels must be 0 (no plane) or 1 (plane) but labels[{bad[0]}] is {labels[bad[0]]}")

    for i, s in enumerate(lists["scene_ids"]):
        if not isinstance(s, str) or not s:
            raise DataError(f"{path}: scene_ids[{i}] must be a non-empty string but is {s!r}")
    try:
        locations = np.array(lists["locations"], dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise DataError(f"{path}: locations must be [lon, lat] number pairs ({e})") from e
    if locations.shape != (n, 2):
        raise DataError(f"{path}: locations must be {n} [lon, lat] pairs but have shape {list(locations.shape)}")
    return PlanesNetTiles(
        images=images,
        labels=labels.astype(np.int64),
        scene_ids=np.array(lists["scene_ids"], dtype=np.str_),
        locations=locations,
        checksum=hashlib.sha256(raw).hexdigest(),
        source=str(path),
    )


def _int_array(path: Path, key: str, value: list[object]) -> np.ndarray:
    # json gives Python ints; anything else (floats, strings, null, bools) is a malformed file.
    try:
        arr = np.array(value)
    except (ValueError, TypeError) as e:
        raise DataError(f"{path}: {key} must hold integers ({e})") from e
    if arr.dtype.kind not in "iu":
        raise DataError(f"{path}: {key} must hold integers but holds {arr.dtype} values")
    return arr
