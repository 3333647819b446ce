"""run.framework: the same runs on Keras' TensorFlow or JAX backend, one ladder mixing them in one invocation.

Keras fixes its backend when it is first imported: a run whose framework is not the process's trains in a
child process (the executor's worker), which the mixed ladder below goes through whatever this pytest
worker imported before; a command whose runs all use one framework starts on it (a fresh process below).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli, store_runs
from mlflow import MlflowClient

import harness.data
import harness.models
import harness.tasks  # noqa: F401  (register the config sections of every task, dataset and model)
from harness import _framework
from harness.config import Config, config_from
from harness.errors import ConfigError

needs_jax = pytest.mark.skipif(not _framework.installed("jax"), reason="jax is not installed (the dev extra has it)")


def _run_section(**run: object) -> Config:
    return config_from(dict(run))


def test_an_unknown_framework_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"framework.*tensorflow.*jax.*torch.*mxnet"):
        _run_section(framework="mxnet").check()


@needs_jax
def test_a_framework_other_than_tensorflow_is_refused_a_tf_distribute_backend() -> None:
    with pytest.raises(ConfigError, match=r"framework=jax trains on backend cpu .*backend=cpu:2.*framework=tensorflow"):
        _run_section(framework="jax", backend="cpu:2").check()
    _run_section(framework="jax", backend="cpu").check()  # and cpu is fine


@needs_jax
def test_a_model_that_trains_on_tensorflow_only_is_refused_on_jax_by_name() -> None:
    census = {"task": "tabular", "dataset": "adult", "model": "dnn", "backend": "cpu"}
    with pytest.raises(ConfigError, match=r"model 'dnn' does not train on framework=jax yet.*set framework=tensorflow"):
        config_from({**census, "framework": "jax"})
    config_from({**census, "framework": "tensorflow"})


@pytest.mark.skipif(_framework.installed("torch"), reason="torch is installed here")
def test_a_framework_that_is_not_installed_names_what_to_install() -> None:
    with pytest.raises(ConfigError, match=r"framework=torch needs the torch package.*pip install 'torch'"):
        _run_section(framework="torch", backend="cpu").check()


@needs_jax
@pytest.mark.slow
@pytest.mark.parametrize(("wanted", "started"), [({"jax"}, "jax"), ({"jax", "tensorflow"}, "tensorflow")])
def test_a_command_starts_keras_on_the_one_framework_of_its_runs(wanted: set[str], started: str) -> None:
    code = (
        f"from harness import _framework; _framework.start(frameworks={sorted(wanted)!r}); "
        "import keras; print(keras.backend.backend())"
    )
    env = {k: v for k, v in os.environ.items() if k != _framework.ENV}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == started


@needs_jax
@pytest.mark.slow
def test_one_ladder_trains_its_runs_on_two_frameworks_in_one_invocation(workdir: Path, tiny_data_dir: Path) -> None:
    rc, out = run_cli(
        "ladder", "mnist", "--scale", "smoke", "--rungs", "softmax",
        "--vary", "framework=tensorflow,jax", "--set", "iterations=20", "--set", "eval_every=10",
        "--data-dir", str(tiny_data_dir),
    )  # fmt: skip
    assert rc == 0, out
    runs = {r.info.run_name: r for r in store_runs(workdir, "ladder/mnist") if "mlflow.parentRunId" in r.data.tags}
    assert sorted(runs) == ["01-softmax-framework=jax-s0", "01-softmax-framework=tensorflow-s0"]
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    for name, run in runs.items():
        framework = name.split("framework=")[1].split("-")[0]
        assert run.info.status == "FINISHED", name
        assert run.data.tags["harness.framework"] == framework  # train() refuses a run on another backend
        assert run.data.params["run.framework"] == framework
        assert 0.0 < run.data.metrics["final_test_accuracy"] <= 1.0
        assert run.data.metrics["steps"] == 20
    child = client.list_artifacts(runs["01-softmax-framework=jax-s0"].info.run_id, "workers")
    assert [a.path for a in child] == ["workers/worker-0.log"]  # the jax run trained in a child process
    assert "framework=jax" in out and "framework=tensorflow" in out  # both rows of the table


@needs_jax
@pytest.mark.slow
def test_a_smoke_ladder_runs_on_jax_in_a_process_started_on_jax(tmp_path: Path, tiny_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (_framework.ENV, "MLFLOW_TRACKING_URI")}
    argv = [sys.executable, "-m", "harness", "ladder", "mnist", "--scale", "smoke", "--rungs", "softmax,cnn"]
    argv += ["--set", "framework=jax", "--data-dir", str(tiny_data_dir), "--no-report"]
    proc = subprocess.run(
        argv, cwd=tmp_path, env={**env, "HARNESS_OFFLINE": "1"}, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = [r for r in store_runs(tmp_path, "ladder/mnist") if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["harness.framework"] == "jax"
        # trained in the ladder's own process: a child's log would be among the run's artifacts
        assert not client.list_artifacts(run.info.run_id, "workers")
        assert 0.0 < run.data.metrics["final_test_accuracy"] <= 1.0
