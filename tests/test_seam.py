"""The seam: a new kind of experiment arrives as new code only, with no edit to the package.

This module brings its own task (regression, primary metric R²), dataset (a noisy
linear map with a ``noise`` option) and model (one hidden layer of ``hidden`` units),
registered with the package's public decorators, and runs them through everything a
built-in experiment gets: a ladder through the real CLI, a study that optimises the
task's own objective, and a ladder report with the task's own columns.

The plug-ins are registered by a module fixture and removed after the module, so the
rest of the suite still sees only the built-in tasks, datasets and models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import math
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from harness.cli import main
from harness.config import Config, DataParams, ModelParams, TaskParams, check
from harness.data import ArrayDataset, register_dataset
from harness.models import register_model
from harness.tasks import Column, Direction, Task, register_task

TASK = "regression-demo"
DATASET = "linear-demo"
MODEL = "linear-demo"
LADDER = "seam-demo"  # the ladder's name (its MLflow experiment is ladder/seam-demo)
SPACE = "seam-demo"  # the search space's name (its study: seam-demo-random)
STUDY = f"{SPACE}-random"
N_TRAIN, N_TEST, N_FEATURES = 512, 128, 8
TRIALS = 3


# --------------------------------------------------------------------------------------------- the plug-ins


@dataclasses.dataclass(frozen=True)
class RegressionDemoParams(TaskParams):
    name: str = TASK


class RegressionDemo(Task):
    """Least squares on one real output; R² is the metric that matters."""

    name: ClassVar[str] = TASK
    params: ClassVar[type[TaskParams]] = RegressionDemoParams
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "r2")
    directions: ClassVar[Mapping[str, Direction]] = {"loss": "minimize", "r2": "maximize"}
    primary: ClassVar[str] = "r2"

    def outputs(self, data: ArrayDataset, cfg: Config) -> int:
        return 1

    def loss(self, cfg: Config) -> Any:
        import keras

        return keras.losses.MeanSquaredError()

    def metrics(self, cfg: Config, data: ArrayDataset) -> list[Any]:
        import keras

        return [keras.metrics.R2Score(name="r2")]

    def report_columns(self) -> tuple[Column, ...]:
        return (Column("final R²", "final_test_r2"), Column("best R²", "best_test_r2"))


@dataclasses.dataclass(frozen=True)
class LinearDemoData(DataParams):
    name: str = DATASET
    noise: float = 0.1  # stddev of the Gaussian noise added to y

    def check(self) -> None:
        super().check()
        check(self.noise, self.noise >= 0, "noise", ">= 0")


def linear_demo_arrays(noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic float32 x [N, 8] and y = x·w + noise, y as [N, 1]."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_TRAIN + N_TEST, N_FEATURES)).astype(np.float32)
    w = np.linspace(-1.0, 1.0, N_FEATURES, dtype=np.float32)
    y = (x @ w + noise * rng.normal(size=N_TRAIN + N_TEST)).astype(np.float32)[:, None]
    return x, y


def load_linear_demo(data_dir: Path | None, params: LinearDemoData) -> ArrayDataset:
    x, y = linear_demo_arrays(params.noise)
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    return ArrayDataset(
        name=DATASET,
        x_train=x[:N_TRAIN],
        y_train=y[:N_TRAIN],
        x_test=x[N_TRAIN:],
        y_test=y[N_TRAIN:],
        num_classes=0,
        checksum=digest,
        source=f"generated (noise={params.noise})",
    )


@dataclasses.dataclass(frozen=True)
class LinearDemoModel(ModelParams):
    name: str = MODEL
    hidden: int = 8  # units of the one hidden layer

    def check(self) -> None:
        check(self.hidden, self.hidden > 0, "hidden", "> 0")


def linear_demo_model(p: LinearDemoModel, input_shape: tuple[int, ...], outputs: int) -> Any:
    import keras

    inputs = keras.Input(shape=input_shape, name="x")
    x = keras.layers.Dense(p.hidden, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(outputs, name="y")(x), name="linear_demo")


def _unregister() -> None:
    """Remove the demo plug-ins again (the registries have no public way to do it)."""
    from harness.config import _catalog
    from harness.data import _base as data_base
    from harness.models import _registry
    from harness.tasks import _base as task_base

    task_base._TASKS.pop(TASK, None)
    data_base._LOADERS.pop(DATASET, None)
    _registry._FACTORIES.pop(MODEL, None)
    for kind, name in (("task", TASK), ("data", DATASET), ("model", MODEL)):
        _catalog._ENTRIES[kind].pop(name, None)


@pytest.fixture(scope="module", autouse=True)
def demo_plugins() -> Iterator[None]:
    """Register the task, dataset and model as any plug-in would: with the package's decorators."""
    register_task(RegressionDemo)
    register_dataset(DATASET, params=LinearDemoData, tasks=(TASK,))(load_linear_demo)
    register_model(MODEL, params=LinearDemoModel, tasks=(TASK,))(linear_demo_model)
    try:
        yield
    finally:
        _unregister()


# --------------------------------------------------------------------------------------------- files and CLI

LADDER_YAML = f"""\
name: {LADDER}
title: A regression ladder that the package has never heard of
base:
  task: {TASK}
  dataset: {DATASET}
  model: {MODEL}
  noise: 0.1
  hidden: 4
  batch_size: 32
  lr0: 0.02
  iterations: 200
  eval_every: 50
scales:
  smoke:
    iterations: 20
    eval_every: 10
    steps_per_execution: 10
    eval_batch_size: {N_TEST}
rungs:
  - name: narrow
    changes: a hidden layer of 4
  - name: wide
    changes: a hidden layer of 16, less noise
    set:
      hidden: 16
      noise: 0.02
"""


def space_yaml(ladder_file: Path) -> str:
    return textwrap.dedent(
        f"""\
        name: {SPACE}
        experiment: {{ladder: {ladder_file}, rung: wide, scale: smoke}}
        objective: {{metric: r2}}
        budget: {{max_trials: {TRIALS}}}
        sampler: random
        params:
          lr0: {{type: float, low: 0.005, high: 0.05, log: true}}
          hidden: {{type: int, low: 2, high: 16}}
        """
    )


def run_cli(*args: str) -> tuple[int, str]:
    """``harness ARGS`` in this process; (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One working directory with its own SQLite tracking store, the ladder file and the space file."""
    root = tmp_path_factory.mktemp("seam")
    ladder_file = root / "seam_ladder.yaml"
    ladder_file.write_text(LADDER_YAML, encoding="utf-8")
    space_file = root / "seam_space.yaml"
    space_file.write_text(space_yaml(ladder_file), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("HARNESS_DATA_DIR", raising=False)
        mp.setenv("HARNESS_OFFLINE", "1")
        yield SimpleNamespace(
            root=root,
            ladder_file=ladder_file,
            space_file=space_file,
            uri=f"sqlite:///{root / 'mlflow.db'}",
            client=MlflowClient(f"sqlite:///{root / 'mlflow.db'}"),
        )


@pytest.fixture(scope="module")
def ladder_run(store: SimpleNamespace) -> SimpleNamespace:
    """``harness ladder seam_ladder.yaml --scale smoke`` once."""
    rc, out = run_cli("ladder", str(store.ladder_file), "--scale", "smoke", "--no-report")
    exp = store.client.get_experiment_by_name(f"ladder/{LADDER}")
    runs = store.client.search_runs([exp.experiment_id]) if exp else []
    return SimpleNamespace(rc=rc, out=out, runs=runs)


@pytest.fixture(scope="module")
def study_run(store: SimpleNamespace) -> SimpleNamespace:
    """``harness study seam_space.yaml`` (3 trials, one worker in this process) once."""
    rc, out = run_cli("study", str(store.space_file), "--no-report")
    exp = store.client.get_experiment_by_name(f"study/{SPACE}")
    runs = store.client.search_runs([exp.experiment_id]) if exp else []
    return SimpleNamespace(rc=rc, out=out, runs=runs)


def _artifacts(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


# --------------------------------------------------------------------------------------------- the tests


@pytest.mark.slow
def test_ladder_of_a_new_task_runs_through_the_cli(store: SimpleNamespace, ladder_run: SimpleNamespace) -> None:
    assert ladder_run.rc == 0, ladder_run.out
    parents = [r for r in ladder_run.runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in ladder_run.runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2, [r.info.run_name for r in ladder_run.runs]
    assert {r.info.status for r in ladder_run.runs} == {"FINISHED"}
    assert parents[0].data.tags["harness.task"] == TASK
    assert parents[0].data.tags["harness.metric"] == "test_r2"
    by_rung = {r.data.tags["harness.rung"]: r for r in children}
    assert set(by_rung) == {"narrow", "wide"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}

    expected = {"narrow": ("4", "0.1"), "wide": ("16", "0.02")}
    for rung, run in by_rung.items():
        params = run.data.params
        assert params["task.name"] == TASK and params["data.name"] == DATASET and params["model.name"] == MODEL
        assert (params["model.hidden"], params["data.noise"]) == expected[rung]
        assert params["run.iterations"] == "20"
        assert not any(k.endswith((".conv1", ".layers", ".split")) for k in params), sorted(params)
        assert run.data.tags["harness.task"] == TASK

        for metric in ("test_r2", "test_loss", "train_r2", "train_loss"):
            steps = [m.step for m in store.client.get_metric_history(run.info.run_id, metric)]
            assert steps == [10, 20], (rung, metric, steps)
        metrics = run.data.metrics
        for key in ("best_test_r2", "final_test_r2", "final_test_loss", "best_step", "steps", "time_total_s"):
            assert key in metrics, (rung, key, sorted(metrics))
        assert not any("accuracy" in k for k in metrics), sorted(metrics)
        assert math.isfinite(metrics["best_test_r2"]) and metrics["best_test_r2"] <= 1.0
        assert metrics["best_test_r2"] >= metrics["final_test_r2"] - 1e-9

        assert {"model.keras", "config.yaml", "metrics.jsonl", "learning_curve.png"} <= _artifacts(
            store.client, run.info.run_id
        )
        assert store.client.get_run(run.info.run_id).outputs.model_outputs, "no LoggedModel output"


@pytest.mark.slow
def test_ladder_model_computes_the_logged_r2(
    store: SimpleNamespace, ladder_run: SimpleNamespace, tmp_path: Path
) -> None:
    """``r2`` is really R² of the logged model on the test split (the metric came from the task)."""
    import keras

    assert ladder_run.rc == 0, ladder_run.out
    run = next(r for r in ladder_run.runs if r.data.tags.get("harness.rung") == "wide")
    path = store.client.download_artifacts(run.info.run_id, "model.keras", str(tmp_path))
    model = keras.models.load_model(path)
    x, y = linear_demo_arrays(0.02)
    pred = model.predict(x[N_TRAIN:], verbose=0)
    assert pred.shape == (N_TEST, 1)
    truth = y[N_TRAIN:]
    r2 = 1.0 - float(np.sum((truth - pred) ** 2)) / float(np.sum((truth - truth.mean()) ** 2))
    assert r2 == pytest.approx(run.data.metrics["final_test_r2"], abs=1e-3)


@pytest.mark.slow
def test_study_optimises_the_new_tasks_objective(store: SimpleNamespace, study_run: SimpleNamespace) -> None:
    import optuna

    from harness.studies import open_storage

    assert study_run.rc == 0, study_run.out
    study = optuna.load_study(study_name=STUDY, storage=open_storage(f"journal:{store.root / 'optuna.journal'}"))
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.metric_names == ["final_test_r2"]  # optuna-dashboard names the objective
    trials = study.trials
    assert len(trials) == TRIALS and {t.state.name for t in trials} == {"COMPLETE"}
    assert all(t.value is not None and math.isfinite(t.value) and t.value <= 1.0 for t in trials)
    assert all(set(t.params) == {"lr0", "hidden"} for t in trials)

    parents = [r for r in study_run.runs if r.data.tags.get("harness.kind") == "study"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["harness.task"] == TASK
    assert parent.data.tags["harness.direction"] == "maximize"
    assert parent.data.tags["harness.objective"] == "final_test_r2"
    assert parent.data.tags["harness.param_keys"] == "optim.lr0,model.hidden"
    children = [r for r in study_run.runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == TRIALS and {r.info.status for r in children} == {"FINISHED"}
    by_number = {t.number: t for t in trials}
    for run in children:
        trial = by_number[int(run.data.tags["optuna.trial_number"])]
        assert run.data.params["model.hidden"] == str(trial.params["hidden"])
        assert run.data.params["data.name"] == DATASET and run.data.params["task.name"] == TASK
        assert run.data.metrics["final_test_r2"] == pytest.approx(trial.value)
        assert "model.keras" in _artifacts(store.client, run.info.run_id)
    assert parent.data.metrics["best_objective"] == pytest.approx(study.best_value)
    assert study.best_value == max(t.value for t in trials)  # maximised, not minimised


@pytest.mark.slow
def test_ladder_report_has_the_tasks_columns(store: SimpleNamespace, ladder_run: SimpleNamespace) -> None:
    from harness.report import display_table, ladder_report
    from harness.tracking import Tracker

    assert ladder_run.rc == 0, ladder_run.out
    report = ladder_report(Tracker(store.uri), LADDER)
    shown = display_table(report)
    columns = [str(c) for c in shown.columns]
    assert "final R²" in columns and "best R²" in columns, columns
    assert not any("acc" in c.lower() for c in columns), columns
    assert list(shown["rung"]) == ["narrow", "wide"]
    final = dict(zip(shown["rung"], shown["final R²"], strict=True))
    assert all(v not in ("", "n/a", "nan") for v in final.values()), final

    rc, out = run_cli("report", "ladder", LADDER, "--out", "report")
    assert rc == 0, out
    assert "R²" in out and "acc" not in out.lower(), out
    written = sorted((store.root / "report").glob("*.md"))
    assert written and "R²" in written[0].read_text(encoding="utf-8")


@pytest.mark.slow
def test_study_report_of_the_new_task(store: SimpleNamespace, study_run: SimpleNamespace) -> None:
    assert study_run.rc == 0, study_run.out
    rc, out = run_cli("report", "study", STUDY, "--out", "study-report")
    assert rc == 0, out
    assert out.count("COMPLETE") == TRIALS, out
    written = (store.root / "study-report" / f"study_{STUDY}.md").read_text(encoding="utf-8")
    assert "final_test_r2 (maximize)" in written, written
    assert "Best: trial" in written and "final_test_r2 =" in written, written


def test_a_key_the_demo_model_does_not_use_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--set conv1=8`` on the demo ladder: exit 2, naming conv1, before anything is created."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    ladder_file = tmp_path / "seam_ladder.yaml"
    ladder_file.write_text(LADDER_YAML, encoding="utf-8")
    rc, out = run_cli("ladder", str(ladder_file), "--scale", "smoke", "--set", "conv1=8")
    assert rc == 2, out
    assert "conv1" in out and MODEL in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == [ladder_file.name]  # no store, no runs
