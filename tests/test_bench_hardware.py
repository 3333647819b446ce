"""``harness bench hardware``: its argument checks, its clocks, and a quick end-to-end run whose
every measurement is an MLflow run that ``harness report bench-hardware`` reads back."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from mnist_files import write_tiny_mnist

from harness.bench import EXPERIMENTS, parse_batch_sizes, parse_experiments
from harness.bench._hardware import HardwareRequest, TargetSink, WindowClock
from harness.cli import main
from harness.config import parse_frameworks
from harness.errors import ConfigError, UserError
from harness.report._hardware import talk_runs


def test_unknown_experiment_lists_the_valid_ones() -> None:
    with pytest.raises(UserError, match=r"--experiments expects a comma list of mnist-bn, .*resnet50, but got 'mnist'"):
        parse_experiments("mnist")
    assert [e.name for e in parse_experiments("resnet50,mnist-bn,resnet50")] == ["resnet50", "mnist-bn"]


@pytest.mark.parametrize("text", ["0", "8,x", "-4", "100000", ","])
def test_bad_batch_sizes_are_refused(text: str) -> None:
    with pytest.raises(UserError, match=f"--batch-sizes expects .* but got {text!r}"):
        parse_batch_sizes(text)


def test_repeats_and_windows_are_bounded() -> None:
    with pytest.raises(ConfigError, match=r"repeats must be 1\.\.1000, but got repeats=0"):
        HardwareRequest(experiments=(), backends=("cpu",), repeats=0)


@pytest.mark.parametrize("argv", [["--experiments", "nope"], ["--repeats", "0"], ["--backends", "warp-drive"]])
def test_bad_arguments_exit_2_before_any_run(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "hardware", "--experiments", "mnist-bn", *argv]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "mlflow.db").exists()


def test_window_clock_takes_the_median_window_and_times_the_warm_up_apart() -> None:
    clock = WindowClock(gpu=False)
    clock.started = 100.0
    clock.ends = [105.0, 106.0, 108.0, 109.0]  # warm-up 5 s, then windows of 1, 2 and 1 s
    clock.rss_mb = [10.0, 30.0, 20.0, 25.0]
    got = clock.summary(steps=10, batch_size=50, price=3.6)
    assert got["bench_compile_s"] == 5.0 and got["bench_windows"] == 3
    assert got["bench_examples_per_s"] == 500.0  # 500 examples per window, median window 1 s
    assert (got["bench_examples_per_s_window_min"], got["bench_examples_per_s_window_max"]) == (250.0, 500.0)
    assert got["bench_step_ms"] == 100.0 and got["bench_peak_memory_mb"] == 30.0
    assert got["bench_usd_per_million_examples"] == pytest.approx(3.6 / 3600 * 1e6 / 500)
    with pytest.raises(RuntimeError, match="needs a warm-up and a window"):
        WindowClock(gpu=False).summary(10, 50, None)


def test_window_clock_counts_executions_whether_keras_calls_it_per_execution_or_per_step() -> None:
    """TensorFlow and JAX call the batch-end hook once per execution (its last step's index); PyTorch, whose
    trainer runs one step per call, once per step: either way a window ends after ``steps`` steps."""
    per_execution, per_step = WindowClock(gpu=False, steps=5), WindowClock(gpu=False, steps=5)
    for end in (4, 9, 14):
        per_execution.on_train_batch_end(end)
    for step in range(15):
        per_step.on_train_batch_end(step)
    assert len(per_execution.ends) == len(per_step.ends) == 3


def test_target_sink_keeps_the_first_evaluation_at_the_target() -> None:
    sink = TargetSink("test_accuracy", 0.99)
    for step, acc, wall in ((50, 0.98, 5.0), (100, 0.991, 9.0), (150, 0.995, 13.0)):
        sink.log_metrics(step, {"test_accuracy": acc, "wall_s": wall})
    assert (sink.step, sink.wall_s) == (100, 9.0)


def test_every_talk_run_projects_from_an_experiment_the_benchmark_has() -> None:
    runs = talk_runs()
    assert {r.experiment for r in runs} <= set(EXPERIMENTS)
    assert all(r.examples > 0 and r.talk for r in runs)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "tensorflow,mxnet",
            r"--frameworks expects a comma list of tensorflow, jax, torch, but got 'tensorflow,mxnet'",
        ),
        (",", r"--frameworks expects a comma list"),
    ],
)
def test_unknown_frameworks_are_refused(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        parse_frameworks(text)
    assert parse_frameworks("jax, tensorflow,jax") == ("jax", "tensorflow")


def test_a_framework_not_installed_exits_2_naming_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "torch", None)  # how harness._framework.installed sees a missing package
    assert main(["bench", "hardware", "--experiments", "mnist-bn", "--frameworks", "jax,torch"]) == 2
    assert capsys.readouterr().err == "error: --frameworks: torch not installed here: pip install 'torch'\n"
    assert not (tmp_path / "mlflow.db").exists()


def test_a_request_travels_to_another_framework_whole() -> None:
    request = HardwareRequest(
        experiments=parse_experiments("mnist-speed,resnet50"),
        backends=("cpu", "gpu"),
        batch_sizes=(None, 64),
        repeats=2,
        quick=True,
        frameworks=("jax",),
    )
    assert HardwareRequest.from_json(request.to_json()) == request


@pytest.mark.slow
def test_quick_bench_hardware_logs_every_measurement_and_reports_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two frameworks in one invocation: TensorFlow's runs measured in this process, JAX's in a child on it."""
    from mlflow import MlflowClient

    data = write_tiny_mnist(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the store in tmp_path
    # one experiment with a target, one batch size (each measurement is a run that costs seconds); test_replay.py
    # runs --batch-sizes 32,64
    argv = ["bench", "hardware", "--quick", "--experiments", "mnist-speed", "--backends", "cpu"]
    argv += ["--frameworks", "tensorflow,jax", "--batch-sizes", "32"]
    assert main([*argv, "--data-dir", str(data), "--out", "out"]) == 0
    out = capsys.readouterr().out  # off a terminal: a line per measurement, then its runs' plain progress lines
    assert "measurement 1/4: mnist-speed, cpu, batch 32, throughput, repetition 1/1\n" in out
    assert "measurement 2/4: mnist-speed, cpu, batch 32, time to 99.00%, repetition 1/1\n" in out
    assert "    mnist-speed-cpu-b32-throughput-r0: step " in out and "    mnist-speed-cpu-b32-tta-r0: step " in out
    # the child's lines go to the terminal itself (file descriptor 1), which capsys does not see

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("bench-hardware")
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and all(r.info.status == "FINISHED" for r in runs)
    assert parent[0].data.tags["bench.frameworks"] == "tensorflow,jax"
    measures = sorted(
        (
            r.data.tags["harness.framework"],
            r.data.tags["bench.measure"],
            r.data.params["run.batch_size"],
            r.info.run_name,
        )
        for r in kids
    )
    assert measures == [
        ("jax", "throughput", "32", "mnist-speed-jax-cpu-b32-throughput-r0"),
        ("jax", "time-to-accuracy", "32", "mnist-speed-jax-cpu-b32-tta-r0"),
        ("tensorflow", "throughput", "32", "mnist-speed-cpu-b32-throughput-r0"),
        ("tensorflow", "time-to-accuracy", "32", "mnist-speed-cpu-b32-tta-r0"),
    ]
    assert {r.data.params["run.framework"] for r in kids} == {"tensorflow", "jax"}
    for run in kids:
        m = run.data.metrics
        if run.data.tags["bench.measure"] == "throughput":
            assert m["bench_windows"] == 2 and m["bench_examples_per_s"] > 0 and m["bench_compile_s"] > 0
            assert m["bench_usd_per_million_examples"] > 0 and m["bench_peak_memory_mb"] > 0
            steps = int(run.data.params["run.steps_per_execution"])
            assert int(run.data.params["run.iterations"]) == 3 * steps  # a warm-up and 2 windows
        else:
            assert m["bench_reached"] in (0.0, 1.0) and m["bench_target"] == 0.99 and m["bench_data_load_s"] > 0
            if m["bench_reached"]:
                assert m["bench_data_load_s"] < m["bench_time_to_target_s"]
        assert not client.list_artifacts(run.info.run_id, "model")  # benchmarks skip the saved models

    md = (tmp_path / "out" / "hardware.md").read_text(encoding="utf-8")
    assert "QUICK MODE" in md and "## Time to accuracy" in md and "projections" not in md
    assert (tmp_path / "out" / "hardware.png").stat().st_size > 0
    csv = (tmp_path / "out" / "hardware.csv").read_text(encoding="utf-8")
    assert csv.count('\n"mnist-') == 2  # a throughput row per experiment x framework x backend x batch (quoted)
    side = pd.read_csv(tmp_path / "out" / "hardware_frameworks.csv")
    assert list(side.columns) == ["experiment", "batch", "precision", "measure", "tensorflow cpu", "jax cpu"]
    assert list(side["measure"]) == ["examples/s", "s to target"]
    assert "## Framework x backend" in md and "| tensorflow cpu " in md

    assert main(["report", "bench-hardware", "--out", "again"]) == 0  # the latest run, from the store alone
    again = (tmp_path / "again" / "hardware.md").read_text(encoding="utf-8")

    def body(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("Generated from")]

    assert body(again) == body(md)  # the same tables, from the store alone
