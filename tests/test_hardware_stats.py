"""The hardware report's statistics: a mean and its 95% CI per row, and Mann-Whitney verdicts (Holm) between
rows that differ in one of backend, batch size and precision. The runs are logged straight into a tmp
SQLite store with the tags and metrics ``harness bench hardware`` gives them: nothing is trained."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Metric

from harness.report import hardware_report, write_hardware
from harness.report._hardware import EXPERIMENT, HardwareReport
from harness.tracking import Tracker

_UNTESTABLE = "With one repetition per row, no comparison can be tested"
Rows = dict[tuple[str, int, str], Sequence[float]]  # (backend, batch, precision) -> a value per repetition


def _log(tracker: Tracker, throughput: Rows, tta: Rows | None = None, repeats: int = 5) -> str:
    """A finished bench parent with a finished child run per repetition; returns the parent's run id."""
    client = tracker.client
    exp = tracker.experiment_id(EXPERIMENT)
    parent_tags = {"harness.kind": "bench-hardware", "bench.repeats": str(repeats), "bench.windows": "5"}
    parent = client.create_run(exp, run_name="bench-hardware-test", tags={**parent_tags, "bench.quick": "false"})
    measured = [("throughput", throughput), *([("time-to-accuracy", tta)] if tta else [])]
    for measure, rows in measured:
        for (backend, batch, precision), values in rows.items():
            for repeat, value in enumerate(values):
                tags = {
                    "mlflow.parentRunId": parent.info.run_id,
                    "harness.kind": "bench-hardware",
                    "bench.experiment": "mnist-speed",
                    "bench.unit": "images",
                    "bench.measure": measure,
                    "bench.backend": backend,
                    "device": f"{backend.upper()}: test device",
                    "bench.batch_size": str(batch),
                    "bench.precision": precision,
                    "bench.repeat": str(repeat),
                    "bench.target": "0.99",
                    "price_per_hour": "3.6",
                }
                run = client.create_run(exp, run_name=f"{backend}-b{batch}-{measure}-r{repeat}", tags=tags)
                metrics = [Metric(key, v, 0, 0) for key, v in _metrics(measure, value).items()]
                client.log_batch(run.info.run_id, metrics=metrics)
                client.set_terminated(run.info.run_id, "FINISHED")
    client.set_terminated(parent.info.run_id, "FINISHED")
    return str(parent.info.run_id)


def _metrics(measure: str, value: float) -> dict[str, float]:
    """What a throughput run (``value`` examples/s) or a time-to-accuracy run (``value`` s; inf: not reached) logs."""
    if measure == "throughput":
        return {
            "bench_examples_per_s": value,
            "bench_step_ms": 1000 * 100 / value,
            "bench_compile_s": 1.0,
            "bench_peak_memory_mb": 100.0,
            "bench_usd_per_million_examples": 3.6 / 3600 * 1e6 / value,
        }
    base = {"bench_data_load_s": 0.2, "bench_target": 0.99}
    if value == float("inf"):
        return {**base, "bench_reached": 0.0}
    return {**base, "bench_reached": 1.0, "bench_time_to_target_s": value, "bench_usd_to_target": 3.6 / 3600 * value}


@pytest.fixture
def tracker(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")


def _written(report: HardwareReport, out: Path) -> tuple[str, str, pd.DataFrame]:
    paths = write_hardware(report, out, "harness report bench-hardware")
    assert all(p.exists() for p in paths)
    md = (out / "hardware.md").read_text(encoding="utf-8")
    html = (out / "hardware.html").read_text(encoding="utf-8")
    csv = out / "hardware_comparisons.csv"
    return md, html, pd.read_csv(csv) if csv.exists() else pd.DataFrame()


def test_identical_backends_are_within_noise_and_no_backend_is_named_faster(tracker: Tracker, tmp_path: Path) -> None:
    same = [1000.0, 1010.0, 990.0, 1005.0, 995.0]
    report = hardware_report(tracker, _log(tracker, {("cpu", 64, "float32"): same, ("gpu", 64, "float32"): same}))

    (pair,) = report.comparisons.itertuples(index=False)
    assert (pair.experiment, pair.measure, pair.varies) == ("mnist-speed", "throughput", "backend")
    assert pair.at == "tensorflow, batch 64, float32"
    assert (pair.a, pair.b, pair.n) == ("cpu", "gpu", "5, 5")
    assert pair.verdict == "no significant difference" and pair.p_holm == 1.0
    assert pair[report.comparisons.columns.get_loc("ratio of medians (a/b)")] == "1.00"
    (finding,) = report.findings
    assert finding == (
        "mnist-speed, throughput by backend (tensorflow, batch 64, float32): cpu vs gpu within noise "
        "(p = 1.000, Holm; no difference observed)"
    )
    md, html, csv = _written(report, tmp_path / "out")
    assert "## Comparisons" in md and f"- {finding}" in md and "within noise" in html
    assert not any(f"{backend} faster" in text for backend in ("cpu", "gpu") for text in (md, html))
    assert list(csv["verdict"]) == ["no significant difference"]


def test_clearly_faster_backend_is_named_with_its_holm_p(tracker: Tracker, tmp_path: Path) -> None:
    cpu = [100.0, 104.0, 98.0, 101.0, 103.0]
    gpu = [2000.0, 2100.0, 1950.0, 2050.0, 1990.0]
    tta = {("cpu", 64, "float32"): [30.0, 33.0, 31.0, 29.0, 32.0], ("gpu", 64, "float32"): [3.0, 3.1, 2.9, 3.2, 3.05]}
    parent = _log(tracker, {("cpu", 64, "float32"): cpu, ("gpu", 64, "float32"): gpu}, tta)
    report = hardware_report(tracker, parent)

    c = report.comparisons.set_index("measure")
    assert list(c["verdict"]) == ["gpu faster", "gpu faster"]
    assert (c["p_holm"] < 0.05).all() and list(c["p (Holm)"]) == ["0.008", "0.008"]  # 2/C(10,5): 5 vs 5 at best
    assert c.loc["throughput", "ratio of medians (a/b)"] == "0.05" and list(c["repeats needed"]) == ["", ""]
    assert report.findings == (
        "mnist-speed, throughput by backend (tensorflow, batch 64, float32): gpu faster than cpu "
        "(median 19.80x the examples/s, p = 0.008, Holm)",
        "mnist-speed, time to accuracy by backend (tensorflow, batch 64, float32): gpu faster than cpu "
        "(median 0.10x the time, p = 0.008, Holm)",
    )
    md, html, csv = _written(report, tmp_path / "out")
    assert all(f"- {f}" in md for f in report.findings) and "gpu faster than cpu" in html
    assert list(csv.columns) == list(report.comparisons.columns)  # the CSV keeps the raw p beside the shown one
    assert csv["p_holm"].round(4).tolist() == [0.0079, 0.0079]


def test_each_row_has_n_and_the_bootstrap_ci_of_its_mean(tracker: Tracker) -> None:
    cpu = [100.0, 104.0, 98.0, 101.0, 103.0]
    tta = {("cpu", 64, "float32"): [30.0, 32.0, float("inf"), 31.0, 29.0]}  # one repetition never got there
    report = hardware_report(tracker, _log(tracker, {("cpu", 64, "float32"): cpu}, tta))

    (row,) = report.throughput.to_dict("records")
    assert row["n"] == 5 and row["examples/s, median [min, max]"] == "101.0 [98.0, 104.0] images"
    mean, ci = row["examples/s, mean [95% CI]"].split(" ", 1)
    low, high = (float(v) for v in ci.strip("[]").split(", "))
    assert mean == "101.2" and 98.0 <= low < 101.2 < high <= 104.0
    assert row["$ per 1M examples, mean [95% CI]"].count("[") == 1
    (timed,) = report.time_to_accuracy.to_dict("records")
    assert timed["reached"] == "4/5" and timed["n"] == 4  # the CI is over the repetitions that reached it
    assert timed["time to target s, mean [95% CI]"].startswith("30.5 [")
    assert report.comparisons.empty and report.findings == ()  # one row: nothing to compare


def test_one_repetition_per_row_says_no_comparison_can_be_tested(tracker: Tracker, tmp_path: Path) -> None:
    rows = {("cpu", 64, "float32"): [100.0], ("gpu", 64, "float32"): [2000.0], ("cpu", 128, "float32"): [150.0]}
    report = hardware_report(tracker, _log(tracker, rows, repeats=1))

    assert list(report.comparisons["varies"]) == ["backend", "batch size"]  # gpu b64 and cpu b128 differ in two
    assert set(report.comparisons["verdict"]) == {"not testable"}
    (sentence,) = report.findings
    assert sentence.startswith(f"{_UNTESTABLE}: Mann-Whitney needs at least 2 repetitions per row, and 4 ")
    (row, *_) = report.throughput.to_dict("records")
    assert row["n"] == 1 and row["examples/s, mean [95% CI]"] == "100.0"  # one value: no interval
    md, html, _ = _written(report, tmp_path / "out")
    assert _UNTESTABLE in md and _UNTESTABLE in html
    assert not any(f"{row} faster" in md for row in ("cpu", "gpu", "batch 64", "batch 128"))


def test_three_batch_sizes_name_the_fastest_only_where_every_pair_says_so(tracker: Tracker) -> None:
    rows = {
        ("cpu", 32, "float32"): [100.0, 101.0, 102.0, 103.0, 104.0, 105.0],
        ("cpu", 64, "float32"): [200.0, 201.0, 202.0, 203.0, 204.0, 205.0],
        ("cpu", 128, "float32"): [300.0, 301.0, 302.0, 303.0, 304.0, 305.0],
        ("cpu", 256, "float32"): [300.5, 301.5, 299.5, 302.5, 303.5, 304.5],  # batch 128's rate, within noise
    }
    report = hardware_report(tracker, _log(tracker, rows, repeats=6))

    c = report.comparisons
    assert len(c) == 6 and set(c["varies"]) == {"batch size"}
    both = c[(c["a"] == "batch 128") & (c["b"] == "batch 256")]
    assert list(both["verdict"]) == ["no significant difference"] and both["repeats needed"].iloc[0] != ""
    (finding,) = report.findings  # one family: cpu, float32, by batch size
    assert "is the fastest" not in finding  # 128 and 256 tie at the top
    assert "batch 64 faster than batch 32" in finding and "the other pairs within noise" in finding
    assert "batch 256 faster than batch 128" not in finding and "batch 128 faster than batch 256" not in finding
