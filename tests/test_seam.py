"""The seam: a new kind of experiment arrives as new code only, with no edit to the package.

This module brings its own task (regression, primary metric R²), dataset (a noisy
linear map with a ``noise`` option) and model (one hidden layer of ``hidden`` units),
registered with the package's public decorators, and runs them through everything a
built-in experiment gets: a ladder through the real CLI, a study that optimises the
task's own objective, and a ladder report with the task's own columns.

The plug-ins are the package in ``tests/plugin_demo`` (``tests/test_plugins.py`` installs
it and finds it through its entry point); here a module fixture registers them inside
``harness.registry.scoped()``, so the rest of the suite still sees only the built-in
tasks, datasets and models.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from harness import registry
from harness.cli import main

PLUGIN_SOURCE = Path(__file__).with_name("plugin_demo")
# the plug-in's source, imported without installing it (test_plugins installs it)
sys.path.insert(0, str(PLUGIN_SOURCE))
import harness_plugin_demo as demo  # noqa: E402
from harness_plugin_demo import (  # noqa: E402
    DATASET,
    LADDER,
    MODEL,
    N_TEST,
    N_TRAIN,
    SPACE,
    STUDY,
    TASK,
    TRIALS,
    linear_demo_arrays,
)

LADDER_YAML = demo.LADDER_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module", autouse=True)
def demo_plugins() -> Iterator[None]:
    """Register the task, dataset and model as the installed plug-in would, and only for this module."""
    with registry.scoped():
        demo.register()
        yield


def space_yaml(ladder_file: Path) -> str:
    return demo.space_yaml(ladder_file)


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
