"""The planespotting detectors: a squeezenet or darknet core under the YOLO head.

As the reference (tensorflow-planespotting, trainer_yolo/model.py and model_layers.py): the core
takes a 256x256 tile (pixels / 255, done by the pipeline) down to 16x16 with four 2x2 maxpools (or a
stride-2 first conv and three pools); the head averages that down to the grid_nn x grid_nn YOLO grid
and predicts cell_n square boxes per cell. ``layers`` counts as the reference logs them: every conv
unit, squeeze and expand is one layer, pools none, the head one, so ``layers`` includes the head.

Each core is first planned in plain Python (:func:`squeezenet_layout`, :func:`darknet_layout`): the
depths can be checked against the reference without Keras, and a layout the head cannot split in 5
fails when the config is built, not when the model is.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Literal

from harness.config import MAX_KERNEL, MAX_LAYERS, MAX_WIDTH, ModelParams, check, check_range
from harness.errors import ConfigError
from harness.models._registry import register_model

if TYPE_CHECKING:
    import keras

TILE = 256  # the side of the tiles the cores take (the reference's settings.TILE_SIZE)
CORE_GRID = 16  # the side of every core's output for a TILE input
HEAD_SPLIT = 5  # the head splits the core's channels in x, y, w, c0, c1

UnitKind = Literal["conv", "squeeze", "expand", "pool"]


@dataclasses.dataclass(frozen=True)
class YoloHead:
    """What a detection task asks of the model: the grid and the boxes per cell (``outputs``)."""

    grid_nn: int = 16  # the tile is cut in grid_nn x grid_nn cells
    cell_n: int = 2  # boxes predicted per cell
    cell_grow: float = 1.3  # box centres may reach cell_grow half-cells away: into the neighbours

    def __post_init__(self) -> None:
        g = self.grid_nn
        check(g, g > 0 and CORE_GRID % g == 0, "grid_nn", f"a divisor of {CORE_GRID} (the core's output side)")
        check(self.cell_n, self.cell_n >= 1, "cell_n", ">= 1")
        check(self.cell_grow, self.cell_grow >= 1.0, "cell_grow", ">= 1")


@dataclasses.dataclass(frozen=True)
class Unit:
    """One step of a core: a conv unit, a fire module's squeeze or expand, or a 2x2 maxpool.

    An expand is a 1x1 and a 3x3 conv unit side by side, concatenated: ``filters`` holds both depths
    (1x1 first), which differ only in the last expand, rounded so that the head can split its depth in 5.
    """

    kind: UnitKind
    filters: tuple[int, ...] = ()  # one depth; an expand: (1x1 depth, 3x3 depth); a pool: none
    size: int = 1  # kernel side (an expand: its wider branch, 3)
    stride: int = 1

    @property
    def depth(self) -> int:
        return sum(self.filters)

    def __str__(self) -> str:
        """The reference's shorthand (planespotting.md §1.2): conv3x3x128, sq72, ex160, pool."""
        if self.kind == "conv":
            return f"conv{self.size}x{self.size}x{self.depth}" + (f"s{self.stride}" if self.stride > 1 else "")
        return {"squeeze": f"sq{self.depth}", "expand": f"ex{self.depth}", "pool": "pool"}[self.kind]


POOL = Unit("pool")


@dataclasses.dataclass(frozen=True)
class YoloCoreParams(ModelParams):
    """What both cores take; the names are the reference's ``--hp-*`` flags so its runs carry over."""

    layers: int = 12  # conv layers, the head included (squeeze and expand count one each)
    first_layer_filter_depth: int = 128
    first_layer_filter_size: int = 3
    first_layer_filter_stride: int = 1  # 2: a stride-2 first conv replaces one maxpool
    dropout: float = 0.0  # after every core conv unit, never in the head
    spatial_dropout: bool = True  # drop whole feature maps (one mask per sample and channel)
    bnexp: float = 0.993  # batch-norm moving-average decay

    def check(self) -> None:
        for key, most in (
            ("layers", MAX_LAYERS),
            ("first_layer_filter_depth", MAX_WIDTH),
            ("first_layer_filter_size", MAX_KERNEL),
        ):
            value = getattr(self, key)
            check(value, value > 0, key, "> 0")
            check_range(value, key, 1, most)  # before a layout of that many units is planned
        stride = self.first_layer_filter_stride
        check(stride, stride in (1, 2), "first_layer_filter_stride", "1 or 2 (the core must end at 16x16)")
        check(self.dropout, 0.0 <= self.dropout < 1.0, "dropout", "in [0, 1)")
        check(self.bnexp, 0.0 < self.bnexp < 1.0, "bnexp", "in (0, 1)")


@dataclasses.dataclass(frozen=True)
class SqueezenetParams(YoloCoreParams):
    """The reference's configurable squeezenet (its model in use, model.py:132-173)."""

    name: str = "squeezenet"
    depth_increment: int = 8  # depth added per fire over blocks 1-2, taken off over blocks 3-4

    def check(self) -> None:
        super().check()
        check(self.layers, self.layers >= 2, "layers", ">= 2 (the first conv and the head)")
        check(self.depth_increment, self.depth_increment >= 0, "depth_increment", ">= 0")
        check_range(self.depth_increment, "depth_increment", 0, MAX_WIDTH)
        layout = squeezenet_layout(self)
        smallest = min(min(u.filters) for u in layout if u.kind != "pool")
        largest = max(u.depth for u in layout if u.kind != "pool")
        check(
            self.depth_increment,
            largest <= MAX_WIDTH,
            "depth_increment",
            f"small enough to keep every depth <= {MAX_WIDTH:,} (largest: {largest:,})",
        )
        check(
            self.first_layer_filter_depth,
            smallest > 0,
            "first_layer_filter_depth",
            f"large enough to keep every depth > 0 (smallest: {smallest})",
        )
        last = next(u.depth for u in reversed(layout) if u.kind != "pool")  # block 4 may be empty
        check(
            self.layers,
            last % HEAD_SPLIT == 0,
            "layers",
            f">= 8 or a core ending at a depth divisible by 5 (this one ends at {last})",
        )


@dataclasses.dataclass(frozen=True)
class DarknetParams(YoloCoreParams):
    """A darknet core of any depth: plain conv units alternating 3x3 and 1x1, all of one depth.

    This generalises the reference's two fixed darknet cores (model.py:90-130). ``layers=17`` is
    ``model_core_darknet17`` exactly (16 units of 100); ``layers=11`` has the layout of
    ``model_core_darknet`` (2 units per block) but one depth everywhere, where the reference's
    depths drift from 64 through 50..62 to 65. Only the last depth is rounded up to a multiple of 5
    (the head splits it in 5); a stride-2 first conv replaces the pool after block 1, as in squeezenet.
    """

    name: str = "darknet"
    layers: int = 17
    first_layer_filter_depth: int = 100  # the depth of every conv unit

    def check(self) -> None:
        super().check()
        check(self.layers, self.layers >= 5, "layers", ">= 5 (2 conv units in each end block, and the head)")


def sqnet_spread_layers(n: int) -> tuple[list[int], int, list[int]]:
    """The reference's spread of ``n`` layers over the 4 blocks between maxpools (model_layers.py:140-157).

    Returns ``(layers_n, first_expand, doubler)``: ``layers_n[1:5]`` are the conv layers of blocks
    1-4 (two per fire module), ``first_expand`` is 1 when ``n`` is odd (an expand right after the
    first conv takes the odd layer), and ``doubler[b]`` multiplies the depth increment of block ``b``
    so that the depth climbs over blocks 1-2 by as much as it falls over blocks 3-4.
    """
    first_expand = n % 2
    inner = (n - 2 - first_expand) // 2  # fire modules
    doubler = [(inner + 0) % 4 // 3 + 1, (inner + 2) % 4 // 3 + 1, 1, 1]
    layers_n = [
        1 + first_expand,
        (inner + 0) // 4 * 2,
        (inner + 2) // 4 * 2,
        (inner + 3) // 4 * 2,
        (inner + 1) // 4 * 2,
        1,
    ]
    if layers_n[1] == 0:  # few layers: keep the climb over blocks 1-2 equal to the fall over blocks 3-4
        doubler[3] = 0
    if layers_n[2] == 0:
        doubler[2] = 0
    return layers_n, first_expand, doubler


def sum_divisible_by_5(a: int, b: int) -> tuple[int, int]:
    """Grow ``a`` and ``b`` alternately until ``a + b`` divides by 5 (model_layers.py:237-244).

    The reference swaps the pair at each step, so which half grows first alternates too:
    (16, 16) gives (18, 17) and (64, 64) gives (65, 65).
    """
    swapped = False
    while (a + b) % 5:
        b, a = a + 1, b
        swapped = not swapped
    return (b, a) if swapped else (a, b)


def _expand(depth: int, last: bool = False) -> Unit:
    """An expand of ``depth`` split in two halves (the reference drops an odd depth's remainder)."""
    d1 = d2 = depth // 2
    if last:
        d1, d2 = sum_divisible_by_5(d1, d2)
    return Unit("expand", (d1, d2), size=3)


def squeezenet_layout(p: SqueezenetParams) -> tuple[Unit, ...]:
    """The configurable squeezenet's units in order (model.py:132-173).

    A fire module on input depth d has a squeeze of d//2 + δ and an expand of 2·(d//2 + 2δ), with
    δ = +inc·doubler over blocks 1-2 and −inc·doubler over blocks 3-4; the last expand is rounded
    up to a depth divisible by 5 for the head.
    """
    layers_n, first_expand, doubler = sqnet_spread_layers(p.layers)
    d0, inc = p.first_layer_filter_depth, p.depth_increment
    units = [Unit("conv", (d0,), p.first_layer_filter_size, p.first_layer_filter_stride)]
    if first_expand:
        units.append(_expand(d0))
    units.append(POOL)

    def fires(count: int, delta: int, last: bool = False) -> None:
        for i in range(count):
            depth = next(u.depth for u in reversed(units) if u.kind != "pool") // 2 + delta
            units.append(Unit("squeeze", (depth,)))
            units.append(_expand(2 * (depth + delta), last=last and i == count - 1))

    fires(layers_n[1] // 2, inc * doubler[0])
    if p.first_layer_filter_stride == 1:
        units.append(POOL)
    fires(layers_n[2] // 2, inc * doubler[1])
    units.append(POOL)
    fires(layers_n[3] // 2, -inc * doubler[2])
    units.append(POOL)
    fires(layers_n[4] // 2, -inc * doubler[3], last=True)
    return tuple(units)


def darknet_blocks(units: int) -> tuple[int, ...]:
    """Conv units per block: 2 in each end block, the rest spread evenly, extras to the earlier blocks.

    16 units give (2, 4, 4, 4, 2), the reference's darknet17; 10 give (2, 2, 2, 2, 2), its darknet.
    """
    base, extra = divmod(units - 4, 3)
    return (2, *(base + (i < extra) for i in range(3)), 2)


def darknet_layout(p: DarknetParams) -> tuple[Unit, ...]:
    """The darknet core's units in order: ``layers - 1`` conv units in 5 blocks between 4 maxpools."""
    d0, n_units = p.first_layer_filter_depth, p.layers - 1
    out: list[Unit] = []
    k = 0
    for block, count in enumerate(darknet_blocks(n_units)):
        if block > 0 and not (block == 1 and p.first_layer_filter_stride == 2):
            out.append(POOL)
        for _ in range(count):
            size, stride = (3 if k % 2 == 0 else 1), 1
            if k == 0:
                size, stride = p.first_layer_filter_size, p.first_layer_filter_stride
            depth = -(-d0 // HEAD_SPLIT) * HEAD_SPLIT if k == n_units - 1 else d0
            out.append(Unit("conv", (depth,), size, stride))
            k += 1
    return tuple(out)


def count_layers(layout: tuple[Unit, ...]) -> int:
    """Layers as the reference counts them: each conv unit, squeeze and expand, plus the head."""
    return sum(u.kind != "pool" for u in layout) + 1


def conv_weights(model: keras.Model) -> int:
    """The weights the reference logs ("NN ... total weights"): conv kernels only, no bias, no batch norm."""
    import keras

    return sum(math.prod(layer.kernel.shape) for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def _conv_unit(x: Any, p: YoloCoreParams, filters: int, size: int, stride: int, name: str) -> Any:
    """Conv (same, no bias) -> batch norm (offset, no scale: a ReLU follows) -> ReLU -> dropout."""
    import keras

    x = keras.layers.Conv2D(filters, size, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=p.bnexp, epsilon=1e-5, center=True, scale=False, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    if p.dropout:
        drop = keras.layers.SpatialDropout2D if p.spatial_dropout else keras.layers.Dropout
        x = drop(p.dropout, name=f"{name}_dropout")(x)
    return x


def _core(x: Any, p: YoloCoreParams, layout: tuple[Unit, ...]) -> Any:
    """The layout as Keras layers, named after the reference's layer numbers (``layer3_expand``)."""
    import keras

    number = pools = 0
    for unit in layout:
        if unit.kind == "pool":
            pools += 1
            x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{pools}")(x)
            continue
        number += 1
        name = f"layer{number}_{unit.kind}"
        if unit.kind == "expand":
            d1, d3 = unit.filters
            x = keras.layers.Concatenate(name=name)(
                [_conv_unit(x, p, d1, 1, 1, f"{name}_1x1"), _conv_unit(x, p, d3, 3, 1, f"{name}_3x3")]
            )
        else:
            suffix = f"{unit.size}x{unit.size}" if unit.kind == "conv" else ""
            x = _conv_unit(x, p, unit.depth, unit.size, unit.stride, name + suffix)
    return x


def _head(x: Any, p: YoloCoreParams, head: YoloHead) -> Any:
    """The YOLO head (model_layers.py:166-208) as one float32 tensor [B, g, g, cell_n, 5].

    The last axis is (x, y, w, logit no-plane, logit plane): x, y in ±cell_grow half-cells from
    the cell centre, w the box side as a fraction of the tile. It stays float32 under mixed
    precision, so the loss sees full-precision boxes and logits.
    """
    import keras

    g, n = head.grid_nn, head.cell_n
    pool = CORE_GRID // g
    x = keras.layers.AveragePooling2D(pool, strides=pool, padding="valid", name="head_avgpool")(x)
    xr, yr, wr, c0, c1 = keras.ops.split(x, HEAD_SPLIT, axis=-1)

    def box(part: Any, key: str, activation: str) -> Any:
        # scaled batch norm: tanh and sigmoid are not scale invariant
        y = keras.layers.Conv2D(n, 1, use_bias=False, name=f"head_{key}_conv")(part)
        y = keras.layers.BatchNormalization(
            momentum=p.bnexp, epsilon=1e-5, center=True, scale=True, name=f"head_{key}_bn"
        )(y)
        return keras.layers.Activation(activation, dtype="float32", name=f"head_{key}_{activation}")(y)

    box_x = keras.layers.Rescaling(head.cell_grow, dtype="float32", name="head_x_grow")(box(xr, "x", "tanh"))
    box_y = keras.layers.Rescaling(head.cell_grow, dtype="float32", name="head_y_grow")(box(yr, "y", "tanh"))
    box_w = box(wr, "w", "sigmoid")
    c = keras.layers.Concatenate(name="head_c_concat")([c0, c1])
    logits = keras.layers.Conv2D(2 * n, 1, use_bias=True, dtype="float32", name="head_logits")(c)
    parts = [
        keras.layers.Reshape((g, g, n, 1), dtype="float32", name=f"head_{key}_cells")(t)
        for key, t in (("x", box_x), ("y", box_y), ("w", box_w))
    ]
    parts.append(keras.layers.Reshape((g, g, n, 2), dtype="float32", name="head_logits_cells")(logits))
    return keras.layers.Concatenate(axis=-1, dtype="float32", name="yolo")(parts)


def _yolo_model(
    name: str, p: YoloCoreParams, layout: tuple[Unit, ...], input_shape: tuple[int, ...], outputs: object
) -> keras.Model:
    import keras

    if not isinstance(outputs, YoloHead):
        raise ConfigError(f"model {name!r} needs a detection task (a YoloHead), but got outputs={outputs!r}")
    if tuple(input_shape[:2]) != (TILE, TILE) or len(input_shape) != 3:
        raise ConfigError(
            f"model {name!r} needs {TILE}x{TILE} tiles [H, W, C] (its core ends at {CORE_GRID}x{CORE_GRID}), "
            f"but got input_shape={tuple(input_shape)!r}"
        )
    inputs = keras.Input(shape=input_shape, name="image")
    return keras.Model(inputs, _head(_core(inputs, p, layout), p, outputs), name=name)


@register_model("squeezenet", params=SqueezenetParams, tasks=("detection",))
def squeezenet(p: SqueezenetParams, input_shape: tuple[int, ...], outputs: YoloHead) -> keras.Model:
    """The configurable squeezenet core and the YOLO head; input: tiles already divided by 255."""
    return _yolo_model("squeezenet", p, squeezenet_layout(p), input_shape, outputs)


@register_model("darknet", params=DarknetParams, tasks=("detection",))
def darknet(p: DarknetParams, input_shape: tuple[int, ...], outputs: YoloHead) -> keras.Model:
    """The darknet core and the YOLO head; input: tiles already divided by 255."""
    return _yolo_model("darknet", p, darknet_layout(p), input_shape, outputs)
