"""The experiment config: one flat, typed, frozen dataclass.

Field names follow Martin Görner's reference code (``lr0``, ``lr1``, ``lr2``,
``dropout``, ``conv1``..``conv3``, ``dense``, ``bnexp``, ``iterations``,
``batch_size``) so that configs and tuned values from the talks carry over, and
so that a search space can name a parameter exactly as the talk's trainer did.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from harness.data._base import Split
from harness.errors import ConfigError

Activation = Literal["relu", "sigmoid", "tanh", "elu"]
Optimizer = Literal["adam", "sgd"]
Reduction = Literal["mean", "sum"]
Backend = Literal["auto", "cpu", "gpu", "multi-gpu", "tpu"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one training run needs. Every field can be overridden by name."""

    # --- data -------------------------------------------------------------
    dataset: str = "mnist"
    train_subset: int | None = None  # first N training examples; None = all
    test_subset: int | None = None  # first N test examples; None = all
    split: str = "default"  # the dataset's own split, or e.g. "scene" / "random" (PlanesNet)
    split_seed: int = 0  # seed of a generated split (not of training)
    eval_fraction: float = 0.2  # share held out by a generated split
    augment: bool = False  # random flips and 90-degree rotations of training images

    # --- model (see harness.models) --------------------------------------
    model: str = "mlp"
    layers: tuple[int, ...] = ()  # mlp: hidden widths; () is softmax regression
    activation: Activation = "relu"
    dropout: float = 0.0  # drop probability (the talk's 1 - pkeep)
    conv1: int = 4  # cnn: depth of each conv layer
    conv2: int = 8
    conv3: int = 12
    filter_sizes: tuple[int, ...] = (5, 5, 4)
    strides: tuple[int, ...] = (1, 2, 2)
    dense: int = 200  # cnn: width of the dense layer after the convs
    batchnorm: bool = False  # batch norm before each ReLU (conv and dense)
    bnexp: float = 0.999  # batch-norm moving-average decay
    init_stddev: float = 0.1  # truncated-normal stddev of weights
    bias_init: float = 0.0  # the talk uses 0.1 for ReLU layers

    # --- optimisation -----------------------------------------------------
    optimizer: Optimizer = "adam"
    lr0: float = 0.003  # initial learning rate
    lr1: float = 0.0  # floor: lr(step) = lr1 + lr0 * exp(-step / lr2)
    lr2: float = 0.0  # decay period in steps; 0 = constant lr0
    loss_reduction: Reduction = "mean"  # "sum" = cross-entropy summed over the batch

    # --- schedule ---------------------------------------------------------
    iterations: int = 10_000
    batch_size: int = 100
    eval_every: int = 250  # evaluate on the test set every N steps
    eval_batch_size: int = 1000
    steps_per_execution: int = 50  # steps per tf.function call (speed only)
    seed: int = 0
    backend: Backend = "auto"

    def __post_init__(self) -> None:
        _check(self.dropout, 0.0 <= self.dropout < 1.0, "dropout", "in [0, 1)")
        _check(self.lr0, self.lr0 > 0, "lr0", "> 0")
        _check(self.lr1, self.lr1 >= 0, "lr1", ">= 0")
        _check(self.lr2, self.lr2 >= 0, "lr2", ">= 0 (0 = constant learning rate)")
        _check(self.bnexp, 0.0 < self.bnexp < 1.0, "bnexp", "in (0, 1)")
        _check(self.init_stddev, self.init_stddev > 0, "init_stddev", "> 0")
        _check(self.eval_fraction, 0.0 < self.eval_fraction < 1.0, "eval_fraction", "in (0, 1)")
        for name in (
            "iterations",
            "batch_size",
            "eval_every",
            "eval_batch_size",
            "steps_per_execution",
            "conv1",
            "conv2",
            "conv3",
            "dense",
        ):
            value = getattr(self, name)
            _check(value, value > 0, name, "> 0")
        for name in ("train_subset", "test_subset"):
            value = getattr(self, name)
            _check(value, value is None or value > 0, name, "> 0 or null (all)")
        _check(self.layers, all(w > 0 for w in self.layers), "layers", "positive widths")
        _check(
            self.filter_sizes,
            len(self.filter_sizes) == 3 and min(self.filter_sizes) > 0,
            "filter_sizes",
            "three positive sizes",
        )
        _check(
            self.strides,
            len(self.strides) == 3 and min(self.strides) > 0,
            "strides",
            "three positive strides",
        )
        if self.iterations % self.eval_every:
            raise ConfigError(
                f"iterations must be a multiple of eval_every, but got "
                f"iterations={self.iterations} and eval_every={self.eval_every}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain types (lists, not tuples) for YAML and MLflow params."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def data_split(self) -> Split:
        return Split(self.split, self.split_seed, self.eval_fraction)

    def learning_rate(self, step: int) -> float:
        """The talk's schedule, in plain Python (the training loop uses the Keras one)."""
        import math

        if self.lr2 == 0:
            return self.lr0
        return self.lr1 + self.lr0 * math.exp(-step / self.lr2)


def _check(value: Any, ok: bool, name: str, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {expected}, but got {name}={value!r}")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Config)}
_HINTS = typing.get_type_hints(Config)


def field_names() -> list[str]:
    return list(FIELDS)


def coerce(key: str, value: Any, where: str) -> Any:
    """Check ``value`` against the type of field ``key``; return it normalised.

    ``where`` says where the value came from (a file and section, or the
    command line) so that the error points at it.
    """
    if key not in FIELDS:
        import difflib

        close = difflib.get_close_matches(key, FIELDS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"{where}: unknown config key {key!r}{hint} Valid keys: {', '.join(FIELDS)}")
    try:
        return _coerce_type(value, _HINTS[key])
    except TypeError as exc:
        raise ConfigError(f"{where}: key {key!r} expects {exc}, but got {value!r}") from None


def _coerce_type(value: Any, hint: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce_type(value, inner[0]) if len(inner) == 1 else value
    if origin is Literal:
        if value not in args:
            raise TypeError("one of " + ", ".join(repr(a) for a in args))
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError("a list of int")
        return tuple(_coerce_type(v, args[0]) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError("a bool (true/false)")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("an int")
        return value
    if hint is float:
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    raise TypeError(f"a {hint}")  # pragma: no cover - every field type is handled above


def apply_overrides(cfg: Config, overrides: Mapping[str, Any], where: str) -> Config:
    """A new Config with ``overrides`` applied strictly (unknown key or wrong type: error)."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}: expected a mapping of config keys, but got {overrides!r}")
    clean = {str(k): coerce(str(k), v, where) for k, v in overrides.items()}
    try:
        return dataclasses.replace(cfg, **clean)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_cli_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr0=0.01", "layers=[200,100]"]`` -> dict; values are parsed as YAML scalars."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, but got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: cannot parse value {raw!r}") from None
    return out


def parse_variants(items: list[str]) -> tuple[dict[str, Any], ...]:
    """``["split=scene,random", "seed=1,2"]`` -> every combination, as override dicts."""
    import itertools

    axes = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise ConfigError(f"--vary expects KEY=V1,V2,..., but got {item!r}")
        values = [parse_cli_overrides([f"{key}={v}"])[key.strip()] for v in raw.split(",")]
        axes.append([(key.strip(), v) for v in values])
    return tuple(dict(combo) for combo in itertools.product(*axes)) if axes else ({},)
