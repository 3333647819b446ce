"""Models any client can open: a run's ``model.keras`` and MLflow model load without harness.

The slow tests train one smoke rung on the tiny generated MNIST (and one of PlanesNet and of
the YOLO ladder), then open the models in one fresh Python process where harness cannot be
imported: with stock ``keras.models.load_model`` on the downloaded ``model.keras`` and on
the MLflow model's own Keras file, fed raw ``uint8`` pixels as the signature says, and with
``mlflow.pyfunc.load_model("runs:/<run id>/<model name>")``. The fast tests check that a key
the chosen model does not use is refused (exit 2) before anything is created.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from harness.cli import main
from harness.data import load_dataset
from harness.ladders import load_ladder

RUNG = "cnn-batchnorm"
MODEL_NAME = "mnist-08-cnn-batchnorm-s0"  # the LoggedModel's name: ladder, rung index and name, seed
# the fresh interpreter cannot import harness, installed or not: what a user without it has
NO_HARNESS = """\
import importlib.abc, sys
class _NoHarness(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "harness" or name.startswith("harness."):
            raise ImportError("harness is not importable in this process")
sys.meta_path.insert(0, _NoHarness())
assert 'harness' not in sys.modules
"""


def run_cli(*args: str) -> tuple[int, str]:
    """``harness ARGS`` in this process; (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue() + err.getvalue()


def run_fresh_python(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a new interpreter (this one's, so the same packages), away from the repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "MLFLOW_DISABLE_TELEMETRY": "true", "CUDA_VISIBLE_DEVICES": ""})
    preamble = NO_HARNESS
    epilogue = "\nassert 'harness' not in sys.modules, sorted(m for m in sys.modules if m.startswith('harness'))\n"
    return subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(code) + epilogue, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _train_rung(root: Path, ladder: str, rung: str, data_dir: Path | None) -> SimpleNamespace:
    """``harness ladder LADDER --rungs RUNG --scale smoke`` in ``root`` (its own store)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("HARNESS_DATA_DIR", raising=False)
        mp.setenv("HARNESS_OFFLINE", "1")
        data = ["--data-dir", str(data_dir)] if data_dir is not None else []
        rc, out = run_cli("ladder", ladder, "--rungs", rung, "--scale", "smoke", *data, "--no-report")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name(f"ladder/{ladder}")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        rung_runs = [r for r in runs if r.data.tags.get("harness.rung") == rung]
        return SimpleNamespace(
            root=root, rc=rc, out=out, uri=uri, client=client, runs=runs, rung_runs=rung_runs, ladder=ladder, rung=rung
        )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_data_dir: Path) -> SimpleNamespace:
    """``harness ladder mnist --rungs cnn-batchnorm --scale smoke`` on the tiny MNIST, in a temp store."""
    return _train_rung(tmp_path_factory.mktemp("open_models"), "mnist", RUNG, tiny_data_dir)


@pytest.fixture(scope="module")
def planesnet_trained(tmp_path_factory: pytest.TempPathFactory, tiny_planesnet_dir: Path) -> SimpleNamespace:
    return _train_rung(tmp_path_factory.mktemp("open_planesnet"), "planesnet", "cnn", tiny_planesnet_dir)


@pytest.fixture(scope="module")
def yolo_trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The first YOLO rung at smoke scale: synthetic aerial scenes, nothing read."""
    return _train_rung(tmp_path_factory.mktemp("open_yolo"), "yolo", "grid4x4x1", None)


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
    assert logged.name == MODEL_NAME and logged.source_run_id == run_id
    assert logged.status == LoggedModelStatus.READY
    assert "model.keras" in {a.path for a in trained.client.list_artifacts(run_id)}
    run = trained.client.get_run(run_id)
    assert run.data.tags["harness.model_uri"] == f"models:/{logged.model_id}"
    # the Models view compares models: the run's config as params, its final metrics as metrics
    assert logged.params == run.data.params and logged.params["model.name"] == "cnn"
    metrics = {m.key: m.value for m in logged.metrics}
    assert metrics["final_test_accuracy"] == run.data.metrics["final_test_accuracy"]
    assert {"final_test_loss", "best_test_accuracy", "steps", "time_total_s"} <= set(metrics)


# Every check that needs a fresh interpreter without harness runs in ONE such interpreter (its imports of
# TensorFlow, Keras and MLflow cost seconds): each check's answer, or its traceback, under its name.
FRESH_CHECKS = """
import json, os, sys, traceback
import numpy as np
import keras
import mlflow
import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient


def keras_opens(c):  # the run's model.keras, downloaded, opens with stock Keras
    path = MlflowClient(c["uri"]).download_artifacts(c["run_id"], "model.keras", c["dir"])
    model = keras.models.load_model(path)
    out = np.asarray(model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0))
    assert np.isfinite(out).all()
    return {"shape": list(out.shape)}


def pyfunc_opens(c):  # the MLflow model by its run and name, fed raw pixels
    mlflow.set_tracking_uri(c["uri"])
    model = mlflow.pyfunc.load_model(f"runs:/{c['run_id']}/{c['model_name']}")
    out = np.asarray(model.predict(np.zeros((2, 28, 28, 1), np.uint8)))
    return {"shape": list(out.shape), "row_sums": out.sum(axis=1).tolist()}


def raw_pixels(c):  # what the MLflow model's signature says it takes, and stock Keras on exactly that
    mlflow.set_tracking_uri(c["uri"])
    path = mlflow.artifacts.download_artifacts(c["model_uri"], dst_path=c["dir"])
    meta = Model.load(path)
    [spec] = meta.get_input_schema().inputs  # what it takes: shape and dtype ...
    takes = meta.metadata["input"]  # ... and range
    x = np.load(c["raw"])
    assert spec.type == x.dtype == np.dtype(takes["dtype"]) == np.uint8 and takes["range"] == [0, 255], takes
    assert list(spec.shape) == [-1, *x.shape[1:]] == takes["shape"], (spec.shape, x.shape)
    served = keras.models.load_model(os.path.join(path, "data", "model.keras"))  # stock Keras
    out = np.asarray(served.predict(x, verbose=0))
    pyfunc = mlflow.pyfunc.load_model(c["model_uri"])
    assert np.allclose(np.asarray(pyfunc.predict(x)), out, atol=1e-6)
    try:
        pyfunc.predict(x.astype(np.float32) / 255)
        refused = ""
    except MlflowException as e:
        refused = e.message
    return {"out": out.tolist(), "output": meta.metadata["output"], "refused": refused}


CHECKS = {"keras_opens": keras_opens, "pyfunc_opens": pyfunc_opens, "raw_pixels": raw_pixels}
answers = {}
with open(sys.argv[1], encoding="utf-8") as f:
    for c in json.load(f):
        try:
            answers[c["name"]] = {"error": None, **CHECKS[c["kind"]](c)}
        except Exception:
            answers[c["name"]] = {"error": traceback.format_exc()}
print(json.dumps(answers))
"""
IMAGE_MODELS = ("trained", "planesnet_trained", "yolo_trained")


@pytest.fixture(scope="module")
def fresh(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_data_dir: Path,
    tiny_planesnet_dir: Path,
) -> dict[str, dict[str, Any]]:
    """Each check's answer from one fresh interpreter where harness cannot be imported."""
    root = tmp_path_factory.mktemp("fresh")
    checks: list[dict[str, Any]] = []
    for which in IMAGE_MODELS:
        trained = request.getfixturevalue(which)
        if trained.rc != 0 or len(trained.rung_runs) != 1:
            continue  # the model's own tests fail on its training output (_run_id)
        run = trained.rung_runs[0]
        run_id = str(run.info.run_id)
        if which == "trained":
            base = {"uri": trained.uri, "run_id": run_id}
            checks.append({**base, "name": "keras_opens", "kind": "keras_opens", "dir": str(root / "keras")})
            checks.append({**base, "name": "pyfunc_opens", "kind": "pyfunc_opens", "model_name": MODEL_NAME})
        data_dir = {"trained": tiny_data_dir, "planesnet_trained": tiny_planesnet_dir}.get(which)
        x, _, _ = _raw_test_images(trained, data_dir)
        raw = root / f"{which}.npy"
        np.save(raw, x)
        model_uri = run.data.tags["harness.model_uri"]
        where = {"uri": trained.uri, "model_uri": model_uri, "raw": str(raw), "dir": str(root / which)}
        checks.append({"name": which, "kind": "raw_pixels", **where})
    spec = root / "checks.json"
    spec.write_text(json.dumps(checks), encoding="utf-8")
    done = run_fresh_python(FRESH_CHECKS, root, str(spec))
    assert done.returncode == 0, done.stdout + done.stderr
    answers: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return answers


def _answer(fresh: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    answer = fresh[name]
    assert answer["error"] is None, answer["error"]
    return answer


@pytest.mark.slow
def test_model_keras_opens_with_stock_keras_without_harness(trained: SimpleNamespace, fresh: dict) -> None:
    _run_id(trained)
    assert _answer(fresh, "keras_opens")["shape"] == [3, 10]


@pytest.mark.slow
def test_mlflow_model_opens_with_pyfunc_without_harness(trained: SimpleNamespace, fresh: dict) -> None:
    _run_id(trained)
    answer = _answer(fresh, "pyfunc_opens")
    assert answer["shape"] == [2, 10]
    np.testing.assert_allclose(answer["row_sums"], 1.0, atol=1e-5)  # class probabilities


def _raw_test_images(trained: SimpleNamespace, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray, Any]:
    """The rung's test images as its dataset stores them (uint8), the smoke config's subset, and that config
    (a detection rung: its first 4 256x256 tiles, which say enough)."""
    cfg = next(c for r, c in load_ladder(trained.ladder).configs("smoke") if r.name == trained.rung)
    data = load_dataset(cfg.data, data_dir).subset(cfg.data.train_subset, cfg.data.test_subset)
    if cfg.task.name == "detection":
        return data.x_test[:4], data.y_test[:4], cfg
    return data.x_test, data.y_test, cfg


@pytest.mark.slow
@pytest.mark.parametrize("which", IMAGE_MODELS)
def test_mlflow_model_takes_raw_pixels_as_its_signature_says_in_stock_keras(
    which: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tiny_data_dir: Path,
    tiny_planesnet_dir: Path,
    fresh: dict[str, dict[str, Any]],
) -> None:
    """Each image task's MLflow model, opened without harness: its signature and metadata say uint8
    pixels 0-255 of the dataset's shape; fed raw test images so, stock Keras answers what the trained
    network answers on pixels / 255 (a classifier: its softmax, with the run's own test accuracy);
    0-1 floats are refused, not answered."""
    import keras

    trained = request.getfixturevalue(which)
    run_id = _run_id(trained)
    run = trained.client.get_run(run_id)
    data_dir = {"trained": tiny_data_dir, "planesnet_trained": tiny_planesnet_dir}.get(which)
    x, y, cfg = _raw_test_images(trained, data_dir)
    assert x.dtype == np.uint8
    answer = _answer(fresh, which)
    out = np.asarray(answer["out"], np.float32)
    assert "uint8" in answer["refused"], answer["refused"]  # 0-1 floats: an error naming the dtype it takes
    # the trained network (model.keras) on what training fed it: pixels / 255
    path = trained.client.download_artifacts(run_id, "model.keras", str(tmp_path))
    trained_net = keras.models.load_model(path, compile=False)
    raw_out = np.asarray(trained_net.predict(x.astype(np.float32) / 255.0, verbose=0))
    assert list(out.shape[1:]) == answer["output"]["shape"][1:]
    if cfg.task.name == "classification":
        assert "class probabilities" in answer["output"]["meaning"]
        np.testing.assert_allclose(out, np.asarray(keras.ops.softmax(raw_out, axis=-1)), atol=1e-5)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
        accuracy = float(np.mean(out.argmax(axis=1) == y))
        assert accuracy == pytest.approx(run.data.metrics["final_test_accuracy"], abs=1.0 / len(y) + 1e-6)
        assert accuracy > 1.0 / out.shape[1], accuracy  # a trained smoke model: above chance
    else:  # the YOLO head, as trained: boxes and logits per cell
        assert "YOLO head" in answer["output"]["meaning"]
        np.testing.assert_allclose(out, raw_out, atol=1e-4)
        assert np.isfinite(out).all()


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
