"""End to end through the CLI: the smoke ladder lands in MLflow complete; bad input is refused."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from helpers import store_runs
from mlflow.tracking import MlflowClient

import harness.ladders
from harness.cli import main
from harness.ladders import load_ladder

N_RUNGS = 8


@dataclasses.dataclass
class Smoke:
    root: Path
    rc: int
    seconds: float
    client: MlflowClient
    runs: list  # every run of the ladder experiment
    stdout: str


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, tiny_data_dir: Path) -> Iterator[Smoke]:
    """``harness ladder mnist --scale smoke`` once, in its own directory and store (8 rungs: the slow tier;
    the fast tier's end-to-end check is test_two_steps_of_two_rungs_land_in_mlflow_and_the_table)."""
    root = tmp_path_factory.mktemp("smoke")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("HARNESS_OFFLINE", "1")
        capture = root / "stdout.txt"
        start = time.perf_counter()
        with capture.open("w") as out, contextlib.redirect_stdout(out):
            rc = main(["ladder", "mnist", "--scale", "smoke", "--data-dir", str(tiny_data_dir)])
        seconds = time.perf_counter() - start
        client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
        exp = client.get_experiment_by_name("ladder/mnist")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        yield Smoke(root, rc, seconds, client, runs, capture.read_text())


def _children(smoke: Smoke) -> list:
    return [r for r in smoke.runs if "mlflow.parentRunId" in r.data.tags]


@pytest.mark.slow
def test_smoke_ladder_makes_one_parent_and_eight_children(smoke: Smoke) -> None:
    assert smoke.rc == 0, smoke.stdout
    parents = [r for r in smoke.runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(_children(smoke)) == N_RUNGS
    assert {r.info.status for r in smoke.runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in _children(smoke)} == {parents[0].info.run_id}
    assert (parents[0].data.tags["harness.task"], parents[0].data.tags["harness.metric"]) == (
        "classification",
        "test_accuracy",
    )
    assert sorted(int(r.data.tags["harness.rung_index"]) for r in _children(smoke)) == list(range(1, 9))
    assert (parents[0].data.tags["mlflow.source.name"], parents[0].data.tags["mlflow.source.type"]) == (
        "harness",
        "LOCAL",
    )
    exp = smoke.client.get_experiment(parents[0].info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI's model-training view
    # the parent compares against other invocations in the MLflow UI: the ladder's params, each rung's values
    p = parents[0].data
    assert (p.params["ladder"], p.params["scale"], p.params["seeds"], p.params["rungs"]) == (
        "mnist",
        "smoke",
        "1",
        "all",
    )
    rung8 = next(r for r in _children(smoke) if r.data.tags["harness.rung_index"] == "8").data.metrics
    assert p.metrics["08-cnn-batchnorm/best_test_accuracy"] == rung8["best_test_accuracy"]
    assert len([k for k in p.metrics if k.endswith("/final_test_accuracy")]) == N_RUNGS
    # one line per rung, with the task's report columns (10-class MNIST: no precision or recall)
    for rung, _ in load_ladder("mnist").configs("smoke"):
        line = rf"^  {rung.index:02d}-{rung.name}-s0 +final acc \d+\.\d\d%  best acc \d+\.\d\d%  +\d+\.\ds +\d+ ex/s$"
        assert re.search(line, smoke.stdout, re.M), (line, smoke.stdout)
    assert "precision" not in smoke.stdout
    # the terminal table fits 100 columns (the files have every column); smoke numbers are not judged
    lines = smoke.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if re.match(r"^\s*#\s+rung\b", line))
    table = lines[first : first + 1 + N_RUNGS]
    assert all(len(line) <= 100 for line in table) and "cnn-batchnorm" in table[-1], table
    assert "not comparable with the talk's references" in smoke.stdout and "(every column)" in smoke.stdout
    print(f"smoke ladder took {smoke.seconds:.1f}s")


@pytest.mark.slow
def test_child_runs_hold_params_metrics_and_tags(smoke: Smoke) -> None:
    configs = {rung.name: cfg for rung, cfg in load_ladder("mnist").configs("smoke")}
    for run in _children(smoke):
        cfg = configs[run.data.tags["harness.rung"]]
        assert set(run.data.params) == set(cfg.params())  # dotted: model.conv1, optim.lr0, run.iterations
        assert run.data.params == {k: str(v) for k, v in cfg.params().items()}
        assert run.data.params["run.iterations"] == "20" and run.data.params["data.name"] == "mnist"
        assert run.data.params["model.name"] == cfg.model.name
        # the UI's Dataset column: both splits, each with its context, source, schema and rows
        inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
        assert set(inputs) == {"mnist-train", "mnist-test"}
        for split, context, rows in (("train", "training", 600), ("test", "testing", 200)):  # the tiny MNIST
            data = inputs[f"mnist-{split}"]
            assert data.dataset.source == run.data.tags["data.source"]
            assert {t.key: t.value for t in data.tags} == {"mlflow.data.context": context}
            [features] = json.loads(json.loads(data.dataset.schema)["mlflow_tensorspec"]["features"])
            assert features["tensor-spec"] == {"dtype": "uint8", "shape": [-1, 28, 28, 1]}  # raw pixels
            assert json.loads(data.dataset.profile)["features_shape"] == [rows, 28, 28, 1]
        for metric in (
            "final_test_accuracy",
            "best_test_accuracy",
            "final_train_loss",
            "time_total_s",
            "time_train_s",
            "time_warmup_s",
            "time_train_steady_s",
            "time_eval_s",
            "examples_per_s",
            "cost_usd",
            "params_count",
        ):
            assert metric in run.data.metrics, metric
        assert run.data.metrics["time_warmup_s"] > 0 and run.data.metrics["examples_per_s"] > 0
        history = smoke.client.get_metric_history(run.info.run_id, "test_accuracy")
        assert [m.step for m in history] == [10, 20]  # every evaluation step
        for metric in ("train_loss", "train_accuracy", "test_loss", "lr"):
            assert len(smoke.client.get_metric_history(run.info.run_id, metric)) == 2
        tags = run.data.tags
        for tag in (
            "harness.version",
            "tensorflow.version",
            "keras.version",
            "optuna.version",
            "mlflow.version",
            "mlflow.source.git.commit",
            "host",
            "device",
            "backend",
            "harness.seed",
            "harness.scale",
            "data.checksum",
            "harness.task",
        ):
            assert tags.get(tag), tag
        assert tags["harness.task"] == "classification"
        assert tags["harness.scale"] == "smoke" and tags["backend"] == "cpu" and len(tags["data.checksum"]) == 64


@pytest.mark.slow
def test_child_runs_hold_artifacts_and_tensorboard_events(smoke: Smoke) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = _children(smoke)[0]
    top = {a.path for a in smoke.client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "model_summary.txt", "learning_curve.png", "metrics.jsonl", "tensorboard"} <= top
    local = Path(smoke.client.download_artifacts(run.info.run_id, "", str(smoke.root / "dl")))
    assert (local / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "Total params" in (local / "model_summary.txt").read_text()
    events = EventAccumulator(str(local / "tensorboard" / "test")).Reload()
    assert "accuracy" in events.Tags()["tensors"]
    # and the same curves in the TensorBoard log dir for `tensorboard --logdir tensorboard`
    assert list((smoke.root / "tensorboard" / "mnist").rglob("events.out.tfevents.*"))
    # one folder per invocation (start time, parent run), the rungs in order inside it
    (invocation,) = (smoke.root / "tensorboard" / "mnist").iterdir()
    parent = next(r for r in smoke.runs if "mlflow.parentRunId" not in r.data.tags)
    assert invocation.name.endswith(parent.info.run_id[:8]) and invocation.name[:8].isdigit()
    assert [p.name for p in sorted(invocation.iterdir())][:2] == ["01-softmax-s0", "02-dense5-sigmoid-s0"]


@pytest.mark.slow
def test_table_is_written_and_rebuilt_from_the_store(
    smoke: Smoke, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    md = smoke.root / "results" / "mnist_ladder_smoke.md"
    csv = smoke.root / "results" / "mnist_ladder_smoke.csv"
    first = pd.read_csv(csv)
    assert len(first) == N_RUNGS and first["reference"].tolist()[0] == 0.92
    assert "harness report ladder mnist --run" in md.read_text()
    monkeypatch.chdir(smoke.root)
    csv.unlink()
    assert main(["report", "ladder", "mnist", "--scale", "smoke", "--out", "again"]) == 0
    again = pd.read_csv(smoke.root / "again" / "mnist_ladder_smoke.csv")
    pd.testing.assert_frame_equal(first, again)
    assert "cnn-batchnorm" in capsys.readouterr().out
    # an --out that is a file: bad input, one line naming it and what was expected, exit 2, not a traceback
    (smoke.root / "taken").write_text("a file")
    assert main(["report", "ladder", "mnist", "--scale", "smoke", "--out", "taken"]) == 2
    assert capsys.readouterr().err == "error: --out taken is a file; expected a folder (created if missing)\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ladder", "mnits"], r"unknown ladder 'mnits' \(did you mean 'mnist'\?\); valid ladders: .*mnist"),
        (["ladder", "mnsit"], r"unknown ladder 'mnsit' \(did you mean 'mnist'\?\)"),
        (["ladder", "plansenet"], r"unknown ladder 'plansenet' \(did you mean 'planesnet'\?\)"),
        (
            ["ladder", "mnist", "--set", "lr_0=1"],
            r"command line \(rung 1 softmax\): unknown config key 'lr_0'; did you mean lr0",
        ),
        (["ladder", "mnist", "--set", "iterations=lots"], r"key 'iterations' expects an int, but got 'lots'"),
        (["ladder", "mnist", "--set", "lr0"], r"--set expects KEY=VALUE"),
        (["ladder", "mnist", "--seeds", "0"], r"--seeds must be >= 1"),
        (["ladder", "mnist", "--rungs", "12"], r"'12' is outside the rungs of mnist"),
        (["ladder", "nope/ladder.yaml"], r"ladder file nope/ladder.yaml: cannot read it"),
        (
            ["ladder", "mnist", "--scale", "smoke", "--data-dir", "empty"],
            r"train-images-idx3.*HARNESS_DATA_DIR",
        ),
        (["report", "ladder", "mnist"], r"no tracking store at .*mlflow.db"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_no_run(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (workdir / "empty").mkdir()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert re.search(message, err), err
    assert not (workdir / "mlflow.db").exists()  # refused before any store or run was made


@pytest.mark.slow
def test_nan_run_ends_failed_and_exits_1(
    workdir: Path, tiny_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*"ladder mnist --scale smoke --rungs 3 --data-dir".split(), str(tiny_data_dir)]
    argv += "--set optimizer=sgd --set lr0=1e10 --set loss_reduction=sum".split()
    assert main(argv) == 1
    assert "training loss is nan" in capsys.readouterr().err
    runs = store_runs(workdir, "ladder/mnist")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED"]
    child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
    assert "RunFailed: training loss is nan" in child.data.tags["error"]


def test_ladders_lists_every_shipped_ladder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ladders"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    shipped = [
        p.removesuffix(".yaml") for p in sorted(f.name for f in Path(harness.ladders.__file__).parent.glob("*.yaml"))
    ]
    assert names == shipped and {"mnist", "planesnet", "yolo", "census"} <= set(names)


@pytest.mark.timeout(120)  # the fast tier's one ladder end to end: it pays for the first TensorFlow import
def test_two_steps_of_two_rungs_land_in_mlflow_and_the_table(
    workdir: Path, tiny_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fast tier's end to end: config -> data + model -> train -> tracking -> report, two steps a rung."""
    argv = [*"ladder mnist --scale smoke --rungs 1,6 --data-dir".split(), str(tiny_data_dir)]
    argv += "--set iterations=2 --set eval_every=2 --set steps_per_execution=1".split()
    assert main(argv) == 0, capsys.readouterr()
    runs = store_runs(workdir, "ladder/mnist")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted((r for r in runs if "mlflow.parentRunId" in r.data.tags), key=lambda r: r.info.run_name)
    assert len(parents) == 1 and [r.data.tags["harness.rung"] for r in children] == ["softmax", "cnn"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    for run in children:
        assert run.data.params["run.iterations"] == "2" and 0 <= run.data.metrics["final_test_accuracy"] <= 1
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    table = pd.read_csv(workdir / "results" / "mnist_ladder_smoke_rungs_1_6.csv")
    assert table["rung_index"].tolist() == [1, 6]
    assert table["final_test_accuracy_mean"].tolist() == pytest.approx(
        [r.data.metrics["final_test_accuracy"] for r in children]
    )


@pytest.mark.slow
def test_vary_runs_every_rung_per_value_and_reports_per_variant(
    workdir: Path, tiny_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*"ladder mnist --scale smoke --rungs 1-2 --vary lr0=0.01,0.02 --data-dir".split(), str(tiny_data_dir)]
    assert main(argv) == 0
    # a partial run (--rungs) writes its own table: a full one in results/ is never replaced by two rows
    assert not (workdir / "results" / "mnist_ladder_smoke.csv").exists()
    table = pd.read_csv(workdir / "results" / "mnist_ladder_smoke_rungs_1-2.csv")
    assert sorted(zip(table["rung_index"], table["variant"], strict=True)) == [
        (1, "lr0=0.01"),
        (1, "lr0=0.02"),
        (2, "lr0=0.01"),
        (2, "lr0=0.02"),
    ]
    runs = store_runs(workdir, "ladder/mnist")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["optim.lr0"] for r in children) == ["0.01", "0.01", "0.02", "0.02"]
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    assert all("model.keras" in {a.path for a in client.list_artifacts(r.info.run_id)} for r in children)


def test_bad_vary_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ladder", "mnist", "--vary", "lr0"]) == 2
    assert "--vary expects KEY=V1,V2" in capsys.readouterr().err
    assert main(["ladder", "mnist", "--vary", "lr9=1,2"]) == 2
    assert "--vary (rung softmax): unknown config key 'lr9'" in capsys.readouterr().err


def test_version_and_help_on_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"harness \S+\n", capsys.readouterr().out)
    from harness.cli import build_parser

    def undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
        out = []
        for action in parser._actions:  # argparse has no public walk over a parser's options
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out += undocumented(sub, f"{path} {name}")
            elif action.help is None and action.dest not in ("help", "version"):
                out.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return out

    assert undocumented(build_parser(), "harness") == []


def test_the_study_parsers_choices_are_the_studies_own() -> None:
    """The parser repeats the sampler, pruner and scale names (building it imports no study module)."""
    from harness.cli import _parser
    from harness.ladders import SCALES
    from harness.studies._space import PRUNERS, SAMPLERS

    assert (SAMPLERS, PRUNERS, tuple(SCALES)) == (_parser.SAMPLER_NAMES, _parser.PRUNER_NAMES, _parser.SCALES)
