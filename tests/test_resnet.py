"""ResNet-50 on synthetic images: the dataset's determinism and checks, the model, a few train steps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness.data
import harness.models
import harness.tasks
from harness.config import Config, config_from, params_class
from harness.data import SyntheticImagesParams, load_dataset
from harness.errors import ConfigError
from harness.models import ResNetParams, create_model

SMALL = {"dataset": "synthetic_images", "image_size": 32, "classes": 10, "train_examples": 8, "test_examples": 8}
RESNET50_NO_TOP_PARAMS = 23_587_712  # keras.applications.ResNet50(include_top=False): 2048 features


def _cfg(**overrides: Any) -> Config:
    return config_from({**SMALL, "model": "resnet50", **overrides})


def test_registered_for_classification() -> None:
    assert "synthetic_images" in harness.data.list_datasets()
    assert "resnet50" in harness.models.list_models()
    assert params_class("data", "synthetic_images") is SyntheticImagesParams
    assert params_class("model", "resnet50") is ResNetParams
    with pytest.raises(ConfigError, match="does not serve task 'detection'"):
        config_from({"task": "detection", "dataset": "aerial_synthetic", "model": "resnet50"})


def test_images_and_labels_have_the_classification_layout(tmp_path: Path) -> None:
    data = load_dataset(_cfg().data, tmp_path / "not-there")  # data_dir is not used
    assert data.x_train.shape == (8, 32, 32, 3) and data.x_test.shape == (8, 32, 32, 3)
    assert data.x_train.dtype == data.x_test.dtype == np.uint8
    assert data.y_train.dtype == data.y_test.dtype == np.int64
    labels = np.concatenate([data.y_train, data.y_test])
    assert labels.min() >= 0 and labels.max() < 10
    assert data.num_classes == 10 and data.input_shape == (32, 32, 3)
    assert data.source == "synthetic_images(32x32x3, 10 classes, image_seed 0)"


def test_same_parameters_same_data_and_checksum() -> None:
    a, b = load_dataset(_cfg().data), load_dataset(_cfg().data)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert a.checksum == b.checksum and len(a.checksum) == 64
    other = load_dataset(_cfg(image_seed=1).data)
    assert other.checksum != a.checksum and not np.array_equal(other.x_train, a.x_train)


def test_more_train_examples_leave_the_test_split_alone() -> None:
    a, b = load_dataset(_cfg().data), load_dataset(_cfg(train_examples=16).data)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_load_key_tells_parameter_sets_apart() -> None:
    base = _cfg().data.load_key()
    changes = [{"image_size": 64}, {"classes": 2}, {"train_examples": 9}, {"test_examples": 9}, {"image_seed": 1}]
    keys = [_cfg(**change).data.load_key() for change in changes]
    assert len({base, *keys}) == len(changes) + 1
    assert _cfg(train_subset=4, augment=True).data.load_key() == base  # the same loaded arrays


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 16}, r"image_size must be in 32\.\.1024 \(pixels\), but got image_size=16"),
        ({"image_size": 2048}, r"image_size must be in 32\.\.1024 \(pixels\), but got image_size=2048"),
        ({"classes": 1}, r"classes must be >= 2, but got classes=1"),
        ({"train_examples": 0}, r"train_examples must be in 1\.\.100000, but got train_examples=0"),
        ({"test_examples": 100_001}, r"test_examples must be in 1\.\.100000, but got test_examples=100001"),
        ({"image_seed": -1}, r"image_seed must be >= 0, but got image_seed=-1"),
        (
            {"image_size": 224, "train_examples": 30_000},
            r"would hold 4\.2 GiB \(30008 images of 224x224x3 bytes\), more than 4 GiB; "
            r"lower train_examples=30000, test_examples=8 or image_size=224",
        ),
        ({"image_seed": "a"}, r"key 'image_seed' expects an int, but got 'a'"),
    ],
)
def test_bad_parameters_say_which_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _cfg(**overrides)


def test_resnet50_is_keras_resnet50_with_float32_logits() -> None:
    model = create_model(_cfg().model, (32, 32, 3), 10)
    assert model.output.shape == (None, 10) and model.output.dtype == "float32"
    assert model.count_params() == RESNET50_NO_TOP_PARAMS + 2048 * 10 + 10
    assert model.get_layer("avg_pool").output.shape == (None, 2048)


def test_resnet50_refuses_images_below_32_pixels() -> None:
    with pytest.raises(ConfigError, match=r"resnet50 needs images of at least 32x32 pixels.*\[28, 28, 1\]"):
        create_model(ResNetParams(), (28, 28, 1), 10)


def test_mixed_float16_computes_in_float16_and_keeps_float32_logits() -> None:
    from harness.train._loop import dtype_policy

    with dtype_policy("mixed_float16"):
        model = create_model(_cfg().model, (32, 32, 3), 10)
    assert model.get_layer("conv1_conv").compute_dtype == "float16"
    assert model.get_layer("logits").compute_dtype == "float32"
    logits = model(np.zeros((1, 32, 32, 3), np.float32))
    assert logits.dtype == "float32"


@pytest.mark.slow  # tracing ResNet-50's train and eval steps takes tens of seconds on a CPU
def test_trains_two_steps_through_the_harness_loop() -> None:
    from harness.train import train

    # plain SGD: Adam's two slot variables per weight make tracing ResNet-50's train step several times slower
    cfg = _cfg(batch_size=4, iterations=2, eval_every=2, steps_per_execution=1, eval_batch_size=8, optimizer="sgd")
    result = train(cfg, load_dataset(cfg.data))
    assert [row["step"] for row in result.history] == [2]
    assert math.isfinite(result.final["final_test_loss"])
    assert result.final["params_count"] == RESNET50_NO_TOP_PARAMS + 2048 * 10 + 10
    assert result.final["examples_per_s"] >= 0
