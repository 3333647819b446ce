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
