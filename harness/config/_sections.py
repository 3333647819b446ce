"""Config sections: small typed, frozen dataclasses that check their own values.

A run's :class:`~harness.config.Config` is five sections. ``optim`` and ``run``
are the same for every experiment; ``task``, ``data`` and ``model`` are *named*:
each registered task, dataset and model brings its own subclass with its own
fields and checks (detectron2's per-component config, big_vision's
``config.model``), so a key the chosen model does not use does not exist.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness import _framework
from harness.config._types import plain
from harness.errors import ConfigError

Optimizer = Literal["adam", "sgd"]
Reduction = Literal["mean", "sum"]
Schedule = Literal["exp_decay", "warmup_cosine"]
BACKENDS = "auto, cpu, cpu:N, gpu, gpu:N, multi-gpu, tpu, multiworker, multiworker:N"
_BACKEND = re.compile(r"auto|(?:cpu|gpu)(?::[1-9][0-9]?)?|multi-gpu|tpu|multiworker(?::[1-9][0-9]?)?")


def check_backend(backend: str) -> None:
    """A clear error for a backend name harness does not know (multiworker:N takes 1 to 99 workers)."""
    if not isinstance(backend, str) or _BACKEND.fullmatch(backend) is None:
        raise ConfigError(f"backend must be one of {BACKENDS} (N: 1 to 99), but got backend={backend!r}")


def parse_backends(text: str, flag: str = "--backends") -> tuple[str, ...]:
    """``"cpu,gpu"`` -> ("cpu", "gpu"), each a known backend, duplicates dropped; a clear error otherwise."""
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not names:
        raise ConfigError(f"{flag} expects a comma list of backends (e.g. cpu,gpu), but got {text!r}")
    for name in names:
        try:
            check_backend(name)
        except ConfigError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
    return names


def parse_frameworks(text: str, flag: str = "--frameworks") -> tuple[str, ...]:
    """``"tensorflow,jax"`` -> ("tensorflow", "jax"), each a Keras framework installed here, duplicates
    dropped; a clear error otherwise (naming what to install), before any framework starts."""
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in _framework.FRAMEWORKS]
    if not names or unknown:
        raise ConfigError(f"{flag} expects a comma list of {', '.join(_framework.FRAMEWORKS)}, but got {text!r}")
    missing = [n for n in names if not _framework.installed(n)]
    if missing:
        install = " ".join(f"'{_framework.INSTALL[n]}'" for n in missing)
        raise ConfigError(f"{flag}: {', '.join(missing)} not installed here: pip install {install}")
    return names


Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
Framework = Literal["tensorflow", "jax", "torch"]
# backends a framework other than TensorFlow runs on so far (the others are tf.distribute strategies)
_SINGLE_DEVICE = ("auto", "cpu", "gpu")
_DATA_PARALLEL = re.compile(r"(cpu|gpu):(\d+)")  # on JAX: keras.distribution.DataParallel over N devices


def check(value: Any, ok: bool, name: str, expected: str) -> None:
    """Raise ``ConfigError`` naming the key, what was expected and what was given."""
    if not ok:
        raise ConfigError(f"{name} must be {expected}, but got {name}={shown(value)}")


# Bounds on the sizes a config may ask for: far above any net of the talk, the reference or a GPU's
# memory, low enough that a typo fails here and not after a minute of model building (2,500 dense
# layers end in a RecursionError) or as an out-of-memory kill.
MAX_LAYERS = 100  # hidden layers of a dense net; conv layers of a YOLO core
MAX_WIDTH = 16_384  # units of a dense layer, filters of a conv layer
MAX_KERNEL = 64  # a conv kernel's side; strides likewise


def shown(value: Any, limit: int = 8) -> str:
    """``repr`` of ``value``, a long list cut to its first entries and its length (one line in an error)."""
    if isinstance(value, list | tuple) and len(value) > limit:
        head = ", ".join(repr(v) for v in value[:limit])
        return f"[{head}, ... ({len(value):,} entries)]"
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text):,} characters)"


def check_range(value: int, name: str, low: int, high: int, note: str = "") -> None:
    """``low <= value <= high``, else an error stating the allowed range."""
    check(value, low <= value <= high, name, f"in {low:,}..{high:,}{note}")


def check_sizes(values: tuple[int, ...], name: str, count: tuple[int, int], size: tuple[int, int], what: str) -> None:
    """A list of sizes (widths, kernel sides): how many, and each within bounds; the errors say both ranges."""
    (fewest, most), (low, high) = count, size
    expected = f"{fewest:,} to {most:,} {what} of {low:,}..{high:,} each"
    if not fewest <= len(values) <= most:
        raise ConfigError(f"{name} must be {expected}, but got {len(values):,} entries: {name}={shown(values)}")
    bad = next((v for v in values if not low <= v <= high), None)
    if bad is not None:
        raise ConfigError(f"{name} must be {expected}, but got {bad:,} in {name}={shown(values)}")


@dataclasses.dataclass(frozen=True)
class Section:
    """Base of every section: typed fields, checked by :meth:`check` on construction."""

    # fields that say how long and on how much data a run trains and is evaluated (its budget), never what
    # it trains: a ladder's scale may set them over a rung's own values, and a study's --scale over a search
    # space's fixed values (harness/ladders/_spec.py); a section with more (tiles per box) adds its own
    budget: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Subclasses raise ``ConfigError`` (via :func:`check`) on a bad value."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def hints(cls) -> dict[str, Any]:
        """Field name -> type hint (resolved once per class)."""
        found = _HINTS.get(cls)
        if found is None:
            names = {f.name for f in dataclasses.fields(cls)}
            found = _HINTS[cls] = {k: v for k, v in typing.get_type_hints(cls).items() if k in names}
        return found


_HINTS: dict[type, dict[str, Any]] = {}  # a cache: classes are immutable once defined


@dataclasses.dataclass(frozen=True)
class Named(Section):
    """A section chosen by name from a registry (task, dataset, model)."""

    name: str = ""

    # field -> {word: value}: words a search space may write for a value of the field (a Cloud ML Engine
    # categorical label such as filter_sizes "S"); the catalog's value_aliases merges them per key
    value_aliases: ClassVar[Mapping[str, Mapping[str, Any]]] = {}


@dataclasses.dataclass(frozen=True)
class TaskParams(Named):
    """A task's own settings (none for classification)."""

    name: str = "classification"


@dataclasses.dataclass(frozen=True)
class DataParams(Named):
    """What every dataset takes; a dataset with more (a split) subclasses it."""

    name: str = "mnist"
    train_subset: int | None = None  # first N training examples; None = all
    test_subset: int | None = None  # first N test examples; None = all
    augment: bool = False  # the task's training augmentation (images: the square's 8 symmetries)

    budget: ClassVar[frozenset[str]] = frozenset({"train_subset", "test_subset"})

    def check(self) -> None:
        for key in ("train_subset", "test_subset"):
            value = getattr(self, key)
            check(value, value is None or value > 0, key, "> 0 or null (all)")

    def tags(self) -> dict[str, str]:
        """Run tags that say which part of the data this is (a dataset with a split names it)."""
        return {}

    def extra_images(self, data_dir: Path | None) -> list[Path]:
        """Unannotated images of this dataset under ``data_dir``, to look at a model's boxes on
        (``harness detect-boxes --extras``); none here."""
        return []

    def load_key(self) -> tuple[Any, ...]:
        """What identifies the loaded data: every field except subsets and augmentation."""
        skip = {"train_subset", "test_subset", "augment"}
        return tuple((f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in skip)


@dataclasses.dataclass(frozen=True)
class ModelParams(Named):
    """Base of every model's parameters."""

    name: str = "mlp"


@dataclasses.dataclass(frozen=True)
class OptimParams(Section):
    """Optimiser and learning-rate schedule.

    ``exp_decay`` is the talk's ``lr(step) = lr1 + lr0 * exp(-step / lr2)``; ``warmup_cosine``
    is a one-cycle: a linear rise from lr1 to lr0 over ``warmup`` of the run's iterations, then a
    cosine back down to lr1 at the last iteration (Keras' ``CosineDecay`` with warm-up).
    """

    optimizer: Optimizer = "adam"
    lr0: float = 0.003  # initial (exp_decay) or peak (warmup_cosine) learning rate
    lr1: float = 0.0  # floor of the decay
    lr2: float = 0.0  # exp_decay: decay period in steps; 0 = constant lr0
    loss_reduction: Reduction = "mean"  # "sum" = the loss summed over the batch (the talk's first rung)
    schedule: Schedule = "exp_decay"
    warmup: float = 0.2  # warmup_cosine: fraction of the iterations spent rising to lr0

    def check(self) -> None:
        check(self.lr0, self.lr0 > 0, "lr0", "> 0")
        check(self.lr1, self.lr1 >= 0, "lr1", ">= 0")
        check(self.lr2, self.lr2 >= 0, "lr2", ">= 0 (0 = constant learning rate)")
        check(self.warmup, 0 <= self.warmup < 1, "warmup", "a fraction of the iterations in [0, 1)")
        if self.schedule == "warmup_cosine":
            check(self.lr1, self.lr1 < self.lr0, "lr1", "below lr0 (the floor of the one-cycle)")


_RUN_MAX = {  # a billion steps is years on any machine; a batch of 2**20 is past any accelerator's memory
    "iterations": 10**9,
    "batch_size": 2**20,
    "eval_every": 10**9,
    "eval_batch_size": 2**20,
    "steps_per_execution": 10**6,
}


@dataclasses.dataclass(frozen=True)
class RunParams(Section):
    """How long, in what batches, evaluated how often, on which backend."""

    iterations: int = 10_000
    batch_size: int = 100
    eval_every: int = 250  # evaluate on the test set every N steps
    eval_batch_size: int = 1000
    steps_per_execution: int = 50  # steps per compiled call (speed only; PyTorch: always 1, its trainer's limit)
    seed: int = 0
    backend: str = "auto"  # see BACKENDS; multiworker:N starts N local worker processes per run
    precision: Precision = "float32"  # Keras dtype policy: mixed_* compute in 16 bits, keep float32 weights
    jit_compile: bool = False  # compile the train and eval steps with XLA (JAX always does)
    # the Keras backend the run trains on; one that differs from the process's trains in a child process
    framework: Framework = "tensorflow"

    budget: ClassVar[frozenset[str]] = frozenset({"iterations", "eval_every", "eval_batch_size", "steps_per_execution"})

    def check(self) -> None:
        check_backend(self.backend)
        self._check_framework()
        for key in ("iterations", "batch_size", "eval_every", "eval_batch_size", "steps_per_execution"):
            value = getattr(self, key)
            check(value, value > 0, key, "> 0")
            check_range(value, key, 1, _RUN_MAX[key])
        check_range(self.seed, "seed", 0, 2**31 - 1, " (TensorFlow's and numpy's seeds)")
        if self.iterations % self.eval_every:
            raise ConfigError(
                f"iterations must be a multiple of eval_every, but got "
                f"iterations={self.iterations} and eval_every={self.eval_every}"
            )

    def _check_framework(self) -> None:
        if self.framework == "tensorflow":
            return
        counted = _DATA_PARALLEL.fullmatch(self.backend) if self.framework == "jax" else None
        if self.backend not in _SINGLE_DEVICE and counted is None:
            also = ", or cpu:N and gpu:N (keras.distribution's DataParallel)" if self.framework == "jax" else ""
            raise ConfigError(
                f"framework={self.framework} trains on backend cpu or gpu (or auto){also}; backend={self.backend} "
                "is a tf.distribute strategy: use framework=tensorflow for it"
            )
        if counted is not None:  # every batch is split evenly over the N devices
            n = int(counted.group(2))
            for key in ("batch_size", "eval_batch_size"):
                value = getattr(self, key)
                if value % n:
                    raise ConfigError(
                        f"backend={self.backend} on JAX splits every batch over {n} devices: {key} must be a "
                        f"multiple of {n}, but got {key}={value}"
                    )
        if not _framework.installed(self.framework):
            raise ConfigError(
                f"framework={self.framework} needs the {self.framework} package, which is not installed here: "
                f"pip install '{_framework.INSTALL[self.framework]}'"
            )
