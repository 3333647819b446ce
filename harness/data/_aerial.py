"""Big aerial images with square plane boxes: the detection datasets' container, parameters and file readers.

A detection dataset is a handful of large annotated images (2560x2560 for Airbus), not a
pile of tiles: training tiles are cut from them on the fly around the boxes
(``harness.data._tiles``), as the reference's image mode does, so only the fixed eval tiles
are materialised. Boxes are SQUARE, as in the reference (its markers are squares and its box
code uses the width only); a rectangle read from a file becomes the square of side
``max(w, h)`` on the same centre.

Two layouts are read here: Airbus' aircraft sample (one CSV of polygons for a folder of
JPEGs) and the reference's own (``NAME.jpg`` + ``NAME.json`` markers, eval in
``<folder>_eval``). Their registered loaders live in ``harness.data._aerial_sets``, which builds the
eval tiles. Every defect is a :class:`DataError` naming the file (and line) and what was
expected. Only numpy, Pillow and the standard library are used, so importing stays light.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from PIL import Image

from harness.config import DataParams, check
from harness.data._base import DATA_DIR_ENV, ArrayDataset, resolve_data_dir
from harness.errors import DataError

TILE = 256  # side of a training / eval tile, pixels
MAX_ROIS = 50  # rows of a tile's rois array (the reference's MAX_TARGET_ROIS_PER_TILE)
AIRBUS_DIR = "airbus_aircraft"
AIRBUS_CSV = "annotations.csv"
AIRBUS_SPLIT_CSV = "split_in_source_repo.csv"
AIRBUS_COLUMNS = ("image_id", "geometry")  # the columns read; "id" and "class" are not needed
SPLIT_KINDS = ("random", "source")
SOURCE_SPLIT_KINDS = ("train", "valid", "extras")  # the first field of split_in_source_repo.csv
IMAGE_SUFFIXES = (".jpg", ".jpeg")
DECODE_THREADS = 2  # Pillow releases the GIL while decoding: two JPEGs at once
# Most pixels one image may have, checked from its header before decoding: a small file
# whose header claims a huge image is refused rather than decoded. Airbus images are
# 2560x2560; this allows 8192x8192 (192 MiB as RGB), room for larger airport photos
# while staying below Pillow's own decompression-bomb warning.
MAX_IMAGE_PIXELS = 8192 * 8192
# Pillow modes that become RGB without losing meaning (alpha dropped, grey copied, palette expanded).
CONVERTIBLE_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA")

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_POINT = rf"[(\[]\s*({_NUM})\s*,\s*({_NUM})\s*[)\]]"  # (x, y) as written by Python, or [x, y] as JSON
_POINT_RE = re.compile(_POINT)
_POLYGON_RE = re.compile(rf"^\s*\[\s*{_POINT}(?:\s*,\s*{_POINT})*\s*,?\s*\]\s*$")
POLYGON_FORM = "a polygon like [(x1, y1), (x2, y2), (x3, y3), ...] with at least 3 points"


@dataclasses.dataclass(frozen=True)
class AerialImages:
    """Big images and their plane boxes, one entry per image, in a fixed order.

    ``images[i]`` is uint8 ``[H, W, 3]`` RGB; ``boxes[i]`` float32 ``[k, 4]`` square boxes
    ``x1, y1, x2, y2`` in image pixels (k may be 0: an image without planes).
    """

    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    boxes: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not len(self.names) == len(self.images) == len(self.boxes):
            raise DataError(
                f"aerial images: {len(self.names)} names, {len(self.images)} images and {len(self.boxes)} box"
                " arrays; expected one of each per image"
            )
        for name, image, boxes in zip(self.names, self.images, self.boxes, strict=True):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise DataError(f"{name}: expected a uint8 [H, W, 3] image, but got {image.dtype} {image.shape}")
            if boxes.dtype != np.float32 or boxes.ndim != 2 or boxes.shape[1] != 4:
                raise DataError(f"{name}: expected float32 [k, 4] boxes, but got {boxes.dtype} {boxes.shape}")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_boxes(self) -> int:
        return sum(len(b) for b in self.boxes)

    def take(self, indices: Sequence[int] | np.ndarray) -> AerialImages:
        """The images at ``indices``, in that order (arrays are shared, not copied)."""
        idx = [int(i) for i in indices]
        return AerialImages(
            names=tuple(self.names[i] for i in idx),
            images=tuple(self.images[i] for i in idx),
            boxes=tuple(self.boxes[i] for i in idx),
        )

    def head(self, n: int | None) -> AerialImages:
        """The first ``n`` images (None: all)."""
        return self if n is None else self.take(range(min(n, len(self))))


@dataclasses.dataclass(frozen=True)
class DetectionDataset(ArrayDataset):
    """Full images for tile streaming and final AP, plus fixed eval tiles as the test split.

    ``x_train``/``y_train`` are empty (uint8 ``[0, 256, 256, 3]``, float32 ``[0, 50, 4]``):
    training tiles are cut from ``train_images`` on the fly, which keeps the shape (and so
    ``input_shape``) without holding millions of tiles. ``x_test``/``y_test`` are the
    deterministic eval tiles (uint8 ``[M, 256, 256, 3]``) and their rois (float32 ``[M, 50, 4]``,
    see ``harness.data._tiles.tile_rois``), cut from the held-out images; ``eval_images`` are
    the held-out full images the final AP is computed on.
    """

    train_images: AerialImages
    eval_images: AerialImages

    def subset(self, n_train: int | None, n_test: int | None) -> DetectionDataset:
        """The first ``n_train`` training images and the first ``n_test`` eval tiles (eval images kept)."""
        return dataclasses.replace(
            self,
            train_images=self.train_images.head(n_train),
            x_test=self.x_test[:n_test],
            y_test=self.y_test[:n_test],
        )


# ----------------------------------------------------------------------------- parameters


@dataclasses.dataclass(frozen=True)
class AerialParams(DataParams):
    """What every aerial detection dataset takes: the reference's tile generation and augmentation flags.

    Field names are the reference's ``--hp-data-*`` flags (minus ``hp_``), so its job configs
    carry over. Augmentation happens iff the base ``augment`` is true AND the ``data_rnd_*`` flag.
    """

    data_tiles_per_gt_roi: int = 166  # factored floor(sqrt) slices x ceil(sqrt) offsets: 166 -> 12x13 = 156
    data_rnd_distmax: float = 2.0  # offsets of tile centres from a box centre reach distmax tile sides
    data_rnd_hue: bool = True  # the reference's channel-drop + hue rotation per tile
    data_rnd_orientation: bool = True  # one of the 8 symmetries of the square per tile
    shuffle: bool = True  # shuffle the image order and the tile stream
    shuffle_buf: int = 3000  # tiles in the shuffle buffer (the reference recommends more)
    eval_tiles_per_gt_roi: int = 20  # the reference's fixed 1x20 eval tiles around each held-out box
    eval_images: int | None = None  # held-out full images the final AP uses; None = all, 0 = no AP

    # how many tiles are cut and how much is evaluated: what a smoke scale may shrink (Section.budget)
    budget: ClassVar[frozenset[str]] = DataParams.budget | {
        "data_tiles_per_gt_roi",
        "eval_tiles_per_gt_roi",
        "eval_images",
    }

    def check(self) -> None:
        super().check()
        check(self.data_tiles_per_gt_roi, self.data_tiles_per_gt_roi >= 1, "data_tiles_per_gt_roi", ">= 1")
        check(self.data_rnd_distmax, self.data_rnd_distmax >= 0, "data_rnd_distmax", ">= 0 (tile sides)")
        check(self.shuffle_buf, self.shuffle_buf >= 1, "shuffle_buf", ">= 1 (set shuffle=false for none)")
        check(self.eval_tiles_per_gt_roi, self.eval_tiles_per_gt_roi >= 1, "eval_tiles_per_gt_roi", ">= 1")
        ok = self.eval_images is None or self.eval_images >= 0
        check(self.eval_images, ok, "eval_images", ">= 0 (0: no AP) or null (all)")


@dataclasses.dataclass(frozen=True)
class AirbusParams(AerialParams):
    """Airbus' aircraft sample: split by image, so no image gives tiles to both sides."""

    name: str = "airbus"
    split: Literal["random", "source"] = "random"  # source = split_in_source_repo.csv (train / valid)
    split_seed: int = 0  # seed of the random split (not of training)
    eval_fraction: float = 0.2  # share of images (about) held out by the random split

    def tags(self) -> dict[str, str]:
        return {"data.split": self.split}

    def extra_images(self, data_dir: Path | None) -> list[Path]:
        """The unannotated JPEGs of ``extras/`` (:func:`extras`); none without a data directory."""
        return [] if data_dir is None else extras(data_dir)

    def check(self) -> None:
        super().check()
        check(self.split, self.split in SPLIT_KINDS, "split", f"one of {', '.join(SPLIT_KINDS)}")
        check(self.eval_fraction, 0.0 < self.eval_fraction < 1.0, "eval_fraction", "in (0, 1)")


@dataclasses.dataclass(frozen=True)
class PlanespottingParams(AerialParams):
    """The reference's own layout: ``<folder>`` for training, ``<folder>_eval`` held out."""

    name: str = "planespotting"
    folder: str = "planespotting"  # under the data dir

    def check(self) -> None:
        super().check()
        check(self.folder, bool(self.folder.strip()), "folder", "a folder name under the data directory")


# ----------------------------------------------------------------------------- boxes


def square(rect: Sequence[float]) -> tuple[float, float, float, float]:
    """The square of side max(w, h) on the rectangle's centre: the reference's boxes are squares."""
    x1, y1, x2, y2 = (float(v) for v in rect)
    half = max(x2 - x1, y2 - y1) / 2.0
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return cx - half, cy - half, cx + half, cy + half


def _check_rect(where: str, rect: Sequence[float], image: str, width: int, height: int) -> None:
    """A box must have an area and lie on its image.

    Annotators drag boxes of planes cut by the border a few pixels past it (Airbus has such
    boxes), so the rule is that the rectangle's centre lies on the image (touching counts);
    a box wholly or mostly off the image is a wrong image or wrong coordinates.
    """
    x1, y1, x2, y2 = rect
    if not (x2 > x1 and y2 > y1):
        raise DataError(f"{where}: expected a box with a positive width and height, but got {_fmt(rect)}")
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    if not (0.0 <= cx <= width and 0.0 <= cy <= height):
        raise DataError(
            f"{where}: box {_fmt(rect)} lies outside its {width}x{height} image {image}; expected a box on the"
            " image (its centre inside)"
        )


def _fmt(rect: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in rect) + ")"


def _boxes_array(rects: list[tuple[float, float, float, float]]) -> np.ndarray:
    return np.array([square(r) for r in rects], dtype=np.float32).reshape(-1, 4)


# ----------------------------------------------------------------------------- files and images


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from e


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image(path: Path, *, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """Decode one image file to uint8 ``[H, W, 3]`` RGB; also the sha256 of its bytes.

    The size comes from the header (``Image.open`` is lazy) and is checked against
    ``max_pixels`` before any pixel is decoded.
    """
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise DataError(
                    f"{path}: the image header says {width}x{height} ({width * height} pixels), more than the"
                    f" {max_pixels} pixels an aerial image may have (Airbus images are 2560x2560);"
                    " refused before decoding"
                )
            if im.mode not in CONVERTIBLE_MODES:
                raise DataError(
                    f"{path}: expected an RGB image (grey or palette are converted), but the mode is {im.mode}"
                )
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8), digest
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own check in Image.open, for headers far past max_pixels; the warning is an
        # exception only under a warnings filter of "error".
        raise DataError(
            f"{path}: the image header claims a size past Pillow's decompression-bomb limit ({e});"
            f" expected at most {max_pixels} pixels (Airbus images are 2560x2560), refused before decoding"
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # UnidentifiedImageError is an OSError; truncated pixel data is an OSError from load().
        raise DataError(f"{path}: cannot decode the image ({type(e).__name__}: {e}); expected a JPEG") from e


def _load_images(paths: list[Path]) -> list[tuple[np.ndarray, str]]:
    """Decode in a small thread pool (in order); the first failure is raised."""
    if len(paths) <= 1:
        return [load_image(p) for p in paths]
    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        return list(pool.map(load_image, paths))


def _airbus_folder(data_dir: str | Path | None) -> Path:
    resolved = resolve_data_dir(data_dir)
    hint = f"set {DATA_DIR_ENV} or --data-dir to a directory holding {AIRBUS_DIR}/ (images/*.jpg, {AIRBUS_CSV})"
    if resolved is None:
        raise DataError(f"Airbus aircraft data has no download here: {hint}")
    folder = resolved / AIRBUS_DIR
    if not folder.is_dir():
        raise DataError(f"{folder}: Airbus aircraft folder not found; {hint}")
    return folder


# ----------------------------------------------------------------------------- Airbus


def read_airbus(data_dir: str | Path | None) -> tuple[AerialImages, str]:
    """All annotated Airbus images (sorted by file name) and the sha256 of annotations + image bytes.

    Each polygon of ``annotations.csv`` becomes its bounding rectangle, then the square of side
    ``max(w, h)`` on the same centre (the reference's boxes are squares); both classes
    (``Airplane`` and ``Truncated_airplane``) are kept. Every ``images/*.jpg`` is read; one
    without a line in the CSV has no boxes.
    """
    folder = _airbus_folder(data_dir)
    csv_path, images_dir = folder / AIRBUS_CSV, folder / "images"
    if not csv_path.is_file():
        raise DataError(
            f"{csv_path}: annotation file not found; expected a CSV with columns id,image_id,geometry,class"
        )
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: image folder not found; expected the Airbus JPEGs there")
    raw = _read_bytes(csv_path)
    rects = _parse_airbus_csv(csv_path, raw)
    paths = _image_files(images_dir)
    names = [p.name for p in paths]
    known = set(names)
    for name, entries in rects.items():
        if name not in known:
            raise DataError(f"{csv_path}:{entries[0][0]}: image {name!r} is not in {images_dir}")
    decoded = _load_images(paths)
    digest = hashlib.sha256(raw)
    boxes: list[np.ndarray] = []
    for name, (image, image_digest) in zip(names, decoded, strict=True):
        digest.update(f"\0{name}\0{image_digest}".encode())
        height, width = image.shape[:2]
        for line, rect in rects.get(name, []):
            _check_rect(f"{csv_path}:{line}", rect, name, width, height)
        boxes.append(_boxes_array([rect for _, rect in rects.get(name, [])]))
    images = AerialImages(names=tuple(names), images=tuple(image for image, _ in decoded), boxes=tuple(boxes))
    return images, digest.hexdigest()


def _parse_airbus_csv(path: Path, raw: bytes) -> dict[str, list[tuple[int, tuple[float, float, float, float]]]]:
    """Image name -> [(line, bounding rectangle)], in file order."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: is not a UTF-8 text file ({e}); expected a CSV of annotations") from e
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(field.strip() for field in header):
            raise DataError(f"{path}: empty annotation file; expected a header id,image_id,geometry,class and boxes")
        missing = [c for c in AIRBUS_COLUMNS if c not in header]
        if missing:
            raise DataError(
                f"{path}:1: expected a header with columns {', '.join(AIRBUS_COLUMNS)}, but got {','.join(header)!r}"
            )
        i_name, i_geom = header.index("image_id"), header.index("geometry")
        out: dict[str, list[tuple[int, tuple[float, float, float, float]]]] = {}
        for row in reader:
            line = reader.line_num
            if not row or not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise DataError(f"{path}:{line}: expected {len(header)} fields ({','.join(header)}), but got {row!r}")
            name = row[i_name].strip()
            if not name:
                raise DataError(f"{path}:{line}: expected an image file name in image_id, but got {row[i_name]!r}")
            out.setdefault(name, []).append((line, _parse_polygon(f"{path}:{line}", row[i_geom])))
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({e})") from e
    if not out:
        raise DataError(f"{path}: empty annotation file: a header but no boxes")
    return out


def _parse_polygon(where: str, text: str) -> tuple[float, float, float, float]:
    """The bounding rectangle (x1, y1, x2, y2) of a polygon written as a list of points."""
    if not _POLYGON_RE.match(text):
        raise DataError(f"{where}: expected {POLYGON_FORM}, but got {text!r}")
    points = [(float(x), float(y)) for x, y in _POINT_RE.findall(text)]
    if len(points) < 3 or not all(math.isfinite(v) for p in points for v in p):
        raise DataError(f"{where}: expected {POLYGON_FORM}, but got {text!r}")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def random_split(images: AerialImages, seed: int, eval_fraction: float) -> tuple[AerialImages, AerialImages]:
    """(train, eval) by image: a seeded permutation, about ``eval_fraction`` of the images held out.

    Whole images go to one side, so no tile of an image is on both. Each side keeps the
    permuted order, so a subset's first images are a random draw, not the first names.
    """
    n = len(images)
    if n < 2:
        raise DataError(f"a split by image needs at least 2 images, found {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_eval = min(max(round(n * eval_fraction), 1), n - 1)
    return images.take(order[n_eval:]), images.take(order[:n_eval])


def source_split(images: AerialImages, path: Path) -> tuple[AerialImages, AerialImages]:
    """(train, valid) as listed in ``split_in_source_repo.csv`` (lines ``train|valid|extras,NAME``).

    ``extras`` lines name the unannotated extras/ images and are skipped; every annotated
    image must be listed once as train or valid.
    """
    raw = _read_bytes(path) if path.is_file() else None
    if raw is None:
        raise DataError(f"{path}: split file not found; expected lines 'train|valid|extras,IMAGE.jpg'")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: is not a UTF-8 text file ({e})") from e
    index = {name: i for i, name in enumerate(images.names)}
    sides: dict[str, list[int]] = {"train": [], "valid": []}
    seen: dict[str, int] = {}
    for line, row in enumerate(text.splitlines(), start=1):
        if not row.strip():
            continue
        fields = [f.strip() for f in row.split(",")]
        if len(fields) != 2 or fields[0] not in SOURCE_SPLIT_KINDS or not fields[1]:
            raise DataError(f"{path}:{line}: expected 'train|valid|extras,IMAGE.jpg', but got {row!r}")
        kind, name = fields
        if kind == "extras":
            continue
        if name not in index:
            raise DataError(f"{path}:{line}: image {name!r} is not among the annotated images")
        if name in seen:
            raise DataError(f"{path}:{line}: image {name!r} is listed twice (first at line {seen[name]})")
        seen[name] = line
        sides[kind].append(index[name])
    unlisted = [name for name in images.names if name not in seen]
    if unlisted:
        raise DataError(f"{path}: does not list {len(unlisted)} annotated image(s), e.g. {unlisted[0]!r}")
    if not sides["train"] or not sides["valid"]:
        raise DataError(
            f"{path}: expected both train and valid images, but got {len(sides['train'])} train, "
            f"{len(sides['valid'])} valid"
        )
    return images.take(sides["train"]), images.take(sides["valid"])


def split_airbus(
    images: AerialImages, params: AirbusParams, data_dir: str | Path | None
) -> tuple[AerialImages, AerialImages]:
    """(train, eval) images as ``params.split`` says."""
    if params.split == "source":
        return source_split(images, _airbus_folder(data_dir) / AIRBUS_SPLIT_CSV)
    return random_split(images, params.split_seed, params.eval_fraction)


def extras(data_dir: str | Path | None) -> list[Path]:
    """The unannotated Airbus JPEGs of ``extras/`` (sorted), to look at detections on unseen images."""
    folder = _airbus_folder(data_dir) / "extras"
    if not folder.is_dir():
        raise DataError(f"{folder}: extras folder not found; expected the unannotated Airbus JPEGs there")
    return _image_files(folder)


# ----------------------------------------------------------------------------- the reference's layout


def read_planespotting(folder: Path) -> tuple[AerialImages, str]:
    """The ``NAME.jpg|jpeg`` + ``NAME.json`` pairs of ``folder`` (sorted by name) and their sha256.

    A JSON holds ``{"markers": [{"x": left, "y": top, "w": side}, ...]}`` in image pixels:
    each marker is the square (x, y, x + w, y + w). The reference silently skips unpaired
    files; here an image without its JSON, or a JSON without its image, is an error.
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; expected NAME.jpg + NAME.json pairs (eval in <folder>_eval)")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    images: dict[str, Path] = {}
    jsons: dict[str, Path] = {}
    for p in files:
        suffix = p.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            if p.stem in images:
                raise DataError(f"{p}: a second image for {p.stem!r} (also {images[p.stem].name}); expected one")
            images[p.stem] = p
        elif suffix == ".json":
            jsons[p.stem] = p
    for stem, p in jsons.items():
        if stem not in images:
            raise DataError(f"{p}: no image {stem}.jpg or {stem}.jpeg beside it")
    for stem, p in images.items():
        if stem not in jsons:
            raise DataError(f"{p}: no markers file {stem}.json beside it")
    if not images:
        raise DataError(f"{folder}: no NAME.jpg + NAME.json pairs found")
    stems = sorted(images)
    markers = {stem: _read_markers(jsons[stem]) for stem in stems}
    decoded = _load_images([images[s] for s in stems])
    digest = hashlib.sha256()
    boxes: list[np.ndarray] = []
    for stem, (image, image_digest) in zip(stems, decoded, strict=True):
        raw, rects = markers[stem]
        digest.update(f"\0{stem}\0{image_digest}\0".encode())
        digest.update(raw)
        height, width = image.shape[:2]
        for i, rect in enumerate(rects):
            _check_rect(f"{jsons[stem]}: markers[{i}]", rect, images[stem].name, width, height)
        boxes.append(_boxes_array(rects))
    names = tuple(images[s].name for s in stems)
    return AerialImages(names=names, images=tuple(im for im, _ in decoded), boxes=tuple(boxes)), digest.hexdigest()


def _read_markers(path: Path) -> tuple[bytes, list[tuple[float, float, float, float]]]:
    raw = _read_bytes(path)
    expected = 'expected {"markers": [{"x": left, "y": top, "w": side}, ...]}'
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON at column {e.colno}: {e.msg}; {expected}") from e
    except (UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"{path}: is not a readable JSON file ({type(e).__name__}: {e}); {expected}") from e
    if not isinstance(doc, dict) or "markers" not in doc:
        found = ", ".join(map(str, doc)) if isinstance(doc, dict) else type(doc).__name__
        raise DataError(f"{path}: no 'markers' key; {expected}, but got {found or 'an empty object'}")
    if not isinstance(doc["markers"], list):
        raise DataError(f"{path}: 'markers' must be a list; {expected}, but got {type(doc['markers']).__name__}")
    rects: list[tuple[float, float, float, float]] = []
    for i, m in enumerate(doc["markers"]):
        values = [m.get(k) for k in ("x", "y", "w")] if isinstance(m, dict) else []
        numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) != 3 or not all(math.isfinite(v) for v in numbers) or not numbers[2] > 0:
            raise DataError(f"{path}: markers[{i}]: expected {{'x', 'y', 'w'}} numbers with w > 0, but got {m!r}")
        x, y, w = numbers
        rects.append((x, y, x + w, y + w))
    return raw, rects
