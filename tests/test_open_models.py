"""Models any client can open: a run's ``model.keras`` and MLflow model load without harness.

The slow tests train one smoke rung on the tiny generated MNIST, then open its model in
fresh Python processes that never import harness: once with stock
``keras.models.load_model`` on the downloaded ``model.keras``, once with
``mlflow.pyfunc.load_model("runs:/<run id>/model")``. The fast tests check that a key
the chosen model does not use is refused (exit 2) before anything is created.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from harness.cli import main

RUNG = "cnn-batchnorm"


def run_cli(*args: str) -> tuple[int, str]:
    """``harness ARGS`` in this process; (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue() + err.getvalue()


def run_fresh_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a new interpreter (this one's, so the same packages), away from the repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "MLFLOW_DISABLE_TELEMETRY": "true", "CUDA_VISIBLE_DEVICES": ""})
    preamble = "import sys\nassert 'harness' not in sys.modules\n"
    epilogue = "\nassert 'harness' not in sys.modules, sorted(m for m in sys.modules if m.startswith('harness'))\n"
    return subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(code) + epilogue],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_data_dir: Path) -> Iterator[SimpleNamespace]:
    """``harness ladder mnist --rungs cnn-batchnorm --scale smoke`` on the tiny MNIST, in a temp store."""
    root = tmp_path_factory.mktemp("open_models")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("HARNESS_DATA_DIR", raising=False)
        mp.setenv("HARNESS_OFFLINE", "1")
        rc, out = run_cli(
            "ladder", "mnist", "--rungs", RUNG, "--scale", "smoke", "--data-dir", str(tiny_data_dir), "--no-report"
        )
        uri = f"sqlite:///{root / 'mlflow.db'}"
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("ladder/mnist")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        rung_runs = [r for r in runs if r.data.tags.get("harness.rung") == RUNG]
        yield SimpleNamespace(root=root, rc=rc, out=out, uri=uri, client=client, runs=runs, rung_runs=rung_runs)


def _run_id(trained: SimpleNamespace) -> str:
    assert trained.rc == 0, trained.out
    assert len(trained.rung_runs) == 1 and trained.rung_runs[0].info.status == "FINISHED", trained.out
    return str(trained.rung_runs[0].info.run_id)


@pytest.mark.slow
def test_run_has_a_logged_model_output(trained: SimpleNamespace) -> None:
    run_id = _run_id(trained)
    run = trained.client.get_run(run_id)
    outputs = run.outputs.model_outputs if run.outputs else []
    assert outputs, "the run has no LoggedModel output"
    logged = trained.client.get_logged_model(outputs[0].model_id)
    assert logged.name == "model" and logged.source_run_id == run_id
    assert logged.status == LoggedModelStatus.READY
    assert "model.keras" in {a.path for a in trained.client.list_artifacts(run_id)}


@pytest.mark.slow
def test_model_keras_opens_with_stock_keras_without_harness(trained: SimpleNamespace, tmp_path: Path) -> None:
    run_id = _run_id(trained)
    code = f"""
        import numpy as np
        from mlflow.tracking import MlflowClient
        import keras

        path = MlflowClient({trained.uri!r}).download_artifacts({run_id!r}, "model.keras", {str(tmp_path)!r})
        model = keras.models.load_model(path)
        out = np.asarray(model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0))
        assert out.shape == (3, 10), out.shape
        assert np.isfinite(out).all()
        print("keras ok", out.shape)
    """
    done = run_fresh_python(code, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "keras ok (3, 10)" in done.stdout


@pytest.mark.slow
def test_mlflow_model_opens_with_pyfunc_without_harness(trained: SimpleNamespace, tmp_path: Path) -> None:
    run_id = _run_id(trained)
    code = f"""
        import numpy as np
        import mlflow
        import mlflow.pyfunc

        mlflow.set_tracking_uri({trained.uri!r})
        model = mlflow.pyfunc.load_model("runs:/{run_id}/model")
        out = np.asarray(model.predict(np.zeros((2, 28, 28, 1), np.float32)))
        assert out.shape == (2, 10), out.shape
        assert np.isfinite(out).all()
        print("pyfunc ok", out.shape)
    """
    done = run_fresh_python(code, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pyfunc ok (2, 10)" in done.stdout


# --------------------------------------------------------------------------------------------- fast: refused keys


def test_ladder_refuses_a_key_of_another_model(workdir: Path) -> None:
    """``conv1`` on the softmax rung (an mlp): exit 2 naming conv1 and mlp, before data or store."""
    rc, out = run_cli("ladder", "mnist", "--rungs", "softmax", "--set", "conv1=8")
    assert rc == 2, out
    assert "conv1" in out and "mlp" in out, out
    assert list(workdir.iterdir()) == [], sorted(p.name for p in workdir.iterdir())  # no mlflow.db, no runs


def test_study_refuses_tuning_a_key_of_another_model(workdir: Path) -> None:
    """A native space tuning ``conv1`` on mnist:softmax: exit 2 naming conv1 as unused by model mlp."""
    space = workdir / "conv1_space.yaml"
    space.write_text(
        textwrap.dedent(
            """\
            name: conv1-on-mlp
            objective: {metric: accuracy}
            budget: {max_trials: 2}
            sampler: random
            params:
              conv1: {type: int, low: 4, high: 8}
            """
        ),
        encoding="utf-8",
    )
    rc, out = run_cli("study", str(space), "--experiment", "mnist:softmax", "--scale", "smoke")
    assert rc == 2, out
    assert "conv1" in out and "not used by model 'mlp'" in out, out
    assert sorted(p.name for p in workdir.iterdir()) == [space.name]  # no store, no journal, no runs
