"""MNIST reader: the four standard IDX files, or Keras' ``mnist.npz``.

Search order: an explicit data directory (``--data-dir`` / ``$HARNESS_DATA_DIR``),
then the Keras cache, then a download (unless ``HARNESS_OFFLINE=1``). Every file
is read once; the same bytes are hashed and parsed, and any defect becomes a
:class:`DataError` naming the file and what was expected, never a numpy, gzip
or TensorFlow traceback. Only numpy and the standard library are used, so that
importing the registry stays fast.

Sizes are checked before anything is inflated: an IDX header (or a ``.npy`` header
inside the npz) states how many items follow, a count of 0 or above
:data:`MAX_ITEMS` is refused, and a gzip stream is inflated straight into an array
of the stated size and read no further than one byte past it. A small file that
inflates to gigabytes (a decompression bomb) is an error, not an out-of-memory.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from harness.config import DataParams
from harness.data._base import DATA_DIR_ENV, ArrayDataset, register_dataset
from harness.errors import DataError

OFFLINE_ENV = "HARNESS_OFFLINE"
MIRROR_ENV = "HARNESS_MNIST_MIRROR"
DEFAULT_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DOWNLOAD_TIMEOUT_S = 30.0
NPZ_NAME = "mnist.npz"
# sha256 of Keras' mnist.npz; a module constant so tests can swap in their own file.
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
SUMS_NAME = "SHA256SUMS"

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
ROWS = COLS = 28
NUM_CLASSES = 10

# (role, base file name, split, expected magic), in the order the checksum covers them.
IDX_FILES: tuple[tuple[str, str, str, int], ...] = (
    ("train images", "train-images-idx3-ubyte", "train", IMAGES_MAGIC),
    ("train labels", "train-labels-idx1-ubyte", "train", LABELS_MAGIC),
    ("test images", "t10k-images-idx3-ubyte", "test", IMAGES_MAGIC),
    ("test labels", "t10k-labels-idx1-ubyte", "test", LABELS_MAGIC),
)
OFFICIAL_COUNTS = {"train": 60000, "test": 10000}
# Most items one file may declare. The largest published 28x28 set, MNIST8M (infinite
# MNIST), holds 8.1 million, so more is a corrupt or hostile header, refused before
# allocating; at 784 bytes an image this bounds one file at about 7.8 GB.
MAX_ITEMS = 10_000_000
READ_CHUNK = 1 << 20  # bytes inflated per read: memory is the stated size plus this
# MD5s of the official .gz files (LeCun's site); checked only for official-size files.
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
EXPECTED_FILES = (
    ", ".join(f"{base}.gz" for _, base, _, _ in IDX_FILES) + " (or the same names without .gz), or Keras' " + NPZ_NAME
)


@register_dataset("mnist", params=DataParams, tasks=("classification",))
def load_mnist(data_dir: Path | None, params: DataParams | None = None) -> ArrayDataset:
    """Load MNIST from ``data_dir``, else the Keras cache, else download it.

    MNIST has one official train/test split, so its section has no split keys. A
    given ``data_dir`` that holds no MNIST files is an error rather than a silent
    fallback: the user asked for that directory.
    """
    if data_dir is not None:
        return _load_from_data_dir(Path(data_dir))
    cached = keras_cache_dir() / NPZ_NAME
    if cached.is_file():
        return load_npz(cached)
    return load_npz(download_npz(cached))


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".keras"
    return base / "datasets"


# ----------------------------------------------------------------------------- data_dir search


def _load_from_data_dir(data_dir: Path) -> ArrayDataset:
    hint = f"set {DATA_DIR_ENV} or --data-dir to a directory holding {EXPECTED_FILES}"
    if not data_dir.exists():
        raise DataError(f"MNIST data directory {data_dir} does not exist; {hint}")
    if not data_dir.is_dir():
        raise DataError(f"MNIST data directory {data_dir} is not a directory; {hint}")
    sums = _read_sums(data_dir / SUMS_NAME)
    partial: list[str] = []
    for folder in (data_dir / "mnist", data_dir):
        if not folder.is_dir():
            continue
        found = [_find_idx(folder, base) for _, base, _, _ in IDX_FILES]
        if all(found):
            if folder != data_dir:
                sums = {**sums, **_read_sums(folder / SUMS_NAME)}
            return load_idx([p for p in found if p is not None], sums=sums, source=folder)
        npz = folder / NPZ_NAME
        if npz.is_file():
            if folder != data_dir:
                sums = {**sums, **_read_sums(folder / SUMS_NAME)}
            return load_npz(npz, sums=sums)
        if any(found):
            missing = [f"{base}.gz" for (_, base, _, _), p in zip(IDX_FILES, found, strict=True) if p is None]
            partial.append(f"{folder} lacks {', '.join(missing)}")
    detail = f" ({'; '.join(partial)})" if partial else ""
    raise DataError(
        f"MNIST not found in {data_dir} or {data_dir / 'mnist'}{detail}: expected {EXPECTED_FILES}."
        f" The directory came from {DATA_DIR_ENV} or --data-dir; point it at a directory"
        " holding those files"
    )


def _find_idx(folder: Path, base: str) -> Path | None:
    """The gzipped file if present (that is what is published), else the uncompressed one."""
    for name in (f"{base}.gz", base):
        path = folder / name
        if path.is_file():
            return path
    return None


def _read_sums(path: Path) -> dict[Path, str]:
    """Parse a ``sha256sum`` file into {absolute path: hex digest}; absent file -> {}."""
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read checksum file: {e}") from e
    sums: dict[Path, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64 or line.lstrip().startswith("#"):
            continue
        digest, name = parts[0].lower(), parts[1].strip().lstrip("*")
        sums[_norm(path.parent / name)] = digest
    return sums


def _norm(path: Path) -> Path:
    # Absolute and with "." / ".." folded, so "./mnist/x" and "mnist/x" compare equal.
    return Path(os.path.normpath(path.absolute()))


def _check_sums(path: Path, raw: bytes, sums: dict[Path, str]) -> None:
    expected = sums.get(_norm(path))
    if expected is None:
        return
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise DataError(
            f"{path}: checksum mismatch against {SUMS_NAME}: expected sha256 {expected}"
            f" but got {actual}; the file is corrupt or was modified"
        )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from e


# ----------------------------------------------------------------------------- IDX


def load_idx(paths: list[Path], *, sums: dict[Path, str] | None = None, source: Path | None = None) -> ArrayDataset:
    """Load MNIST from the four IDX files, in :data:`IDX_FILES` order (gzipped or not)."""
    if len(paths) != len(IDX_FILES):
        raise ValueError(f"expected {len(IDX_FILES)} IDX paths, got {len(paths)}")
    digest = hashlib.sha256()
    arrays: list[np.ndarray] = []
    for (role, _, split, magic), path in zip(IDX_FILES, paths, strict=True):
        raw = _read_bytes(path)
        digest.update(raw)
        _check_sums(path, raw, sums or {})
        arrays.append(_parse_idx(path, raw, role=role, split=split, magic=magic))
    x_train, y_train, x_test, y_test = arrays
    for split, (xi, yi) in (("train", (0, 1)), ("test", (2, 3))):
        n_x, n_y = len(arrays[xi]), len(arrays[yi])
        if n_x != n_y:
            raise DataError(
                f"MNIST {split} split: {paths[xi]} has {n_x} images but {paths[yi]} has"
                f" {n_y} labels; expected the same count"
            )
    return ArrayDataset(
        name="mnist",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=NUM_CLASSES,
        checksum=digest.hexdigest(),
        source=str(source if source is not None else paths[0].parent),
    )


def _parse_idx(path: Path, raw: bytes, *, role: str, split: str, magic: int) -> np.ndarray:
    """Decode one IDX file: images -> uint8 [N, 28, 28, 1], labels -> int64 [N].

    The header is read and checked first; the body is then inflated straight into an
    array of the size the header states, and one byte more is asked for to tell a
    longer stream from a complete one, so a bomb never inflates past its header.
    """
    gz = path.name.endswith(".gz")
    is_images = magic == IMAGES_MAGIC
    kind = "images" if is_images else "labels"
    decompressed = "decompressed " if gz else ""
    header_len = 16 if is_images else 8
    stream: io.BufferedIOBase = gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") if gz else io.BytesIO(raw)
    try:
        with stream:
            header = bytearray(header_len)
            got = _read_full(stream, memoryview(header))
            if got < header_len:
                raise DataError(
                    f"{path}: expected an IDX {kind} file with a {header_len}-byte header but the"
                    f" {decompressed}data has only {got} bytes"
                )
            got_magic = int.from_bytes(header[0:4], "big")
            if got_magic != magic:
                raise DataError(
                    f"{path}: expected IDX magic {magic} ({kind}) but got {got_magic};"
                    f" this is not the MNIST {role} file"
                )
            count = int.from_bytes(header[4:8], "big")
            item = 1
            if is_images:
                rows, cols = int.from_bytes(header[8:12], "big"), int.from_bytes(header[12:16], "big")
                if (rows, cols) != (ROWS, COLS):
                    raise DataError(f"{path}: expected {ROWS}x{COLS} images but header says {rows}x{cols}")
                item = rows * cols
            _check_count(path, count, kind, "its IDX header")
            expected_len = header_len + count * item
            # np.empty, not bytes: the array is the result, so the body is inflated exactly once.
            values = np.empty(count * item, dtype=np.uint8)
            got = _read_full(stream, values.data)
            if got < count * item:
                raise DataError(
                    f"{path}: header says {count} {kind} ({expected_len} bytes with header) but the"
                    f" {decompressed}data has {header_len + got} bytes; the file truncated"
                )
            # One byte past the end: tells "complete" from "longer", and makes gzip check its CRC.
            if stream.read(1):
                raise DataError(
                    f"{path}: header says {count} {kind} ({expected_len} bytes with header) but the"
                    f" {decompressed}data is longer; the file has trailing bytes (reading stopped there)"
                )
    except (OSError, EOFError, zlib.error) as e:
        # Only the gzip layer raises these (BytesIO reads cannot fail).
        raise DataError(
            f"{path}: is not a valid gzip file / is truncated ({type(e).__name__}: {e});"
            " expected a complete gzip stream"
        ) from e
    if gz and count == OFFICIAL_COUNTS[split]:
        # Official-size files must be the official ones; smaller sets are custom data.
        expected_md5 = OFFICIAL_MD5[path.name]
        actual_md5 = hashlib.md5(raw).hexdigest()
        if actual_md5 != expected_md5:
            raise DataError(
                f"{path}: checksum mismatch: a {count}-item MNIST {role} file must be the"
                f" official one with MD5 {expected_md5} but got {actual_md5}"
            )
    if is_images:
        return values.reshape(count, ROWS, COLS, 1)
    _check_labels(path, values)
    return values.astype(np.int64)


def _read_full(stream: io.BufferedIOBase, out: memoryview) -> int:
    """Fill ``out`` from ``stream`` in bounded chunks; the number of bytes read (short at the end)."""
    done = 0
    while done < len(out):
        n = stream.readinto(out[done : done + READ_CHUNK])
        if not n:
            break
        done += n
    return done


def _check_count(path: Path, count: int, kind: str, source: str) -> None:
    """A count from a header (``source`` says which): 0 would only fail later, in TensorFlow; a huge one is a bomb."""
    if count == 0:
        raise DataError(f"{path}: holds 0 {kind}, as {source} says; expected at least 1")
    if count > MAX_ITEMS:
        raise DataError(
            f"{path}: {source} says {count} {kind}, more than the {MAX_ITEMS} this reader accepts (the"
            " largest MNIST-format set, MNIST8M, has 8.1 million); the header is corrupt, refused before inflating"
        )


def _check_labels(path: Path | str, labels: np.ndarray) -> None:
    if labels.size == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= NUM_CLASSES:
        bad = int(np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))[0])
        raise DataError(
            f"{path}: labels must be in 0..{NUM_CLASSES - 1} but found {int(labels[bad])}"
            f" at index {bad} (range {lo}..{hi})"
        )


# ----------------------------------------------------------------------------- npz


def load_npz(path: Path, *, sums: dict[Path, str] | None = None) -> ArrayDataset:
    """Load Keras' ``mnist.npz`` (keys x_train, y_train, x_test, y_test).

    Every array's ``.npy`` header is checked (dtype, shape, count) before any array is
    inflated, so a small npz that declares a huge array is refused up front.
    """
    raw = _read_bytes(path)
    _check_sums(path, raw, sums or {})
    sha = hashlib.sha256(raw).hexdigest()
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(
                    f"{path}: missing key {', '.join(missing)}; expected keys {', '.join(keys)}"
                    f" but found {', '.join(z.files) or 'none'}"
                )
            for key in keys:
                _check_npy_header(path, z.zip, key)
            loaded = {k: z[k] for k in keys}
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zlib.error) as e:
        raise DataError(
            f"{path}: is not a valid .npz file ({type(e).__name__}: {e}); expected Keras'"
            f" {NPZ_NAME} with keys {', '.join(keys)}"
        ) from e
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        x, y = loaded[f"x_{split}"], loaded[f"y_{split}"]
        if len(x) != len(y):
            raise DataError(
                f"{path}: x_{split} has {len(x)} images but y_{split} has {len(y)} labels; expected the same count"
            )
        _check_labels(f"{path} y_{split}", y)
        out[f"x_{split}"] = np.ascontiguousarray(x.reshape(len(x), ROWS, COLS, 1))
        out[f"y_{split}"] = y.astype(np.int64)
    official = (len(out["x_train"]), len(out["x_test"])) == (
        OFFICIAL_COUNTS["train"],
        OFFICIAL_COUNTS["test"],
    )
    if official and sha != KERAS_MNIST_SHA256:
        raise DataError(
            f"{path}: checksum mismatch: a full-size {NPZ_NAME} must be Keras' file with"
            f" sha256 {KERAS_MNIST_SHA256} but got {sha}"
        )
    return ArrayDataset(
        name="mnist",
        num_classes=NUM_CLASSES,
        checksum=sha,
        source=str(path),
        **out,
    )


# .npy format versions whose header numpy's public API reads; numpy writes 1.0 for
# plain arrays like MNIST's (2.0 only for headers over 64 KiB).
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _check_npy_header(path: Path, archive: zipfile.ZipFile, key: str) -> None:
    """Check one array's dtype, shape and count from its ``.npy`` header (a few hundred bytes inflated)."""
    names = set(archive.namelist())
    member = f"{key}.npy" if f"{key}.npy" in names else key  # np.load accepts both names
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)  # ValueError if the member is not a .npy array
        reader = _NPY_HEADER_READERS.get(version)
        if reader is None:
            raise DataError(
                f"{path}: {key} is a .npy array of format version {version[0]}.{version[1]};"
                " expected version 1.0 or 2.0, as numpy writes MNIST's arrays"
            )
        shape, _, dtype = reader(f)
    if key.startswith("x_"):
        if dtype != np.uint8 or len(shape) not in (3, 4) or shape[1:3] != (ROWS, COLS) or shape[3:] not in ((), (1,)):
            raise DataError(f"{path}: {key} must be uint8 [N, {ROWS}, {COLS}] but is {dtype} {list(shape)}")
        _check_count(path, shape[0], "images", f"the .npy header of {key}")
    else:
        if len(shape) != 1 or not np.issubdtype(dtype, np.integer):
            raise DataError(f"{path}: {key} must be integer [N] but is {dtype} {list(shape)}")
        _check_count(path, shape[0], "labels", f"the .npy header of {key}")


# ----------------------------------------------------------------------------- download


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def download_npz(dest: Path) -> Path:
    """Fetch ``mnist.npz`` into ``dest``, verified before it is moved into place.

    The temp file lives next to ``dest`` so that ``os.replace`` is atomic: a
    concurrent reader sees either no file or the complete, verified one.
    """
    url = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    url = url.rstrip("/") + "/" + NPZ_NAME
    hint = (
        f"no --data-dir or {DATA_DIR_ENV} was given and there is no Keras cache at {dest}."
        f" Put {EXPECTED_FILES} in a directory and point {DATA_DIR_ENV} or --data-dir at it"
    )
    if _offline():
        raise DataError(f"MNIST not found offline ({OFFLINE_ENV} is set, no download): {hint}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{NPZ_NAME}.", suffix=".part")
    except OSError as e:
        raise DataError(f"cannot write the MNIST download to {dest.parent}: {e}") from e
    tmp = Path(tmp_name)
    try:
        sha = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                    while chunk := resp.read(1 << 20):
                        sha.update(chunk)
                        f.write(chunk)
            except (
                urllib.error.URLError,
                http.client.HTTPException,
                TimeoutError,
                ConnectionError,
            ) as e:
                raise DataError(f"MNIST not found offline and the download from {url} failed ({e}): {hint}") from e
        actual = sha.hexdigest()
        if actual != KERAS_MNIST_SHA256:
            raise DataError(
                f"{url}: checksum mismatch for the downloaded {NPZ_NAME}: expected sha256"
                f" {KERAS_MNIST_SHA256} but got {actual}; the file was discarded"
            )
        os.replace(tmp, dest)
    except OSError as e:
        raise DataError(f"cannot write the MNIST download to {dest}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest
