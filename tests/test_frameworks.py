"""run.framework: the same runs on Keras' TensorFlow or JAX backend, one ladder mixing them in one invocation.

Keras fixes its backend when it is first imported: a run whose framework is not the process's trains in a
child process (the executor's worker), which the mixed ladder below goes through whatever this pytest
worker imported before; a command whose runs all use one framework starts on it (a fresh process below).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli, store_runs
from mlflow import MlflowClient

import harness.data
import harness.models
import harness.tasks  # noqa: F401  (register the config sections of every task, dataset and model)
from harness import _framework
from harness.config import Config, config_from
from harness.errors import ConfigError
from harness.ladders import load_ladder

needs_jax = pytest.mark.skipif(not _framework.installed("jax"), reason="jax is not installed (the dev extra has it)")


def _run_section(**run: object) -> Config:
    return config_from(dict(run))


def test_an_unknown_framework_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"framework.*tensorflow.*jax.*torch.*mxnet"):
        _run_section(framework="mxnet").check()


@needs_jax
def test_a_framework_other_than_tensorflow_is_refused_a_tf_distribute_backend() -> None:
    also = r", or cpu:N and gpu:N \(keras.distribution's DataParallel\)"
    with pytest.raises(ConfigError, match=f"trains on backend cpu or gpu \\(or auto\\){also}; backend=multi-gpu is"):
        _run_section(framework="jax", backend="multi-gpu").check()
    with pytest.raises(
        ConfigError, match=r"trains on backend cpu or gpu \(or auto\); backend=cpu:2 is a tf.distribute"
    ):
        _run_section(framework="torch", backend="cpu:2").check()  # PyTorch: one device
    _run_section(framework="jax", backend="cpu").check()  # and cpu is fine
    _run_section(framework="jax", backend="cpu:2", batch_size=64, eval_batch_size=500).check()  # data parallel
    with pytest.raises(ConfigError, match=r"splits every batch over 4 devices: batch_size must be a multiple of 4, bu"):
        _run_section(framework="jax", backend="cpu:4", batch_size=50).check()


SHARDED = """
from harness.hardware import make_strategy
import keras
strategy, hardware = make_strategy("cpu:2", "jax")
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
print(type(strategy).__name__, len(model.weights[0].value.sharding.device_set), hardware.description)
"""


@needs_jax
@pytest.mark.slow
def test_jax_cpu_n_is_data_parallel_over_n_xla_devices_in_a_child_process(workdir: Path, tiny_data_dir: Path) -> None:
    """``cpu:2`` on JAX: keras.distribution's DataParallel over two XLA host devices, which JAX takes only when it
    starts; so the run trains in a child process started with them (this process runs TensorFlow anyway)."""
    rc, out = run_cli(
        "ladder", "mnist", "--scale", "smoke", "--rungs", "softmax", "--set", "framework=jax",
        "--set", "backend=cpu:2", "--data-dir", str(tiny_data_dir), "--no-report",
    )  # fmt: skip
    assert rc == 0, out
    (run,) = [r for r in store_runs(workdir, "ladder/mnist") if "mlflow.parentRunId" in r.data.tags]
    assert run.info.status == "FINISHED" and run.data.tags["harness.framework"] == "jax"
    assert run.data.tags["device"].endswith(", 2 XLA host devices (DataParallel)")
    assert 0.0 < run.data.metrics["final_test_accuracy"] <= 1.0
    # the variables a model builds under that strategy live on both devices
    env = {**os.environ, _framework.ENV: "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("DataParallel 2 CPU: ")


@needs_jax
def test_a_model_that_trains_on_tensorflow_only_is_refused_on_jax_by_name() -> None:
    """No built-in model is TensorFlow-only any more (census takes vocabulary indices): a plug-in may be."""
    from harness import registry
    from harness.models import DnnParams, register_model

    census = {"task": "tabular", "dataset": "adult", "backend": "cpu"}
    with registry.scoped():

        @register_model("tf_only_dnn", params=DnnParams, tasks=("tabular",), frameworks=("tensorflow",))
        def tf_only_dnn(*_: object) -> None:
            raise AssertionError("never built: refused with the config")

        with pytest.raises(ConfigError, match=r"model 'tf_only_dnn' does not train on framework=jax yet.*set fr"):
            config_from({**census, "model": "tf_only_dnn", "framework": "jax"})
        config_from({**census, "model": "tf_only_dnn", "framework": "tensorflow"})
    for model in ("linear", "dnn", "wide_deep"):  # the census models train on every framework
        config_from({**census, "model": model, "framework": "jax"})


def test_jax_compiles_into_a_persistent_cache_unless_off_or_the_users_own(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    _framework.jax_cache(env)
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "harness" / "jax")
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"  # a smoke run's many small programs too
    named = {_framework.JAX_CACHE_ENV: str(tmp_path / "mine")}
    _framework.jax_cache(named)
    assert named["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "mine")
    (tmp_path / "file").write_text("")
    unwritable = {_framework.JAX_CACHE_ENV: str(tmp_path / "file" / "cache")}  # not a folder: no cache, no failure
    for kept in ({_framework.JAX_CACHE_ENV: "off"}, {"JAX_COMPILATION_CACHE_DIR": "/theirs"}, unwritable):
        before = dict(kept)
        _framework.jax_cache(kept)
        assert kept == before


def test_the_jax_cache_is_bounded_only_where_jax_can_evict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bounded = {_framework.JAX_CACHE_ENV: str(tmp_path)}
    _framework.jax_cache(bounded)  # filelock is here (the dev extra): JAX evicts past the limit
    assert bounded["JAX_COMPILATION_CACHE_MAX_SIZE"] == str(2**30)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "filelock" else real(name, *a))
    unbounded = {_framework.JAX_CACHE_ENV: str(tmp_path)}
    _framework.jax_cache(unbounded)  # JAX raises on a size limit it cannot enforce without filelock
    assert "JAX_COMPILATION_CACHE_MAX_SIZE" not in unbounded and unbounded["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path)


@pytest.mark.skipif(_framework.installed("torch"), reason="torch is installed here")
def test_a_framework_that_is_not_installed_names_what_to_install() -> None:
    with pytest.raises(ConfigError, match=r"framework=torch needs the torch package.*pip install 'torch'"):
        _run_section(framework="torch", backend="cpu").check()


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
    # the JAX run's model.keras opens under this process's TensorFlow backend and scores what the run logged
    import keras

    from harness.data import load_dataset

    jax_run = runs["01-softmax-framework=jax-s0"]
    model = keras.models.load_model(client.download_artifacts(jax_run.info.run_id, "model.keras", str(workdir)))
    data = load_dataset(config_from({"dataset": "mnist"}).data, str(tiny_data_dir))
    logits = np.asarray(model.predict(data.x_test.astype(np.float32) / 255.0, verbose=0))
    accuracy = float((logits.argmax(axis=1) == data.y_test).mean())
    assert accuracy == pytest.approx(jax_run.data.metrics["final_test_accuracy"], abs=0.02)


# a harness process in which TensorFlow cannot be found, as on the GPU machine (JAX and PyTorch only): the path
# finder skips it (``sys.modules["tensorflow"] = None`` would not do: Keras reads a name in sys.modules as imported)
NO_TENSORFLOW = """
import importlib.machinery, runpy, sys
class NoTensorFlow(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.partition(".")[0] == "tensorflow" else super().find_spec(name, path, target)
sys.meta_path = [NoTensorFlow if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
runpy.run_module("harness", run_name="__main__")
"""


@needs_jax
@pytest.mark.slow
# every task's whole smoke ladder: MNIST (arrays batched by a PyDataset; dense and convolutional rungs, dropout, batch
# norm), PlanesNet (its augmentation in numpy), YOLO (synthetic scenes: tiles cut and batched in numpy, swarm
# assignment, augmentation), census (a table's named columns, categories as vocabulary indices)
@pytest.mark.parametrize(
    ("ladder", "data"),
    [("mnist", "tiny_data_dir"), ("planesnet", "tiny_planesnet_dir"), ("yolo", "tmp_path"), ("census", "tmp_path")],
)
def test_a_smoke_ladder_runs_on_jax_where_tensorflow_cannot_be_imported(
    tmp_path: Path, ladder: str, data: str, request: pytest.FixtureRequest
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (_framework.ENV, "MLFLOW_TRACKING_URI")}
    argv = [sys.executable, "-c", NO_TENSORFLOW, "ladder", ladder, "--scale", "smoke", "--set", "framework=jax"]
    argv += ["--data-dir", str(request.getfixturevalue(data)), "--no-report"]
    cache = tmp_path / "jax-cache"
    env.update(HARNESS_OFFLINE="1", **{_framework.JAX_CACHE_ENV: str(cache)})
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any(cache.iterdir())  # the compiled programs, for the next run of the same models
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = [r for r in store_runs(tmp_path, f"ladder/{ladder}") if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.tags["harness.rung"] for r in runs) == sorted(rung.name for rung in load_ladder(ladder).rungs)
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["harness.framework"] == "jax"
        # trained in the ladder's own process (started on JAX): a child's log would be among the artifacts
        assert not client.list_artifacts(run.info.run_id, "workers")
        primary = "final_test_iou_all" if ladder == "yolo" else "final_test_accuracy"
        assert 0.0 < run.data.metrics[primary] <= 1.0
        assert {"model.keras", "tensorboard"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    # TensorBoard's event files, written by the tensorboard package's writer without TensorFlow
    assert len(list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))) == 2 * len(runs)


@needs_jax
@pytest.mark.slow
def test_a_gpu_that_jax_does_not_see_is_a_clear_error_without_tensorflow(tmp_path: Path, tiny_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (_framework.ENV, "MLFLOW_TRACKING_URI")}
    argv = [sys.executable, "-c", NO_TENSORFLOW, "ladder", "mnist", "--scale", "smoke", "--rungs", "softmax"]
    argv += ["--set", "framework=jax", "--set", "backend=gpu", "--data-dir", str(tiny_data_dir)]
    proc = subprocess.run(
        argv, cwd=tmp_path, env={**env, "HARNESS_OFFLINE": "1"}, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: backend=gpu, but jax sees no GPU here; use backend=cpu"
    assert "Traceback" not in proc.stderr


def test_array_batches_for_training_are_endless_whole_reshuffled_and_seeded() -> None:
    from harness.data._pipeline import array_batches

    x = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * 20
    y = np.arange(10)
    a, b = array_batches(x, y, 4, seed=3), array_batches(x, y, 4, seed=3)
    assert a.num_batches is None  # endless: fit's steps_per_epoch decides
    first_pass = [a[i] for i in range(2)]  # 10 // 4: whole batches only
    assert all(len(yb) == 4 for _, yb in first_pass)
    labels = np.concatenate([yb for _, yb in first_pass])
    assert len(set(labels.tolist())) == 8  # no row twice in one pass
    for i in range(6):  # the same batches for the same seed, from the index alone
        assert np.array_equal(a[i][1], b[i][1])
    assert not np.array_equal(a[0][1], a[2][1])  # the next pass is another permutation
    xb, yb = a[0]
    assert xb.dtype == np.float32 and np.allclose(xb.reshape(-1), yb * 20 / 255.0)  # scaled, rows kept together


def test_array_batches_for_evaluation_are_one_pass_in_order() -> None:
    from harness.data._pipeline import array_batches

    x, y = np.arange(10, dtype=np.float64).reshape(10, 1), np.arange(10)
    batches = array_batches(x, y, 4)
    assert batches.num_batches == 3
    assert np.concatenate([batches[i][1] for i in range(3)]).tolist() == list(range(10))
    assert batches[0][0].dtype == np.float32


def test_array_batches_of_named_inputs_keep_rows_together_and_indices_integer() -> None:
    """A table's columns: a dict of arrays, batched row for row; category indices stay integers."""
    from harness.data._pipeline import array_batches

    x = {"age": np.arange(10, dtype=np.float64).reshape(10, 1), "job": np.arange(10, dtype=np.int32).reshape(10, 1)}
    y = np.arange(10)
    for batches in (array_batches(x, y, 4, seed=1), array_batches(x, y, 4)):
        xb, yb = batches[1]
        assert (xb["age"].dtype, xb["job"].dtype) == (np.float32, np.int32)
        assert xb["age"].ravel().tolist() == xb["job"].ravel().tolist() == yb.tolist()


def test_augmentation_only_moves_pixels_within_an_image() -> None:
    from harness.data._pipeline import augment_batch

    rng = np.random.default_rng(0)
    x = rng.random((64, 5, 5, 3)).astype(np.float32)
    out = augment_batch(x, np.random.default_rng(1))
    assert out.shape == x.shape
    for before, after in zip(x, out, strict=True):
        assert np.allclose(np.sort(before.reshape(-1)), np.sort(after.reshape(-1)))
    assert sum(not np.array_equal(b, a) for b, a in zip(x, out, strict=True)) > 32  # most images moved (7/8)


def test_every_step_of_the_prepared_gpu_run_is_a_command_harness_accepts() -> None:
    """The device script's steps run on a machine an hour's wait away: their arguments are checked here."""
    from device_run import CARRY, steps

    from harness.cli import build_parser

    parser = build_parser()
    for backend, scale in (("gpu", "standard"), ("cpu", "smoke")):
        planned = steps(backend, scale)
        assert sum(limit for _, _, limit in planned) <= 8 * 60  # the steps' limits fit the issue's 8 minutes
        for label, argv, limit in planned:
            args = parser.parse_args(argv)  # exits (SystemExit) on an argument harness does not take
            assert args.command == argv[0], label
            assert limit > 0, label
            if argv[0] in ("ladder", "study"):
                assert f"backend={backend}" in argv and "--scale" in argv and scale in argv, label
            if argv[0] == "bench":
                assert argv[argv.index("--backends") + 1] == backend and ("--quick" in argv) == (scale == "smoke")
    assert len(set(CARRY)) == len(CARRY) and "tensorflow" not in CARRY  # the GPU machine has none


YOLO_TERMS = """
import json, sys
import numpy as np
from keras import ops
from harness.tasks._detection import Packing, loss_terms, reference_batch_iou, tile_ious
rng = np.random.default_rng(0)
pack = Packing(4, 2)
y = rng.random((6, pack.size), dtype=np.float32)
pred = rng.normal(size=(6, 4, 4, 2, 5)).astype(np.float32)
targets, rois = pack.unpack(ops.convert_to_tensor(y))
rois = ops.sort(ops.minimum(rois, 0.9), axis=-1)  # boxes x1 <= y1 <= x2 <= y2 inside the tile
iou, count = tile_ious(ops.convert_to_tensor(pred), rois, 4)
terms = [ops.convert_to_numpy(t).tolist() for t in loss_terms(targets, ops.convert_to_tensor(pred))]
out = {"terms": terms, "iou": ops.convert_to_numpy(iou).tolist(), "count": ops.convert_to_numpy(count).tolist(),
       "batch": float(ops.convert_to_numpy(reference_batch_iou(iou, count)))}
print(json.dumps(out))
"""


@needs_jax
@pytest.mark.slow
def test_the_yolo_loss_and_iou_give_the_same_numbers_on_jax_as_on_tensorflow() -> None:
    """The detection task's loss terms and IoUs are keras.ops: the same inputs, the same values on each backend."""
    import json

    values = {}
    for framework in ("tensorflow", "jax"):
        env = {**os.environ, _framework.ENV: framework}
        proc = subprocess.run([sys.executable, "-c", YOLO_TERMS], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        values[framework] = json.loads(proc.stdout.strip().splitlines()[-1])
    tf_values, jax_values = values["tensorflow"], values["jax"]
    assert np.allclose(tf_values["terms"], jax_values["terms"], rtol=1e-5, atol=1e-6)
    assert np.allclose(tf_values["iou"], jax_values["iou"], atol=1e-6)
    assert tf_values["count"] == jax_values["count"]
    assert tf_values["batch"] == pytest.approx(jax_values["batch"], abs=1e-6)
    assert 0.0 < tf_values["batch"] < 1.0 and any(0.0 < v < 1.0 for v in tf_values["iou"])  # not a trivial case
