"""Data that lies about its size: decompression bombs, huge image headers, empty IDX files.

Every reader must check the size a format states (IDX and .npy headers, a PlanesNet
tile's 20x20, an image header) before inflating or decoding, and stop reading past
it: the result is a DataError naming the file and what was expected, with memory
bounded by the stated size, never gigabytes or a Pillow traceback. The bombs are
generated here, small on disk; ``tracemalloc`` (which sees numpy's buffers) shows
that the reader never inflated them.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from mnist_files import IMAGES, LABELS, write_idx
from PIL import Image

from harness.cli import main
from harness.data._aerial import MAX_IMAGE_PIXELS, load_image
from harness.data._mnist import MAX_ITEMS, load_mnist
from harness.data._planesnet import MAX_TILE_BYTES, load_planesnet
from harness.detect._scan import read_image
from harness.errors import DataError

BOMB = 32 << 20  # bytes a bomb inflates to; each is well under 100 KB on disk
MiB = 1 << 20
T = TypeVar("T")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")


def peak_bytes(fn: Callable[[], T]) -> tuple[int, T | BaseException]:
    """Run ``fn`` under tracemalloc: (peak bytes allocated, its result or the exception it raised)."""
    tracemalloc.start()
    try:
        result: T | BaseException = fn()
    except Exception as e:  # handed back for the test to check
        result = e
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, result


def zero_chunks(n: int) -> Iterator[bytes]:
    chunk = bytes(MiB)
    for start in range(0, n, MiB):
        yield chunk[: min(MiB, n - start)]


def gzipped(prefix: bytes, zeros: int) -> bytes:
    """A gzip stream of ``prefix`` then ``zeros`` zero bytes, built without holding them."""
    c = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    parts = [c.compress(prefix)] + [c.compress(chunk) for chunk in zero_chunks(zeros)]
    return b"".join(parts) + c.flush()


def idx_header(magic: int, count: int) -> bytes:
    dims = (count, 28, 28) if magic == IMAGES else (count,)
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def mnist_dir(folder: Path, n: int = 8) -> Path:
    """The four gzipped IDX files of a tiny valid MNIST; tests replace one."""
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), IMAGES)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n), LABELS)
    return folder


def error_of(result: object) -> str:
    assert isinstance(result, DataError), f"expected a DataError, got {result!r}"
    return str(result)


# ----------------------------------------------------------------------------- MNIST (IDX, gzip)


def test_gzip_bomb_stops_reading_past_its_header(tmp_path: Path) -> None:
    """10 images stated, 32 MiB of zeros behind them: refused after one byte too many."""
    mnist_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzipped(idx_header(IMAGES, 10), 10 * 784 + BOMB))
    assert path.stat().st_size < 100_000
    peak, result = peak_bytes(lambda: load_mnist(tmp_path))
    message = error_of(result)
    assert f"{path}: header says 10 images (7856 bytes with header)" in message
    assert "decompressed data is longer; the file has trailing bytes" in message
    assert peak < 4 * MiB, f"peak {peak} bytes: the bomb was inflated"


def test_gzip_shorter_than_its_header_allocates_only_the_stated_size(tmp_path: Path) -> None:
    """60,000 images stated (47 MB), 4 MiB present: truncated, memory about the stated size."""
    mnist_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzipped(idx_header(IMAGES, 60000), 4 * MiB))
    stated = 16 + 60000 * 784
    peak, result = peak_bytes(lambda: load_mnist(tmp_path))
    message = error_of(result)
    assert f"{path}: header says 60000 images ({stated} bytes with header)" in message
    assert f"decompressed data has {16 + 4 * MiB} bytes; the file truncated" in message
    assert peak < stated + 4 * MiB


@pytest.mark.parametrize("magic", [IMAGES, LABELS])
def test_absurd_count_is_refused_before_inflating(tmp_path: Path, magic: int) -> None:
    mnist_dir(tmp_path)
    name = "t10k-images-idx3-ubyte.gz" if magic == IMAGES else "t10k-labels-idx1-ubyte.gz"
    kind = "images" if magic == IMAGES else "labels"
    (tmp_path / name).write_bytes(gzipped(idx_header(magic, 2**32 - 1), BOMB))
    peak, result = peak_bytes(lambda: load_mnist(tmp_path))
    assert (
        f"{tmp_path / name}: its IDX header says {2**32 - 1} {kind}, more than the {MAX_ITEMS} this reader accepts"
        in error_of(result)
    )
    assert peak < 4 * MiB


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("magic", [IMAGES, LABELS])
def test_idx_with_zero_items(tmp_path: Path, magic: int, gz: bool) -> None:
    ext = ".gz" if gz else ""
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte{ext}", rng.integers(0, 256, (4, 28, 28)), IMAGES)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte{ext}", rng.integers(0, 10, 4), LABELS)
    kind = "images" if magic == IMAGES else "labels"
    path = tmp_path / (f"train-{kind}-idx{3 if magic == IMAGES else 1}-ubyte{ext}")
    write_idx(path, np.zeros((0, 28, 28) if magic == IMAGES else (0,)), magic)
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    assert str(err.value) == f"{path}: holds 0 {kind}, as its IDX header says; expected at least 1"


# ----------------------------------------------------------------------------- MNIST (npz)


def npz_with(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npy_claiming(shape: tuple[int, ...], dtype: str, body: int) -> bytes:
    """A .npy header stating ``shape`` followed by only ``body`` zero bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(body)


def good_npz_members() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "x_train.npy": npy(rng.integers(0, 256, (8, 28, 28), dtype=np.uint8)),
        "y_train.npy": npy(rng.integers(0, 10, 8, dtype=np.uint8)),
        "x_test.npy": npy(rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)),
        "y_test.npy": npy(rng.integers(0, 10, 4, dtype=np.uint8)),
    }


def test_npz_array_claiming_too_many_images_is_refused_before_inflating(tmp_path: Path) -> None:
    members = good_npz_members()
    members["x_train.npy"] = npy_claiming((MAX_ITEMS + 1, 28, 28), "|u1", BOMB)
    npz_with(tmp_path / "mnist.npz", members)
    peak, result = peak_bytes(lambda: load_mnist(tmp_path))
    message = error_of(result)
    assert f"mnist.npz: the .npy header of x_train says {MAX_ITEMS + 1} images, more than the {MAX_ITEMS}" in message
    assert peak < 4 * MiB


def test_npz_array_of_the_wrong_shape_is_refused_before_inflating(tmp_path: Path) -> None:
    members = good_npz_members()
    members["x_test.npy"] = npy_claiming((1, 10**9), "|u1", BOMB)
    npz_with(tmp_path / "mnist.npz", members)
    peak, result = peak_bytes(lambda: load_mnist(tmp_path))
    assert "mnist.npz: x_test must be uint8 [N, 28, 28] but is uint8 [1, 1000000000]" in error_of(result)
    assert peak < 4 * MiB


def test_npz_with_zero_images(tmp_path: Path) -> None:
    members = good_npz_members()
    members["x_test.npy"] = npy(np.zeros((0, 28, 28), np.uint8))
    members["y_test.npy"] = npy(np.zeros(0, np.uint8))
    npz_with(tmp_path / "mnist.npz", members)
    with pytest.raises(DataError, match=r"mnist\.npz: holds 0 images, as the \.npy header of x_test says; expected at"):
        load_mnist(tmp_path)


def test_npz_member_that_is_not_an_array(tmp_path: Path) -> None:
    """np.load would hand back the raw bytes of such a member, however large they inflate."""
    members = good_npz_members()
    del members["y_train.npy"]
    members["y_train"] = bytes(1000)
    npz_with(tmp_path / "mnist.npz", members)
    with pytest.raises(DataError, match=r"mnist\.npz: is not a valid \.npz file \(ValueError"):
        load_mnist(tmp_path)


# ----------------------------------------------------------------------------- PlanesNet (zip)


def tile_png(side: int = 20) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (90, 90, 90)).save(buf, format="PNG")
    return buf.getvalue()


BAD_TILE = "planesnet/1__s__1.0_2.0.png"


def planesnet_zip(path: Path, write_bad: Callable[[zipfile.ZipFile], None]) -> Path:
    """Four good tiles of two scenes plus the member ``write_bad`` adds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"planesnet/{i % 2}__scene{i // 2}__{i}.0_1.0.png", tile_png())
        write_bad(zf)
    return path


def zero_member(zf: zipfile.ZipFile) -> None:
    with zf.open(BAD_TILE, "w") as f:
        for chunk in zero_chunks(BOMB):
            f.write(chunk)


def test_zip_member_bomb_is_refused_from_its_declared_size(tmp_path: Path) -> None:
    path = planesnet_zip(tmp_path / "planesnet" / "planesnet.zip", zero_member)
    assert path.stat().st_size < 100_000
    peak, result = peak_bytes(lambda: load_planesnet(tmp_path))
    message = error_of(result)
    assert f"{path}: member '{BAD_TILE}': the zip says it inflates to {BOMB} bytes" in message
    assert f"a 20x20 PNG tile needs at most {MAX_TILE_BYTES} bytes" in message
    assert peak < 4 * MiB


def test_zip_member_longer_than_its_declared_size_stops_there(tmp_path: Path) -> None:
    """The zip says 1,000 bytes but the stream inflates to 32 MiB: reading stops, the CRC fails."""
    path = planesnet_zip(tmp_path / "planesnet.zip", zero_member)
    raw = bytearray(path.read_bytes())
    name = BAD_TILE.encode()
    local = next(
        i for i in range(len(raw)) if raw.startswith(b"PK\x03\x04", i) and raw[i + 30 : i + 30 + len(name)] == name
    )
    central = next(
        i for i in range(len(raw)) if raw.startswith(b"PK\x01\x02", i) and raw[i + 46 : i + 46 + len(name)] == name
    )
    assert struct.unpack_from("<I", raw, local + 22)[0] == BOMB == struct.unpack_from("<I", raw, central + 24)[0]
    struct.pack_into("<I", raw, local + 22, 1000)
    struct.pack_into("<I", raw, central + 24, 1000)
    path.write_bytes(bytes(raw))
    peak, result = peak_bytes(lambda: load_planesnet(tmp_path))
    assert f"{path}: member '{BAD_TILE}': cannot be extracted (BadZipFile: Bad CRC-32" in error_of(result)
    assert peak < 4 * MiB


def test_oversized_tile_file_in_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "planesnet" / "planesnet"
    folder.mkdir(parents=True)
    for i in range(4):
        (folder / f"{i % 2}__scene{i // 2}__{i}.0_1.0.png").write_bytes(tile_png())
    big = folder / "1__s__1.0_2.0.png"
    big.write_bytes(tile_png() + bytes(4 * MAX_TILE_BYTES))
    with pytest.raises(DataError) as err:
        load_planesnet(tmp_path)
    assert str(err.value).startswith(f"{big}: it holds more than {MAX_TILE_BYTES} bytes (reading stopped there)")


# ----------------------------------------------------------------------------- image headers


def png_claiming(width: int, height: int) -> bytes:
    """A valid 8x8 PNG whose IHDR (CRC fixed) says ``width`` x ``height``."""
    data = bytearray(tile_png(8))
    assert data[12:16] == b"IHDR"
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_claiming(width: int, height: int, real: tuple[int, int] = (16, 16)) -> bytes:
    """A valid small JPEG whose SOF0 header says ``width`` x ``height`` (JPEG has no header checksum)."""
    buf = io.BytesIO()
    Image.new("RGB", real, (70, 80, 90)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    at = 2
    while data[at + 1] != 0xC0:  # walk the marker segments to the frame header
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def test_planesnet_png_claiming_a_huge_size(tmp_path: Path) -> None:
    path = planesnet_zip(tmp_path / "planesnet.zip", lambda zf: zf.writestr(BAD_TILE, png_claiming(20000, 20000)))
    peak, result = peak_bytes(lambda: load_planesnet(tmp_path))
    message = error_of(result)
    assert message.startswith(
        f"{path}: member '{BAD_TILE}': expected a 20x20 tile but the PNG header claims a far larger image"
        " (DecompressionBombError: Image size (400000000 pixels)"
    )
    assert peak < 4 * MiB


def test_planesnet_png_under_pillows_warning_as_error(tmp_path: Path) -> None:
    """10000x10000 only warns in Pillow; under an "error" filter the warning is the exception."""
    planesnet_zip(tmp_path / "planesnet.zip", lambda zf: zf.writestr(BAD_TILE, png_claiming(10000, 10000)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(DataError, match=r"far larger image \(DecompressionBombWarning: Image size \(100000000"):
            load_planesnet(tmp_path)
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(DataError, match=r"expected a 20x20 tile but the image is 10000x10000"),
    ):
        load_planesnet(tmp_path)


ImageReader = Callable[..., object]
READERS = [pytest.param(load_image, id="aerial"), pytest.param(read_image, id="detect-scan")]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("side", [20000, 10000])
def test_image_header_past_pillows_limit(tmp_path: Path, reader: ImageReader, side: int) -> None:
    path = tmp_path / "huge.jpg"
    path.write_bytes(jpeg_claiming(side, side))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        peak, result = peak_bytes(lambda: reader(path))
    message = error_of(result)
    assert message.startswith(f"{path}: the image header claims a size past Pillow's decompression-bomb limit")
    assert f"({side * side} pixels)" in message and f"expected at most {MAX_IMAGE_PIXELS} pixels" in message
    assert peak < 4 * MiB


@pytest.mark.parametrize("reader", READERS)
def test_image_header_past_our_limit(tmp_path: Path, reader: ImageReader) -> None:
    """9000x9000 passes Pillow's check silently; the readers' own bound refuses it from the header."""
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(9000, 9000))
    peak, result = peak_bytes(lambda: reader(path))
    assert error_of(result).startswith(
        f"{path}: the image header says 9000x9000 (81000000 pixels), more than the {MAX_IMAGE_PIXELS} pixels"
    )
    assert peak < 4 * MiB


@pytest.mark.parametrize("reader", READERS)
def test_image_limit_is_a_parameter(tmp_path: Path, reader: ImageReader) -> None:
    path = tmp_path / "small.jpg"
    path.write_bytes(jpeg_claiming(64, 48, real=(64, 48)))
    with pytest.raises(DataError, match=r"small\.jpg: the image header says 64x48 \(3072 pixels\), more than the 1000"):
        reader(path, max_pixels=1000)


@pytest.mark.parametrize("reader", READERS)
def test_airbus_sized_jpeg_still_loads(tmp_path: Path, reader: ImageReader) -> None:
    path = tmp_path / "airport.jpg"
    Image.new("RGB", (2560, 2560), (100, 110, 120)).save(path, format="JPEG")
    result = reader(path)
    image = result[0] if isinstance(result, tuple) else result
    assert isinstance(image, np.ndarray) and image.shape == (2560, 2560, 3)


def test_detect_scan_refuses_a_huge_image_without_a_traceback(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "scene.png"
    path.write_bytes(png_claiming(20000, 20000))
    assert main(["detect-scan", "0" * 32, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: the image header claims a size past Pillow's decompression-bomb limit")
    assert "Traceback" not in err


def test_gzipped_helper_writes_a_standard_stream() -> None:
    data = gzipped(b"abc", 10)
    assert gzip.decompress(data) == b"abc" + bytes(10)
