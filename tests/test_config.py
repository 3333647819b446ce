"""Config: strict, typed overrides with messages that name the key and the source."""

from __future__ import annotations

import math

import pytest

import harness.data
import harness.models
import harness.tasks  # noqa: F401  (register the config sections of every task, dataset and model)
from harness.config import apply_overrides, coerce, config_from, default_config, parse_cli_overrides
from harness.errors import ConfigError
from harness.models import MlpParams


def test_defaults_are_valid_and_round_trip() -> None:
    cfg = default_config()
    again = apply_overrides(default_config(), cfg.params(), "test")
    assert again == cfg
    cnn = config_from({"dataset": "planesnet", "model": "cnn", "conv1": 8, "filter_sizes": [4, 3, 2]})
    assert apply_overrides(default_config(), cnn.params(), "test") == cnn


def test_override_converts_types() -> None:
    cfg = apply_overrides(default_config(), {"lr0": 1, "layers": [200, 100], "batchnorm": True}, "test")
    assert cfg.optim.lr0 == 1.0 and isinstance(cfg.optim.lr0, float)
    assert isinstance(cfg.model, MlpParams) and cfg.model.layers == (200, 100)
    assert cfg.model.batchnorm is True


def test_unknown_key_names_key_source_and_suggests() -> None:
    with pytest.raises(ConfigError, match=r"my\.yaml: unknown config key 'lr_0'; did you mean lr0"):
        apply_overrides(default_config(), {"lr_0": 0.1}, "my.yaml")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"conv1": 8}, r"^test: key 'conv1' is not used by model 'mlp'; it is a parameter of model cnn$"),
        ({"model.conv1": 8}, r"^test: key 'model\.conv1' is not used by model 'mlp'; it is a parameter of model cnn$"),
        (
            {"split": "scene"},
            r"^test: key 'split' is not used by dataset 'mnist'; it is a parameter of dataset airbus, planesnet$",
        ),
    ],
)
def test_key_of_another_model_or_dataset_names_its_owner(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(default_config(), overrides, "test")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("iterations", "many", "expects an int"),
        ("iterations", 1.5, "expects an int"),
        ("iterations", True, "expects an int"),
        ("lr0", "fast", "expects a number"),
        ("batchnorm", "yes", r"expects a bool \(true/false\)"),
        ("activation", "swish", r"expects one of 'relu', 'sigmoid', 'tanh', 'elu'"),
        ("layers", "many", "expects an int or a list of int"),
    ],
)
def test_wrong_type_names_key_and_expected_type(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"cli: key '{key}' {expected}, but got"):
        coerce(key, value, "cli")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), but got dropout=1.0"),
        ({"lr0": 0}, r"lr0 must be > 0, but got lr0=0.0"),
        ({"iterations": 1000, "eval_every": 300}, "iterations must be a multiple of eval_every"),
        ({"batch_size": 0}, "batch_size must be > 0"),
        ({"model": "cnn", "filter_sizes": [5, 5]}, "filter_sizes must be three positive sizes"),
    ],
)
def test_out_of_range_values_are_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^test: {message}"):
        apply_overrides(default_config(), overrides, "test")


def test_cli_overrides_parse_yaml_scalars() -> None:
    assert parse_cli_overrides(["lr0=0.01", "layers=[10, 20]", "batchnorm=true", "test_subset=null"]) == {
        "lr0": 0.01,
        "layers": [10, 20],
        "batchnorm": True,
        "test_subset": None,
    }


def test_scientific_notation_is_a_number_even_without_a_dot() -> None:
    cfg = apply_overrides(default_config(), parse_cli_overrides(["lr0=1e-3", "lr1=2E-5"]), "cli")
    assert (cfg.optim.lr0, cfg.optim.lr1) == (0.001, 2e-5)
    with pytest.raises(ConfigError, match="key 'iterations' expects an int"):
        apply_overrides(default_config(), parse_cli_overrides(["iterations=1e4"]), "cli")


def test_cli_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match="--set expects KEY=VALUE, but got 'lr0'"):
        parse_cli_overrides(["lr0"])


def test_learning_rate_schedule_is_the_talks() -> None:
    cfg = config_from({"lr0": 0.003, "lr1": 0.0001, "lr2": 2000})
    assert cfg.learning_rate(0) == pytest.approx(0.0031)
    assert cfg.learning_rate(2000) == pytest.approx(0.0001 + 0.003 / math.e)
    assert config_from({"lr0": 0.005}).learning_rate(5000) == 0.005  # lr2 = 0: constant


@pytest.mark.parametrize(
    "overrides",
    [
        {"schedule": "warmup_cosine", "lr0": 0.01, "lr1": 0.0005, "warmup": 0.25, "iterations": 400},
        {"schedule": "warmup_cosine", "lr0": 0.01, "warmup": 0.0, "iterations": 300},
        {"lr0": 0.003, "lr1": 0.0001, "lr2": 2000},
    ],
)
def test_logged_learning_rate_is_the_one_keras_trains_with(overrides: dict[str, object]) -> None:
    from harness.train import learning_rate

    cfg = config_from({**overrides, "eval_every": 100})
    schedule = learning_rate(cfg.optim, cfg.run.iterations)
    for step in (0, 1, 50, 99, 100, 101, 250, cfg.run.iterations - 1, cfg.run.iterations, cfg.run.iterations + 50):
        keras_lr = float(schedule(step)) if callable(schedule) else schedule
        assert cfg.learning_rate(step) == pytest.approx(keras_lr, rel=1e-5, abs=1e-9), step  # float32 in Keras


def test_one_cycle_peaks_at_lr0_and_ends_at_its_floor() -> None:
    cfg = config_from({"schedule": "warmup_cosine", "lr0": 0.02, "lr1": 0.001, "warmup": 0.2, "iterations": 500})
    assert cfg.learning_rate(0) == pytest.approx(0.001)
    assert cfg.learning_rate(100) == pytest.approx(0.02)
    assert cfg.learning_rate(500) == pytest.approx(0.001)
    with pytest.raises(ConfigError, match="lr1 must be below lr0"):
        config_from({"schedule": "warmup_cosine", "lr0": 0.01, "lr1": 0.01})
    with pytest.raises(ConfigError, match=r"warmup must be a fraction .* but got warmup=1.5"):
        config_from({"schedule": "warmup_cosine", "warmup": 1.5})
