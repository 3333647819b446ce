"""Tests of the MNIST reader on tiny generated files (and one test on the real data)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mnist_files import IMAGES, LABELS, write_idx

from harness.data import _mnist, load_dataset
from harness.data._mnist import load_mnist
from harness.errors import DataError

N_TRAIN, N_TEST = 64, 32
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, N_TEST, dtype=np.uint8),
    }


def make_idx_dir(folder: Path, *, gz: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the four IDX files of a tiny MNIST into ``folder``."""
    arrays = tiny_arrays(seed)
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", arrays["x_train"], IMAGES)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", arrays["y_train"], LABELS)
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", arrays["x_test"], IMAGES)
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", arrays["y_test"], LABELS)
    return arrays


def make_npz(path: Path, arrays: dict[str, np.ndarray] | None = None) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **(arrays if arrays is not None else tiny_arrays()))
    return path.read_bytes()


def assert_matches(ds, arrays: dict[str, np.ndarray]) -> None:
    assert ds.name == "mnist" and ds.num_classes == 10
    assert ds.x_train.shape == (N_TRAIN, 28, 28, 1) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (N_TEST, 28, 28, 1) and ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])
    np.testing.assert_array_equal(ds.x_test[..., 0], arrays["x_test"])
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    assert len(ds.checksum) == 64


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No user env leaks in; an empty Keras cache; offline unless a test says otherwise."""
    for var in ("HARNESS_DATA_DIR", "HARNESS_MNIST_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    # A proxy from the environment must not intercept the local test server.
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    return keras_home


# ----------------------------------------------------------------------------- loading


def test_loads_gz_idx_from_mnist_subdir(tmp_path: Path) -> None:
    arrays = make_idx_dir(tmp_path / "data" / "mnist")
    ds = load_mnist(tmp_path / "data")
    assert_matches(ds, arrays)
    assert ds.source == str(tmp_path / "data" / "mnist")
    files = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    expected = hashlib.sha256(b"".join((tmp_path / "data" / "mnist" / f).read_bytes() for f in files)).hexdigest()
    assert ds.checksum == expected


def test_loads_gz_idx_from_data_dir_itself(tmp_path: Path) -> None:
    arrays = make_idx_dir(tmp_path)
    assert_matches(load_mnist(tmp_path), arrays)


def test_loads_uncompressed_idx(tmp_path: Path) -> None:
    arrays = make_idx_dir(tmp_path / "mnist", gz=False)
    assert_matches(load_mnist(tmp_path), arrays)


def test_loads_npz(tmp_path: Path) -> None:
    arrays = tiny_arrays(seed=3)
    raw = make_npz(tmp_path / "mnist" / "mnist.npz", arrays)
    ds = load_mnist(tmp_path)
    assert_matches(ds, arrays)
    assert ds.checksum == hashlib.sha256(raw).hexdigest()
    assert ds.source == str(tmp_path / "mnist" / "mnist.npz")


def test_data_dir_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = make_idx_dir(tmp_path / "mnist")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    assert_matches(load_dataset("mnist"), arrays)


def test_keras_cache_is_used(clean_env: Path) -> None:
    arrays = tiny_arrays(seed=5)
    make_npz(clean_env / "datasets" / "mnist.npz", arrays)
    assert_matches(load_mnist(None), arrays)


def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'nope'.*valid datasets:.*mnist"):
        load_dataset("nope")


# ----------------------------------------------------------------------------- bad files


def test_bad_gzip(tmp_path: Path) -> None:
    make_idx_dir(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: is not a valid gzip"):
        load_mnist(tmp_path)


def test_truncated_gzip(tmp_path: Path) -> None:
    make_idx_dir(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: .*is truncated"):
        load_mnist(tmp_path)


def test_bad_magic(tmp_path: Path) -> None:
    arrays = make_idx_dir(tmp_path)
    # A labels file written where the images belong.
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", arrays["y_train"], LABELS)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: expected IDX magic 2051 .*but got 2049"):
        load_mnist(tmp_path)


def test_wrong_image_dims(tmp_path: Path) -> None:
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((N_TEST, 32, 32)), IMAGES)
    with pytest.raises(DataError, match=r"expected 28x28 images but header says 32x32"):
        load_mnist(tmp_path)


def test_header_count_exceeds_bytes(tmp_path: Path) -> None:
    make_idx_dir(tmp_path)
    header = LABELS.to_bytes(4, "big") + (N_TRAIN + 5).to_bytes(4, "big")
    data = header + bytes(N_TRAIN)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(data))
    with pytest.raises(
        DataError,
        match=rf"train-labels-idx1-ubyte\.gz: header says {N_TRAIN + 5} labels .* has"
        rf" {8 + N_TRAIN} bytes; the file truncated",
    ):
        load_mnist(tmp_path)


def test_trailing_bytes(tmp_path: Path) -> None:
    make_idx_dir(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00\x01")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: .*trailing bytes"):
        load_mnist(tmp_path)


def test_image_label_count_mismatch(tmp_path: Path) -> None:
    arrays = make_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", arrays["y_train"][:-4], LABELS)
    with pytest.raises(
        DataError,
        match=rf"train split: .*train-images.* has {N_TRAIN} images but .*train-labels.*"
        rf" has {N_TRAIN - 4} labels",
    ):
        load_mnist(tmp_path)


def test_label_out_of_range(tmp_path: Path) -> None:
    arrays = make_idx_dir(tmp_path)
    labels = arrays["y_test"].copy()
    labels[7] = 12
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, LABELS)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: labels must be in 0\.\.9 but found 12"):
        load_mnist(tmp_path)


def test_npz_missing_key(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    del arrays["y_test"]
    make_npz(tmp_path / "mnist.npz", arrays)
    with pytest.raises(DataError, match=r"mnist\.npz: missing key y_test"):
        load_mnist(tmp_path)


def test_npz_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"mnist\.npz: is not a valid \.npz file"):
        load_mnist(tmp_path)


def test_official_size_file_must_match_official_md5(tmp_path: Path) -> None:
    make_idx_dir(tmp_path)
    labels = np.random.default_rng(1).integers(0, 10, 10000, dtype=np.uint8)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, LABELS)
    with pytest.raises(
        DataError,
        match=r"t10k-labels-idx1-ubyte\.gz: checksum mismatch: .*"
        r"ec29112dd5afa0611ce80d1b7f02629c but got [0-9a-f]{32}",
    ):
        load_mnist(tmp_path)


def test_sha256sums_mismatch(tmp_path: Path) -> None:
    make_idx_dir(tmp_path / "mnist")
    good = hashlib.sha256((tmp_path / "mnist" / "train-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "SHA256SUMS").write_text(
        f"{good.hexdigest()}  ./mnist/train-images-idx3-ubyte.gz\n{'0' * 64}  mnist/t10k-labels-idx1-ubyte.gz\n"
    )
    with pytest.raises(
        DataError,
        match=rf"t10k-labels-idx1-ubyte\.gz: checksum mismatch against SHA256SUMS:"
        rf" expected sha256 {'0' * 64} but got [0-9a-f]{{64}}",
    ):
        load_mnist(tmp_path)


def test_sha256sums_match_loads(tmp_path: Path) -> None:
    arrays = make_idx_dir(tmp_path / "mnist")
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./mnist/{p.name}"
        for p in sorted((tmp_path / "mnist").iterdir())
    ]
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    assert_matches(load_mnist(tmp_path), arrays)


# ----------------------------------------------------------------------------- not found


def test_nothing_in_data_dir(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"MNIST not found in .*: expected train-images-idx3-ubyte\.gz.*mnist\.npz"
        r".*HARNESS_DATA_DIR or --data-dir",
    ) as info:
        load_mnist(tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "t10k-labels-idx1-ubyte.gz" in msg and "--data-dir" in msg


def test_partial_idx_set_names_missing_file(tmp_path: Path) -> None:
    make_idx_dir(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"lacks t10k-images-idx3-ubyte\.gz.*HARNESS_DATA_DIR"):
        load_mnist(tmp_path)


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does-not-exist does not exist; set HARNESS_DATA_DIR"):
        load_mnist(tmp_path / "does-not-exist")


def test_offline_without_cache(clean_env: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"MNIST not found offline \(HARNESS_OFFLINE is set.*HARNESS_DATA_DIR or --data-dir",
    ):
        load_mnist(None)
    assert not (clean_env / "datasets" / "mnist.npz").exists()


# ----------------------------------------------------------------------------- download


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A local HTTP server standing in for the Keras bucket; yields the served directory."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("HARNESS_OFFLINE")
    monkeypatch.setenv("HARNESS_MNIST_MIRROR", f"http://127.0.0.1:{server.server_port}/")
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_download_checksum_mismatch_leaves_nothing(mirror: Path, clean_env: Path) -> None:
    make_npz(mirror / "mnist.npz")
    with pytest.raises(DataError, match=r"checksum mismatch .*expected sha256 731c5ac6.* but got [0-9a-f]{64}"):
        load_mnist(None)
    assert list((clean_env / "datasets").iterdir()) == []


def test_download_success(mirror: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = tiny_arrays(seed=9)
    raw = make_npz(mirror / "mnist.npz", arrays)
    digest = hashlib.sha256(raw).hexdigest()
    monkeypatch.setattr(_mnist, "KERAS_MNIST_SHA256", digest)
    ds = load_mnist(None)
    assert_matches(ds, arrays)
    cached = clean_env / "datasets" / "mnist.npz"
    assert cached.read_bytes() == raw and ds.checksum == digest
    assert [p.name for p in cached.parent.iterdir()] == ["mnist.npz"]
    # Second call reads the cache even with the server gone.
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    assert load_mnist(None).checksum == digest


def test_download_network_failure(mirror: Path, clean_env: Path) -> None:
    # The served directory is empty: the server answers 404.
    with pytest.raises(
        DataError,
        match=r"MNIST not found offline and the download from .*mnist\.npz failed"
        r" \(HTTP Error 404.*HARNESS_DATA_DIR or --data-dir",
    ):
        load_mnist(None)
    assert list((clean_env / "datasets").iterdir()) == []


# ----------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_mnist() -> None:
    if not (REAL_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {REAL_DATA / 'mnist'}")
    ds = load_mnist(REAL_DATA)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.y_train.min() == 0 and ds.y_train.max() == 9
    assert ds.y_test.min() == 0 and ds.y_test.max() == 9
    assert np.bincount(ds.y_train)[1] == 6742 and np.bincount(ds.y_test)[1] == 1135
    names = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    digest = hashlib.sha256()
    for name in names:
        digest.update((REAL_DATA / "mnist" / name).read_bytes())
    assert ds.checksum == digest.hexdigest()
