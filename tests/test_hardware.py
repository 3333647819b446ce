"""Backends and the price table."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.hardware import load_prices, make_strategy, price_per_hour


def test_shipped_price_table() -> None:
    prices = load_prices()
    assert price_per_hour("cpu", prices) == prices["cpu"] > 0
    assert price_per_hour("gpu:NVIDIA H200 x2", prices) == pytest.approx(2 * prices["gpu:H200"])
    assert price_per_hour("gpu:Tesla K80 x1", prices) == prices["gpu:K80"]
    assert price_per_hour("gpu:Mystery 9000 x1", prices) is None


def test_user_price_table_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("cpu: 1.5\n")
    monkeypatch.setenv("HARNESS_PRICES", str(path))
    assert load_prices()["cpu"] == 1.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpu: cheap\n", r"'cpu' must be a price >= 0 in \$/hour, but got 'cheap'"),
        ("[1, 2]\n", "expected a mapping"),
    ],
)
def test_bad_price_table(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_prices(path)
    assert str(path) in str(info.value)


def test_cpu_backend() -> None:
    _, hw = make_strategy("cpu")
    assert hw.backend == "cpu" and hw.hardware == "cpu" and hw.description.startswith("CPU: ")


def test_gpu_backend_without_gpu_is_a_clear_error() -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="backend='gpu' but TensorFlow sees no GPU"):
        make_strategy("gpu")


def test_backends_command_reports_what_this_machine_offers(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "devices: CPU: " in out and "XLA (jit_compile=true): works" in out
    assert "float32 works" in out and "mixed_bfloat16 works" in out
    cpu = next(line for line in out.splitlines() if line.startswith("cpu "))
    assert cpu.split()[1] == "yes" and float(cpu.split()[2]) == load_prices()["cpu"]
    assert any(line.startswith("tpu ") and line.split()[1] == "no" for line in out.splitlines())
    assert any(line.startswith("multiworker:N ") and line.split()[1] == "yes" for line in out.splitlines())


def test_precision_and_xla_are_per_run_options_and_leave_keras_as_they_found_it() -> None:
    import keras
    import numpy as np

    import harness.ladders  # noqa: F401  (registers the config sections)
    from harness.config import config_from
    from harness.data import ArrayDataset
    from harness.train import train

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (96, 8, 8, 1), dtype=np.uint8)
    y = (x.mean(axis=(1, 2, 3)) > 127).astype(np.int64)
    data = ArrayDataset("tiny", x[:64], y[:64], x[64:], y[64:], 2, "-", "generated")
    overrides = {"layers": [16], "iterations": 4, "eval_every": 2, "batch_size": 16, "eval_batch_size": 32}
    cfg = config_from({**overrides, "steps_per_execution": 2, "precision": "mixed_bfloat16", "jit_compile": True})
    assert cfg.params()["run.precision"] == "mixed_bfloat16" and cfg.params()["run.jit_compile"] is True
    result = train(cfg, data)
    layers = {layer.name: layer for layer in result.model.layers}
    assert layers["dense1"].compute_dtype == "bfloat16" and layers["dense1"].variable_dtype == "float32"
    assert layers["logits"].compute_dtype == "float32"  # a stable softmax and loss
    assert np.isfinite(result.final["final_test_loss"]) and len(result.history) == 2
    assert keras.config.dtype_policy().name == "float32"  # the next run starts from the default
