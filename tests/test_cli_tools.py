"""The newcomer's command line: examples in every --help, `harness tensorboard`, Cloud ML Engine job configs."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, harness_server, store_runs, wait_for_http

from harness.cli import build_parser, main
from harness.hardware import load_prices, price_per_hour

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "search_spaces" / "cmle_jobs"
HPTUNE = ROOT / "search_spaces" / "mnist_cnn_hptune.yaml"


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, parser
    for action in parser._actions:  # argparse has no public walk over its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _examples(epilog: str | None) -> list[list[str]]:
    """The example command lines of an epilog: its lines that start with ``harness``, comments dropped."""
    lines = [line.strip() for line in (epilog or "").splitlines()]
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("harness ")]


def test_every_command_has_examples_that_the_parser_accepts() -> None:
    parser = build_parser()
    seen = []
    for path, sub in _parsers(parser):
        examples = _examples(sub.epilog)
        assert examples, f"`harness {' '.join(path)} --help` shows no example"
        assert sub.formatter_class is argparse.RawDescriptionHelpFormatter, path  # one example per line
        for argv in examples:
            assert tuple(argv[: len(path)]) == path, (path, argv)  # a command's examples run that command
            try:
                build_parser().parse_args(argv)
            except SystemExit:
                pytest.fail(f"the example `harness {shlex.join(argv)}` of `harness {' '.join(path)}` does not parse")
            for arg in argv:  # the files the examples name are shipped
                if arg.startswith("search_spaces/"):
                    assert (ROOT / arg).is_file(), arg
            seen.append(argv)
    commands = {p for p, _ in _parsers(parser)}
    for expected in ("ladders", "backends", "ladder", "detect-scan", "detect-boxes", "ui", "tensorboard", "bench"):
        assert (expected,) in commands
    for expected in (("report", "ladder"), ("report", "study"), ("report", "bench-hardware"), ("runs", "clean")):
        assert expected in commands
    assert len(seen) >= 2 * len(commands)


def test_every_option_and_command_has_a_help_text() -> None:
    missing = []
    for path, sub in _parsers(build_parser()):
        for action in sub._actions:
            name = " ".join(("harness", *path, "/".join(action.option_strings) or action.dest))
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {c.dest}" for c in action._choices_actions if not (c.help or "").strip()]
            elif action.help != argparse.SUPPRESS and not (action.help or "").strip():
                missing.append(name)
    assert missing == []


# --- harness tensorboard ------------------------------------------------------------------------


def test_tensorboard_refuses_a_missing_logdir_and_a_port_in_use(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --logdir tensorboard does not exist; `harness ladder` (--tensorboard-dir"), err
    (workdir / "events").write_text("not a folder")
    assert main(["tensorboard", "--logdir", "events"]) == 2
    assert "--logdir events is not a folder" in capsys.readouterr().err
    (workdir / "tensorboard").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["tensorboard", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"error: cannot serve on 127.0.0.1:{port}" in err and "(another TensorBoard?); choose another --port" in err


# --- Cloud ML Engine files ----------------------------------------------------------------------


def test_cmle_tuning_file_needs_an_experiment_and_job_files_go_to_the_right_command(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["study", str(HPTUNE)]) == 2
    err = capsys.readouterr().err
    assert "--experiment LADDER:RUNG is required for a Cloud ML Engine file" in err
    assert re.search(r"built-in rungs: .*mnist: softmax, dense5-sigmoid, .*cnn-batchnorm; planesnet: dense, cnn", err)
    # a training job config is no tuning file, and the other way round
    assert main(["study", str(JOBS / "basic.yaml"), "--experiment", "mnist:cnn"]) == 2
    err = capsys.readouterr().err
    assert "missing hyperparameters: this is a training job config" in err
    assert f"harness ladder LADDER --cmle-config {JOBS / 'basic.yaml'}" in err
    assert main(["ladder", "mnist", "--cmle-config", str(HPTUNE)]) == 2
    err = capsys.readouterr().err
    assert "trainingInput.hyperparameters makes this a tuning config; tune with `harness study" in err
    # the file chooses the backend: a --set of it contradicts the file
    assert main(["ladder", "mnist", "--cmle-config", str(JOBS / "basic.yaml"), "--set", "backend=auto"]) == 2
    assert "chooses the backend (cpu, from scaleTier BASIC)" in capsys.readouterr().err
    assert not (workdir / "mlflow.db").exists()


@pytest.mark.slow
def test_cmle_gpu_tier_without_a_gpu_falls_back_as_a_study_does_and_prices_what_ran(
    workdir: Path, tiny_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: BASIC_GPU runs here")
    argv = ["ladder", "mnist", "--scale", "smoke", "--rungs", "1", "--data-dir", str(tiny_data_dir), "--no-report"]
    assert main([*argv, "--cmle-config", str(JOBS / "basic_gpu.yaml")]) == 0
    out = capsys.readouterr()
    said = out.out + out.err
    assert (
        "basic_gpu.yaml: trainingInput.scaleTier BASIC_GPU (one machine with one NVIDIA K80) asks for backend" in said
    )
    assert "running on backend=auto, each run priced as the hardware it used" in said
    runs = store_runs(workdir, "ladder/mnist")
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    tags = child.data.tags
    assert tags["backend"] == "cpu" and tags["price_per_hour"] == str(price_per_hour("cpu", load_prices()))
    assert tags["cmle.tier"] == "BASIC_GPU" and "lacks 'gpu'" in tags["cmle.fallback"]


@pytest.mark.slow
def test_cmle_job_prices_a_smoke_rung_and_tensorboard_serves_its_curves(
    workdir: Path, tiny_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One smoke rung on a BASIC job config, then `harness tensorboard` on the event files it wrote."""
    argv = ["ladder", "mnist", "--scale", "smoke", "--rungs", "1", "--data-dir", str(tiny_data_dir), "--no-report"]
    assert main([*argv, "--cmle-config", str(JOBS / "basic.yaml")]) == 0
    assert "trainingInput.runtimeVersion is ignored" in capsys.readouterr().err  # a warning, not silence
    runs = store_runs(workdir, "ladder/mnist")
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    tier_price = price_per_hour("cpu:n1-standard-4", load_prices())  # BASIC: one n1-standard-4
    assert tier_price is not None and tier_price != price_per_hour("cpu", load_prices())
    for run in (parent, child):
        tags = run.data.tags
        assert (tags["backend"], tags["price_per_hour"]) == ("cpu", str(tier_price))
        assert (tags["cmle.tier"], tags["cmle.machines"], tags["cmle.backend"]) == ("BASIC", "cpu:n1-standard-4", "cpu")
    assert child.data.params["run.backend"] == "cpu"  # as `--set backend=cpu` would log it
    metrics = child.data.metrics
    assert metrics["cost_usd"] == pytest.approx(tier_price * metrics["time_total_s"] / 3600)

    port = free_port()
    with harness_server(workdir, "tensorboard", "--port", str(port), log_name="tensorboard.log") as board:
        wait_for_http(f"http://127.0.0.1:{port}/", board)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        assert (
            f"TensorBoard on tensorboard: http://127.0.0.1:{port} (Ctrl-C stops it)"
            in (workdir / "tensorboard.log").read_text()
        )
        deadline, names = time.monotonic() + 60, []
        while time.monotonic() < deadline and not any("01-softmax-s0" in n for n in names):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=10) as answer:
                names = json.loads(answer.read())
            time.sleep(0.5)
        assert any(n.startswith("mnist/") and "01-softmax-s0" in n for n in names), names
        os.killpg(board.pid, signal.SIGINT)  # Ctrl-C: TensorBoard stops, exit 0 as `harness ui`'s server
        assert board.wait(timeout=30) == 0


@pytest.mark.parametrize(
    ("argv", "suggested"),
    [
        (["ladr"], "'ladder'"),
        (["report", "studdy", "x"], "'study'"),
        (["ladder", "mnist", "--scale", "smok"], "'smoke'"),
    ],
)
def test_a_misspelt_command_or_choice_gets_a_did_you_mean(
    argv: list[str], suggested: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert f"did you mean {suggested}?" in capsys.readouterr().err
