"""End-to-end check of ``harness bench --quick`` on a tiny generated MNIST."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

IMAGES, LABELS = 2051, 2049


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1, mtime=0))


def _learnable(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise plus a bright bar whose row gives the label, so a few dozen steps learn something."""
    y = rng.integers(0, 10, n, dtype=np.uint8)
    x = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for i, label in enumerate(y):
        x[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
    return x, y


def make_tiny_mnist(folder: Path, n_train: int = 512, n_test: int = 128) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x, y = _learnable(n, rng)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", x, IMAGES)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y, LABELS)
    return folder


@pytest.mark.slow
def test_quick_benchmark_writes_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.bench import run_benchmarks

    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    data_dir = make_tiny_mnist(tmp_path / "data" / "mnist").parent
    out = tmp_path / "bench"
    results = run_benchmarks(data_dir=str(data_dir), out_dir=out, quick=True)

    md, js = out / "bench.md", out / "bench.json"
    assert md.is_file() and js.is_file()
    saved = json.loads(js.read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(results))
    assert {"overhead", "throughput", "time_to_accuracy"} <= saved.keys()

    overhead = saved["overhead"]
    assert len(overhead["harness"]) == len(overhead["baseline"]) == 1
    for row in overhead["harness"] + overhead["baseline"]:
        assert row["wall_s"] > 0 and row["examples_per_s"] > 0
    assert overhead["store_create_s"] > 0
    assert isinstance(overhead["ratio"], float) and overhead["ratio"] > 0
    assert saved["throughput"]["examples_per_s"] > 0 and saved["throughput"]["time_warmup_s"] > 0
    tta = saved["time_to_accuracy"]
    assert tta["rung"]["name"] == "cnn-batchnorm" and tta["wall_s"] > 0
    assert tta["time_to_target_s"] is None or 0 < tta["time_to_target_s"] <= tta["wall_s"]

    study = saved["study_overhead"]
    assert {r["store"] for r in study["rows"]} >= {"local", "sqlite"} and study["repeats"] == 1
    for row in study["rows"]:
        assert row["ms_per_trial"] > 0 and row["ms_per_trial_runs"] == [row["runs"][0]["ms_per_trial"]]
        assert all(run["completed"] == row["trials"] for run in row["runs"])
    assert study["local_ms_at_max"] is not None and study["sqlite_ms_at_max"] is not None

    yolo = saved["yolo"]  # synthetic scenes in quick mode
    assert len(yolo["harness"]) == len(yolo["plain"]) == 1
    assert yolo["harness_tiles_per_s"] > 0 and yolo["plain_tiles_per_s"] > 0 and yolo["ratio"] > 0
    assert yolo["pipeline_tiles_per_s"] > 0 and yolo["pipeline_over_training"] > 0

    text = md.read_text(encoding="utf-8")
    assert "ms per trial (median of 1)" in text
    assert "nox -s bench" in text and "harness bench --data-dir ../shared/data" in text
    assert "QUICK MODE" in text

    # --only: (b) measured again, the rest kept from the run above and marked with when it was measured
    first = saved["meta"]["date"], saved["meta"]["git_commit"]
    again = run_benchmarks(data_dir=str(data_dir), out_dir=out, quick=True, only=("throughput",))
    resaved = json.loads(js.read_text(encoding="utf-8"))
    assert resaved["overhead"]["ratio"] == overhead["ratio"]
    assert resaved["time_to_accuracy"]["wall_s"] == tta["wall_s"]
    assert (resaved["overhead"]["measured"]["date"], resaved["overhead"]["measured"]["git_commit"]) == first
    assert resaved["throughput"]["measured"]["date"] == again["meta"]["date"]
    assert resaved["meta"]["command"] == "harness bench --quick --only b"
    text = md.read_text(encoding="utf-8")
    assert text.count("_Kept from an earlier run") == 4  # (a), (c), (d), (e)


def test_bench_sections_parse_letters_and_names_in_report_order() -> None:
    from harness.bench import SECTIONS, parse_sections
    from harness.errors import UserError

    assert parse_sections(None) == tuple(SECTIONS)
    assert parse_sections("d,a") == ("overhead", "study_overhead")
    assert parse_sections("study-overhead") == ("study_overhead",)
    with pytest.raises(UserError, match=r"--only expects .*a \(overhead\).*but got 'f'"):
        parse_sections("f")


def test_bench_only_with_an_unknown_section_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["bench", "--only", "x"]) == 2
    assert "--only expects" in capsys.readouterr().err
