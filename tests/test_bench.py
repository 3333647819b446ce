"""End-to-end check of ``harness bench --quick`` on a tiny generated MNIST."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import run_cli
from mnist_files import write_tiny_mnist

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "bench"


def test_report_bench_rebuilds_the_committed_pages_from_bench_json_alone(tmp_path: Path) -> None:
    """bench.json is the benchmark's store: `harness report bench` renders the committed bench.md from it, to the
    byte, and its HTML page beside it; a folder without one, or a file that is not one, is exit 2 in one line."""
    shutil.copyfile(COMMITTED / "bench.json", tmp_path / "bench.json")
    rc, out = run_cli("report", "bench", "--out", str(tmp_path))
    assert rc == 0, out
    assert (tmp_path / "bench.md").read_text(encoding="utf-8") == (COMMITTED / "bench.md").read_text(encoding="utf-8")
    page = (tmp_path / "bench.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>Harness benchmarks</title>" in page
    assert page == (COMMITTED / "bench.html").read_text(encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out = run_cli("report", "bench", "--out", str(empty))
    assert rc == 2 and f"{empty / 'bench.json'}: no bench.json here" in out and "Traceback" not in out
    (empty / "bench.json").write_text("[1, 2]", encoding="utf-8")
    rc, out = run_cli("report", "bench", "--out", str(empty))
    assert rc == 2 and "not a benchmark's results (expected a JSON object with a 'meta' section)" in out
    assert not (empty / "bench.md").exists()


@pytest.mark.slow
def test_quick_benchmark_training_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.bench import run_benchmarks

    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    data_dir = write_tiny_mnist(tmp_path / "data")
    out = tmp_path / "bench"
    only = ("overhead", "throughput", "time_to_accuracy")
    results = run_benchmarks(data_dir=str(data_dir), out_dir=out, quick=True, only=only)

    md, js = out / "bench.md", out / "bench.json"
    assert md.is_file() and js.is_file() and (out / "bench.html").is_file()
    saved = json.loads(js.read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(results))
    assert set(only) <= saved.keys() and "yolo" not in saved

    overhead = saved["overhead"]
    assert len(overhead["harness"]) == len(overhead["baseline"]) == 1
    for row in overhead["harness"] + overhead["baseline"]:
        assert row["wall_s"] > 0 and row["examples_per_s"] > 0
    assert overhead["store_create_s"] > 0
    assert isinstance(overhead["ratio"], float) and overhead["ratio"] > 0
    assert saved["throughput"]["examples_per_s"] > 0 and saved["throughput"]["time_warmup_s"] > 0
    tta = saved["time_to_accuracy"]  # the mnist-speed rung through `bench hardware`, data read on the clock
    assert tta["rung"] == {"ladder": "mnist-speed", "name": "speed"} and tta["target"] == 0.99
    [repeat] = tta["repeats"]
    assert repeat["data_load_s"] > 0 and 0 < repeat["best_test_accuracy"] <= 1
    # a seed that misses 99% has no time, and then no median time is claimed
    assert repeat["reached"] is (repeat["time_to_target_s"] is not None) is (tta["median_s"] is not None)
    assert tta["meets_target"] is (tta["median_s"] is not None and tta["median_s"] < 8)

    text = md.read_text(encoding="utf-8")
    assert "nox -s bench" in text and "harness bench --data-dir ../shared/data" in text
    assert "QUICK MODE" in text
    assert "(target ≤ 1.03:" in text and "## (c) MNIST to 99.0% test accuracy" in text and "(target < 8 s:" in text
    assert "Wall times paired by repeat (Wilcoxon signed-rank, shorter is better): harness vs plain Keras" in text


@pytest.mark.slow
def test_quick_benchmark_study_and_yolo_sections(tmp_path: Path) -> None:
    from harness.bench import run_benchmarks

    out = tmp_path / "bench"
    # studies of 2 and 4 trials (quick mode's 10 and 30 check nothing more, in seconds per store)
    saved = run_benchmarks(data_dir=None, out_dir=out, quick=True, only=("study_overhead", "yolo"), study_trials=(2, 4))
    assert saved["meta"]["command"] == "harness bench --quick --only d,e --study-trials 2,4"

    study = saved["study_overhead"]
    assert {r["store"] for r in study["rows"]} >= {"local", "sqlite"} and study["repeats"] == 1
    assert study["counts"] == [2, 4] and {r["trials"] for r in study["rows"]} == {2, 4}
    for row in study["rows"]:
        assert row["ms_per_trial"] > 0 and row["ms_per_trial_runs"] == [row["runs"][0]["ms_per_trial"]]
        assert all(run["completed"] == row["trials"] for run in row["runs"])
    assert study["local_ms_at_max"] is not None and study["sqlite_ms_at_max"] is not None

    yolo = saved["yolo"]  # synthetic scenes in quick mode
    assert len(yolo["harness"]) == len(yolo["plain"]) == 1
    assert yolo["harness_tiles_per_s"] > 0 and yolo["plain_tiles_per_s"] > 0 and yolo["ratio"] > 0
    assert yolo["pipeline_tiles_per_s"] > 0 and yolo["pipeline_over_training"] > 0
    # the speed candidates, each trained in a process of its own (quick mode: two, one run each, not compared)
    candidates = yolo["candidates"]
    assert [r["name"] for r in candidates["rows"]] == ["default", "xla"] and candidates["repeats"] == 1
    assert all(len(r["tiles_per_s"]) == 1 and r["tiles_per_s"][0] > 0 for r in candidates["rows"])
    assert not any(r["clearly_faster"] or r["clearly_slower"] for r in candidates["rows"])

    text = (out / "bench.md").read_text(encoding="utf-8")
    assert "ms per trial (median of 1)" in text and "QUICK MODE" in text
    assert "| xla | XLA: train and eval steps compiled with jit_compile |" in text and "not compared" in text


@pytest.mark.slow
def test_quick_benchmark_replay_section(tmp_path: Path) -> None:
    from harness.bench import run_benchmarks

    out = tmp_path / "bench"
    replay = run_benchmarks(data_dir=None, out_dir=out, quick=True, only=("replay",))["replay"]
    assert replay["landscape"].startswith("synthetic") and replay["points"] == 76  # 64 Sobol + the 12 grid points
    assert replay["trials"] == 3 * 20 * 12 and replay["total_s"] > replay["fit_s"] > 0
    assert set(replay["per_sampler_s"]) == {"grid", "random", "tpe"}
    assert replay["fidelity_kendall_tau"] > 0.5  # a smooth synthetic landscape: the forest orders it well
    text = (out / "bench.md").read_text(encoding="utf-8")
    assert "## (f) Replay benchmark" in text and "ms per trial" in text


def test_bench_sections_parse_letters_and_names_in_report_order() -> None:
    from harness.bench import SECTIONS, parse_sections
    from harness.errors import UserError

    assert parse_sections(None) == tuple(SECTIONS)
    assert parse_sections("d,a") == ("overhead", "study_overhead")
    assert parse_sections("study-overhead") == ("study_overhead",)
    assert parse_sections("f") == ("replay",)
    with pytest.raises(UserError, match=r"--only expects .*a \(overhead\).*f \(replay\).*but got 'g'"):
        parse_sections("g")


def test_bench_only_with_an_unknown_section_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["bench", "--only", "x"]) == 2
    assert "--only expects" in capsys.readouterr().err


def test_bench_study_trials_parse_and_a_bad_one_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.bench._settings import parse_study_trials
    from harness.cli import main

    assert parse_study_trials(None) is None and parse_study_trials("30,10,10") == (10, 30)
    for bad in ("0", "ten", "10,", "100001"):
        assert main(["bench", "--quick", "--study-trials", bad]) == 2
        err = capsys.readouterr().err
        assert err == f"error: --study-trials expects a comma list of integers 1..100000, but got {bad!r}\n", err


def test_overhead_section_tests_the_paired_wall_times_before_calling_the_harness_slower() -> None:
    from harness.bench._report import _paired_verdict

    baseline = [{"wall_s": 16.0 + 0.3 * i} for i in range(8)]
    slower = [{"wall_s": r["wall_s"] * 1.1} for r in baseline]  # every pair 10% slower
    assert _paired_verdict(slower, baseline).startswith("harness worse than plain Keras (p = ")
    noisy = [{"wall_s": r["wall_s"] + (0.5 if i % 2 else -0.5)} for i, r in enumerate(baseline)]
    assert "no significant difference" in _paired_verdict(noisy, baseline)
    assert "not testable" in _paired_verdict(baseline[:1], baseline[:1])  # quick mode: one pair


def test_yolo_candidates_are_named_faster_only_when_every_run_beats_every_default_run() -> None:
    from harness.bench._yolo_candidates import render_candidates, summarise

    rates = {
        "default": [50.0, 52.0, 51.0],
        "xla": [70.0, 68.0, 72.0],  # every run above every default run, 1.37x the median
        "onednn-off": [40.0, 41.0, 39.0],
        "inter-op-1": [49.0, 53.0, 51.5],  # overlaps
    }
    c = summarise(rates, repeats=3, steps=100, skipped=["bf16"])
    rows = {r["name"]: r for r in c["rows"]}
    assert rows["xla"]["clearly_faster"] and rows["xla"]["ratio"] == pytest.approx(70 / 51)
    assert rows["onednn-off"]["clearly_slower"] and not rows["onednn-off"]["clearly_faster"]
    assert not rows["inter-op-1"]["clearly_faster"] and not rows["inter-op-1"]["clearly_slower"]
    text = "\n".join(render_candidates(c))
    assert "**YOLO training +30%: met** by xla." in text and "no bfloat16 instructions on this CPU): bf16" in text
    assert "| onednn-off |" in text and "slower in every run" in text and "no difference shown" in text

    two = summarise({"default": [50.0, 51.0], "xla": [80.0, 81.0]}, repeats=2, steps=100, skipped=[])
    assert not any(r["clearly_faster"] for r in two["rows"])  # too few runs to call anything
    text = "\n".join(render_candidates(two))
    assert "fewer than 3 runs: not compared" in text and "NOT met" in text and "xla's, is 1.59×" in text
