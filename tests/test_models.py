"""Model factories: the talk's architectures, parameter counts, the registry."""

from __future__ import annotations

import pytest

from harness.config import Config, ModelParams, config_from
from harness.errors import ConfigError
from harness.ladders import load_ladder
from harness.models import create_model, list_models


def _params(cfg: Config) -> int:
    return create_model(cfg.model, (28, 28, 1), 10).count_params()


def test_unknown_model_says_the_closest_and_lists_valid_ones() -> None:
    valid = ", ".join(sorted(list_models()))
    assert {"cnn", "darknet", "mlp", "squeezenet", "linear", "dnn", "wide_deep"} <= set(list_models())
    hint = "did you mean 'resnet50'[?]"
    with pytest.raises(ConfigError, match=rf"^unknown model 'resnet'; {hint} valid models: {valid}$"):
        create_model(ModelParams(name="resnet"), (28, 28, 1), 10)
    with pytest.raises(ConfigError, match=rf"^config: unknown model 'resnet'; {hint} valid models: {valid}$"):
        config_from({"model": "resnet"})
    with pytest.raises(ConfigError, match=rf"^unknown model 'zzz'; valid models: {valid}$"):
        create_model(ModelParams(name="zzz"), (28, 28, 1), 10)


def test_talk_architectures_have_the_talks_parameter_counts() -> None:
    configs = {r.name: c for r, c in load_ladder("mnist").configs("standard")}
    assert _params(configs["softmax"]) == 784 * 10 + 10
    dense5 = 784 * 200 + 200 + 200 * 100 + 100 + 100 * 60 + 60 + 60 * 30 + 30 + 30 * 10 + 10
    assert _params(configs["dense5-relu"]) == dense5
    cnn = (5 * 5 * 1 * 4 + 4) + (5 * 5 * 4 * 8 + 8) + (4 * 4 * 8 * 12 + 12) + (7 * 7 * 12 * 200 + 200) + 2010
    assert _params(configs["cnn"]) == cnn


def test_batchnorm_cnn_replaces_biases_by_bn_offsets() -> None:
    cfg = {r.name: c for r, c in load_ladder("mnist").configs("standard")}["cnn-batchnorm"]
    model = create_model(cfg.model, (28, 28, 1), 10)
    bns = [layer for layer in model.layers if "BatchNormalization" in type(layer).__name__]
    assert len(bns) == 4  # three convs and the dense layer
    assert all(not layer.scale and layer.center and layer.momentum == 0.999 for layer in bns)
    assert not model.get_layer("conv1").use_bias
    assert [type(layer).__name__ for layer in model.layers].count("Dropout") == 1


def test_dropout_follows_every_hidden_layer_of_the_mlp() -> None:
    model = create_model(config_from({"layers": [20, 10], "dropout": 0.25}).model, (28, 28, 1), 10)
    assert [type(layer).__name__ for layer in model.layers].count("Dropout") == 2
