"""YOLO models: the reference's squeezenet layouts depth by depth, darknet, the head's output."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness.models._yolo as yolo
from harness.config._catalog import entry
from harness.errors import ConfigError
from harness.models._registry import create_model
from harness.models._yolo import (
    DarknetParams,
    SqueezenetParams,
    YoloHead,
    conv_weights,
    count_layers,
    darknet_blocks,
    darknet_layout,
    sqnet_spread_layers,
    squeezenet_layout,
    sum_divisible_by_5,
)

TILE_SHAPE = (256, 256, 3)
FAST = {"first_layer_filter_depth": 32, "first_layer_filter_size": 6, "first_layer_filter_stride": 2}

# The reference's layouts, transcribed from planespotting.md §1.2 (derived there from model.py:132-173)
# and, for n=17 and fast, equal to its fixed cores model_core_squeezenet17 and _squeezenet12 (model.py:44-87).
REFERENCE_LAYOUTS: dict[str, tuple[dict[str, Any], str, tuple[int, int]]] = {
    "n12-default": (
        {},
        "conv3x3x128 pool sq72 ex160 pool sq96 ex224 pool sq104 ex192 sq88 ex160 pool sq72 ex130",
        (65, 65),
    ),
    "n17-default": (
        {"layers": 17},
        "conv3x3x128 ex128 pool sq80 ex192 pool sq104 ex224 sq120 ex256 pool sq120 ex224 sq104 ex192 pool "
        "sq88 ex160 sq72 ex130",
        (65, 65),
    ),
    "n12-fast": (
        {**FAST, "depth_increment": 5},
        "conv6x6x32s2 pool sq21 ex52 sq36 ex92 pool sq41 ex72 sq31 ex52 pool sq21 ex35",
        (18, 17),
    ),
}


def _fast(**kw: Any) -> SqueezenetParams:
    return SqueezenetParams(**{**FAST, "depth_increment": 5, **kw})


def _conv_depths(model: Any) -> list[int]:
    """Depth of each core layer in the reference's order (an expand: its two branches together)."""
    depths: dict[int, int] = {}
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D" and layer.name.startswith("layer"):
            number = int(layer.name[5:].split("_")[0])
            depths[number] = depths.get(number, 0) + layer.filters
    return [depths[k] for k in sorted(depths)]


def _kinds(model: Any) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def _listed_depths(text: str) -> list[int]:
    """The depths in the reference's shorthand: conv3x3x128 -> 128, conv6x6x32s2 -> 32, sq72 -> 72, ex130 -> 130."""
    found = [re.fullmatch(r"(?:conv\d+x\d+x|sq|ex)(\d+)(?:s\d+)?", token) for token in text.split() if token != "pool"]
    assert all(found), text
    return [int(m.group(1)) for m in found if m]


def _layer_numbers(model: Any) -> set[int]:
    return {int(layer.name[5:].split("_")[0]) for layer in model.layers if layer.name.startswith("layer")}


def test_spread_and_rounding_follow_the_reference_formulas() -> None:
    assert sqnet_spread_layers(12) == ([1, 2, 2, 4, 2, 1], 0, [1, 2, 1, 1])
    assert sqnet_spread_layers(17) == ([2, 2, 4, 4, 4, 1], 1, [2, 1, 1, 1])
    assert sqnet_spread_layers(9) == ([2, 0, 2, 2, 2, 1], 1, [2, 1, 1, 0])  # block 1 empty: block 4 keeps depth
    assert sum_divisible_by_5(16, 16) == (18, 17)  # the 1x1 half grows first
    assert sum_divisible_by_5(64, 64) == (65, 65)
    assert sum_divisible_by_5(50, 50) == (50, 50)
    assert all(sum(sum_divisible_by_5(a, b)) % 5 == 0 for a in range(1, 30) for b in (a, a + 1))


@pytest.mark.parametrize("key", list(REFERENCE_LAYOUTS))
def test_squeezenet_builds_the_reference_layouts_depth_by_depth(key: str) -> None:
    overrides, text, last_expand = REFERENCE_LAYOUTS[key]
    p = SqueezenetParams(**overrides)
    layout = squeezenet_layout(p)
    assert " ".join(map(str, layout)) == text
    expands = [u.filters for u in layout if u.kind == "expand"]
    assert expands[-1] == last_expand
    assert all(d1 == d3 for d1, d3 in expands[:-1])
    model = yolo.squeezenet(p, TILE_SHAPE, YoloHead())
    assert _conv_depths(model) == _listed_depths(text)
    for i, unit in enumerate((u for u in layout if u.kind != "pool"), 1):
        if unit.kind == "expand":
            branches = (model.get_layer(f"layer{i}_expand_1x1"), model.get_layer(f"layer{i}_expand_3x3"))
            assert tuple(b.filters for b in branches) == unit.filters
            assert tuple(b.kernel_size for b in branches) == ((1, 1), (3, 3))
    first = model.get_layer("layer1_conv6x6" if "fast" in key else "layer1_conv3x3")
    assert first.strides == ((2, 2) if "fast" in key else (1, 1))
    pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling2D"]
    assert len(pools) == (3 if "fast" in key else 4)
    assert model.get_layer("head_avgpool").input.shape[1:3] == (16, 16)


def test_reference_weight_counts() -> None:
    """Conv kernel weights (in x out x k x k, no bias, no batch norm), what the reference logs.

    The head (grid 16, 2 boxes per cell) adds 3 x (D/5 x 2) + 2D/5 x 4 kernel weights.
    """
    fast_core = (
        6 * 6 * 3 * 32
        + 32 * 21 + 21 * 26 * (1 + 9)
        + 52 * 36 + 36 * 46 * (1 + 9)
        + 92 * 41 + 41 * 36 * (1 + 9)
        + 72 * 31 + 31 * 26 * (1 + 9)
        + 52 * 21 + 21 * 18 + 21 * 17 * 9
    )  # fmt: skip
    fast = conv_weights(yolo.squeezenet(_fast(), TILE_SHAPE, YoloHead()))
    assert fast == fast_core + 3 * 7 * 2 + 14 * 4 == 61625  # the reference: ≈62k
    assert round(conv_weights(yolo.squeezenet(SqueezenetParams(), TILE_SHAPE, YoloHead())), -3) == 462_000
    assert round(conv_weights(yolo.squeezenet(SqueezenetParams(layers=17), TILE_SHAPE, YoloHead())), -3) == 924_000


@pytest.mark.parametrize("layers", [8, 10, 11, 13, 20])
def test_layers_counts_every_conv_unit_and_the_head(layers: int) -> None:
    p = _fast(layers=layers)
    assert count_layers(squeezenet_layout(p)) == layers
    model = yolo.squeezenet(p, TILE_SHAPE, YoloHead())
    assert len(_layer_numbers(model)) + 1 == layers
    assert all(count_layers(squeezenet_layout(SqueezenetParams(layers=n))) == n for n in range(8, 31))
    assert all(count_layers(darknet_layout(DarknetParams(layers=n))) == n for n in range(5, 31))


def test_darknet_layouts() -> None:
    assert darknet_blocks(16) == (2, 4, 4, 4, 2)  # darknet17
    assert darknet_blocks(10) == (2, 2, 2, 2, 2)  # the reference's darknet
    assert darknet_blocks(11) == (2, 3, 2, 2, 2)
    assert darknet_blocks(12) == (2, 3, 3, 2, 2)
    assert darknet_blocks(4) == (2, 0, 0, 0, 2)
    pairs = " ".join(["conv3x3x100 conv1x1x100"] * 2)
    assert " ".join(map(str, darknet_layout(DarknetParams()))) == " pool ".join(
        ["conv3x3x100 conv1x1x100", pairs, pairs, pairs, "conv3x3x100 conv1x1x100"]
    )
    darknet11 = darknet_layout(DarknetParams(layers=11, first_layer_filter_depth=64))
    assert " ".join(map(str, darknet11)) == " pool ".join(["conv3x3x64 conv1x1x64"] * 4 + ["conv3x3x64 conv1x1x65"])
    odd = darknet_layout(DarknetParams(layers=13, first_layer_filter_depth=8))
    assert [u.size for u in odd if u.kind == "conv"] == [3, 1] * 6  # alternation runs across the pools
    assert odd[-1].filters == (10,)  # only the last depth rounds up to a multiple of 5
    model = yolo.darknet(DarknetParams(layers=11, first_layer_filter_depth=12), TILE_SHAPE, YoloHead())
    assert len(_layer_numbers(model)) + 1 == 11
    assert _conv_depths(model) == [12] * 9 + [15]
    strided = DarknetParams(
        layers=11, first_layer_filter_depth=12, first_layer_filter_size=6, first_layer_filter_stride=2
    )
    assert " ".join(map(str, darknet_layout(strided))).startswith("conv6x6x12s2 conv1x1x12 conv3x3x12 conv1x1x12 pool")
    model = yolo.darknet(strided, TILE_SHAPE, YoloHead(grid_nn=8))
    assert model.get_layer("head_avgpool").input.shape[1:3] == (16, 16)
    assert model.output.shape == (None, 8, 8, 2, 5)


@pytest.mark.parametrize("grid_nn", [16, 8, 4])
@pytest.mark.parametrize("cell_n", [1, 2, 4])
def test_output_is_one_float32_tensor_per_cell_and_box(grid_nn: int, cell_n: int) -> None:
    model = yolo.squeezenet(_fast(), TILE_SHAPE, YoloHead(grid_nn=grid_nn, cell_n=cell_n))
    assert model.output.shape == (None, grid_nn, grid_nn, cell_n, 5)
    assert model.output.dtype == "float32"
    assert model.get_layer("head_logits").filters == 2 * cell_n


def test_boxes_are_bounded_and_the_logits_keep_the_reference_order() -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = yolo.squeezenet(_fast(), TILE_SHAPE, YoloHead(grid_nn=8, cell_grow=1.3))
    for key in ("x", "y"):  # saturate tanh: with batch statistics the centres then reach ±cell_grow
        bn = model.get_layer(f"head_{key}_bn")
        bn.gamma.assign(np.full(bn.gamma.shape, 100.0, "float32"))
    tiles = np.random.default_rng(0).uniform(0, 1, (2, *TILE_SHAPE)).astype("float32")
    parts = keras.Model(model.input, [model.output, model.get_layer("head_logits").output])
    for training in (False, True):
        out, logits = (np.asarray(t) for t in parts(tiles, training=training))
        xy, w = out[..., :2], out[..., 2]
        assert np.abs(xy).max() <= 1.3 + 1e-6
        assert np.abs(xy).max() > (1.0 if training else 0.0)
        assert w.min() > 0.0 and w.max() < 1.0
        np.testing.assert_array_equal(out[..., 3:], logits.reshape(2, 8, 8, 2, 2))


def test_conv_units_and_head_layers() -> None:
    model = yolo.squeezenet(_fast(dropout=0.2), TILE_SHAPE, YoloHead())
    kinds = _kinds(model)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert all(not c.use_bias for c in convs if c.name != "head_logits")
    assert model.get_layer("head_logits").use_bias
    bns = {layer.name: layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"}
    assert all(b.momentum == 0.993 and b.epsilon == 1e-5 and b.center for b in bns.values())
    assert {name for name, b in bns.items() if b.scale} == {"head_x_bn", "head_y_bn", "head_w_bn"}
    core_units = sum(1 for c in convs if c.name.startswith("layer"))
    assert kinds.count("SpatialDropout2D") == kinds.count("ReLU") == core_units  # both expand branches too
    plain = _kinds(yolo.squeezenet(_fast(dropout=0.2, spatial_dropout=False), TILE_SHAPE, YoloHead()))
    assert plain.count("Dropout") == core_units and "SpatialDropout2D" not in plain
    assert not {"Dropout", "SpatialDropout2D"} & set(_kinds(yolo.squeezenet(_fast(), TILE_SHAPE, YoloHead())))


def test_mixed_precision_keeps_the_output_float32() -> None:
    import keras

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = yolo.squeezenet(_fast(), TILE_SHAPE, YoloHead())
    finally:
        keras.mixed_precision.set_global_policy(policy)
    assert model.output.dtype == "float32"
    assert model.get_layer("layer1_conv6x6").compute_dtype == "float16"


def test_stock_keras_reopens_the_model(tmp_path: Path) -> None:
    import keras

    model = yolo.squeezenet(_fast(), TILE_SHAPE, YoloHead(grid_nn=4))
    model.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras")
    tiles = np.random.default_rng(1).uniform(0, 1, (1, *TILE_SHAPE)).astype("float32")
    np.testing.assert_allclose(np.asarray(again(tiles)), np.asarray(model(tiles)), rtol=1e-5, atol=1e-6)


def test_registered_for_detection_only() -> None:
    assert entry("model", "squeezenet").tasks == ("detection",)
    assert entry("model", "darknet").params is DarknetParams
    head: Any = YoloHead()  # outputs: a head spec here, an int for classification
    model = create_model(DarknetParams(layers=5, first_layer_filter_depth=5), TILE_SHAPE, head)
    assert model.name == "darknet"


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: SqueezenetParams(layers=0), "layers"),
        (lambda: SqueezenetParams(layers=5), "layers"),  # no last fire: depth 128 cannot split in 5
        (lambda: SqueezenetParams(first_layer_filter_stride=3), "first_layer_filter_stride"),
        (lambda: SqueezenetParams(first_layer_filter_size=0), "first_layer_filter_size"),
        (lambda: SqueezenetParams(first_layer_filter_depth=1), "first_layer_filter_depth"),
        (lambda: SqueezenetParams(depth_increment=-1), "depth_increment"),
        (lambda: SqueezenetParams(dropout=1.0), "dropout"),
        (lambda: SqueezenetParams(bnexp=1.0), "bnexp"),
        (lambda: DarknetParams(layers=4), "layers"),
        (lambda: YoloHead(grid_nn=3), "grid_nn"),
        (lambda: YoloHead(cell_n=0), "cell_n"),
        (lambda: YoloHead(cell_grow=0.5), "cell_grow"),
    ],
)
def test_bad_params_name_the_key(make: Any, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key} must be .*, but got {key}="):
        make()


def test_a_classification_task_or_a_wrong_tile_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"model 'squeezenet' needs a detection task \(a YoloHead\), but got outputs=2"
    ):
        yolo.squeezenet(_fast(), TILE_SHAPE, 2)
    with pytest.raises(ConfigError, match=r"model 'darknet' needs 256x256 tiles .* input_shape=\(128, 128, 3\)"):
        yolo.darknet(DarknetParams(), (128, 128, 3), YoloHead())
