"""Ladders as data: the built-in MNIST ladder, strict parsing, rung selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.ladders import builtin_ladders, load_ladder
from harness.models import CnnParams, MlpParams, TalkNetParams

GOOD = """
name: tiny
base: {dataset: mnist, iterations: 20, eval_every: 10}
rungs:
  - name: a
    changes: softmax
    reference: 0.9
    set: {model: mlp}
  - name: b
    changes: + hidden layer
    set: {layers: [16]}
"""


def test_builtin_ladders_are_listed() -> None:
    assert "mnist" in builtin_ladders()


def test_mnist_ladder_is_the_talks() -> None:
    ladder = load_ladder("mnist")
    assert [r.index for r in ladder.rungs] == list(range(1, 9))
    assert [r.reference for r in ladder.rungs] == [0.92, 0.979, 0.98, 0.982, 0.982, 0.989, 0.993, 0.994]
    configs = dict((r.name, c) for r, c in ladder.configs("standard"))
    softmax = configs["softmax"]
    assert isinstance(softmax.model, MlpParams)
    assert (
        softmax.model.name,
        softmax.model.layers,
        softmax.optim.optimizer,
        softmax.optim.lr0,
        softmax.optim.loss_reduction,
        softmax.run.iterations,
    ) == (
        "mlp",
        (),
        "sgd",
        0.005,
        "sum",
        2000,
    )
    # each rung overrides the one before: lr decay keeps ReLU, dropout keeps the decay
    assert isinstance(configs["lr-decay"].model, MlpParams) and isinstance(configs["dropout"].model, MlpParams)
    assert configs["lr-decay"].model.activation == "relu"
    assert (configs["dropout"].optim.lr1, configs["dropout"].optim.lr2, configs["dropout"].model.dropout) == (
        0.0001,
        2000,
        0.25,
    )
    bn = configs["cnn-batchnorm"]
    m = bn.model
    assert isinstance(m, CnnParams) and m.name == "cnn"
    assert (m.conv1, m.conv2, m.conv3, m.filter_sizes, m.strides) == (24, 48, 64, (6, 5, 4), (1, 2, 2))
    assert (m.batchnorm, m.bnexp, bn.optim.lr0, bn.optim.lr1, bn.optim.lr2, m.dropout) == (
        True,
        0.999,
        0.02,
        0.0002,
        1000,
        0.25,
    )
    assert all(isinstance(c.model, TalkNetParams) and c.model.init_stddev == 0.1 for c in configs.values())
    assert all(c.run.batch_size == 100 for c in configs.values())


def test_smoke_scale_and_cli_overrides_apply_on_top() -> None:
    ladder = load_ladder("mnist")
    configs = ladder.configs("smoke", {"lr0": 0.5})
    assert all(c.run.iterations == 20 and c.optim.lr0 == 0.5 for _, c in configs)


def test_user_ladder_file(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(GOOD)
    ladder = load_ladder(str(path))
    assert [r.name for r in ladder.rungs] == ["a", "b"]
    model = ladder.rungs[1].config.model
    assert isinstance(model, MlpParams) and model.layers == (16,)


def test_a_folder_named_like_a_builtin_ladder_does_not_hide_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()  # a data folder, say
    (tmp_path / "yolo").write_text("not a ladder")
    assert load_ladder("mnist").name == "mnist" and load_ladder("yolo").name == "yolo"
    (tmp_path / "mine").write_text(GOOD)  # a ladder file without the .yaml suffix is still read as one
    assert [r.name for r in load_ladder("mine").rungs] == ["a", "b"]


def test_unknown_ladder_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown ladder 'mnits' \(did you mean 'mnist'\?\); valid ladders: .*mnist"):
        load_ladder("mnits")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (GOOD.replace("layers: [16]", "layerz: [16]"), r"rungs\[2\] \(b\)\.set: unknown config key 'layerz'"),
        (
            GOOD.replace("layers: [16]", "layers: sixteen"),
            r"rungs\[2\] \(b\)\.set: key 'layers' expects a list",
        ),
        (GOOD.replace("iterations: 20", "iterations: 2O"), r"base: key 'iterations' expects an int"),
        (GOOD.replace("name: tiny", "name: tiny\nrugns: []"), r"unknown key 'rugns'"),
        (GOOD.replace("    changes: softmax", "    chnages: softmax"), r"rungs\[1\]: unknown key 'chnages'"),
        (GOOD + "scales:\n  huge: {}\n", r"unknown scale 'huge'"),
        (GOOD + "scales:\n  smoke: {iters: 3}\n", r"scales\.smoke: unknown config key 'iters'"),
        (GOOD.replace("reference: 0.9", "reference: high"), r"reference must be a finite number"),
        ("name: x\nrungs: [\n", "not valid YAML"),
    ],
)
def test_bad_ladder_file_names_file_and_key(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    with pytest.raises(ConfigError, match=message) as info:
        load_ladder(str(path))
    assert str(path) in str(info.value)


def test_rung_selection() -> None:
    ladder = load_ladder("mnist")
    assert [r.index for r in ladder.select("1,3-4,cnn").rungs] == [1, 3, 4, 6]
    with pytest.raises(ConfigError, match=r"'9' is outside the rungs of mnist \(1..8\)"):
        ladder.select("9")
    with pytest.raises(ConfigError, match="cannot parse 'x-y'"):
        ladder.select("x-y")
