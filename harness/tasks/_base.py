"""What a task is, and the registry of tasks.

A task owns everything that differs between kinds of experiment: the model's
output size, its loss and Keras metrics, the ``tf.data`` pipelines, the names of
the metrics each evaluation emits, the primary metric and its direction, how
best and final values are summarised, the objectives a study may optimise, the
columns of its report and its learning-curve figure. The training loop, the
metric recorder, studies and reports ask the task; none of them names a metric.

Per-evaluation rows hold ``train_<m>`` and ``test_<m>`` for every metric ``m`` in
:attr:`Task.metric_names` (``loss`` included), plus ``lr`` and ``wall_s``.
:meth:`Task.summarize` turns the rows into ``final_<split>_<m>``,
``best_test_<primary>``, ``best_step`` and ``steps``.

A metric can be undefined for the data (AUC with one class among the labels,
precision with nothing predicted positive): its Keras metric answers NaN, and
:meth:`Task.split_undefined` sets it apart with the reason from
:attr:`Task.undefined_when`, so that it is never logged (nor reported) as a number.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import numpy as np

from harness.config import Config, TaskParams, register_params
from harness.errors import ConfigError, DataError
from harness.registry import Registry

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from harness.data import ArrayDataset

Direction = Literal["maximize", "minimize"]
# how the MLflow model of a run is served: "keras", the Keras flavour on the tensors of example_input
# (an array); "rows", a pyfunc from code on DataFrames of raw rows (example_input is such a DataFrame)
ServedFlavour = Literal["keras", "rows"]
Row = Mapping[str, float]
# a run's tag ``harness.undefined.<final metric>`` holds why that metric has no value (reports show it)
UNDEFINED_TAG = "harness.undefined."
_SPLITS = {"train": "training", "test": "test"}


@dataclasses.dataclass(frozen=True)
class Objective:
    """A value a study can optimise: a final metric and its per-evaluation twin (for pruning)."""

    name: str  # as users write it: accuracy, loss, best_test_accuracy, IOU ...
    final_key: str  # key of the final metrics, e.g. final_test_accuracy
    step_key: str  # key of the per-evaluation rows, e.g. test_accuracy
    direction: Direction
    running_best: bool = False  # the intermediate value is the best so far (best_* objectives)
    reference_scale: float = 1.0  # the reference trainer's scale of this value (its loss is x 100)


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a ladder report: a final metric, aggregated over seeds."""

    header: str
    metric: str  # key of the final metrics (MLflow metric name)
    percent: bool = False  # shown x 100 with two decimals
    optional: bool = False  # shown only when some run logged it
    # a baseline of the best metric (what a trivial rule scores on the same data): its name, drawn as a
    # line across the ladder's bar chart; "" = an ordinary column
    baseline: str = ""


class Task:
    """Base class: override what differs. Register subclasses with :func:`register_task`."""

    name: ClassVar[str] = ""
    params: ClassVar[type[TaskParams]] = TaskParams
    metric_names: ClassVar[tuple[str, ...]] = ("loss",)  # per-evaluation metrics, "loss" first
    directions: ClassVar[Mapping[str, Direction]] = {"loss": "minimize"}
    primary: ClassVar[str] = "loss"  # what "best" and the ladder's reference refer to
    percent: ClassVar[frozenset[str]] = frozenset()  # metrics shown as percentages
    # metrics computed on evaluation batches only (a ``test_`` value, no ``train_`` one), where the
    # reference defines them on evaluation data only (detection's IoU)
    eval_only: ClassVar[frozenset[str]] = frozenset()
    reference_scales: ClassVar[Mapping[str, float]] = {}
    examples: ClassVar[str] = "examples"  # what one training example is called in reports (tiles, rows)
    # the Keras backends its loss, metrics and pipelines run on, where not every one (None)
    frameworks: ClassVar[tuple[str, ...] | None] = None
    # metric -> why it can be undefined ("{split}": training or test); a NaN of another metric stays a number
    undefined_when: ClassVar[Mapping[str, str]] = {}
    served_flavour: ClassVar[ServedFlavour] = "keras"  # see ServedFlavour; example_input matches it
    finds_boxes: ClassVar[bool] = False  # its model finds boxes on whole images (image_boxes; detect-boxes)

    # --- model and training --------------------------------------------------------------

    def outputs(self, data: ArrayDataset, cfg: Config) -> Any:
        """What the model's head must produce: a width (classification), a head spec (detection)."""
        raise NotImplementedError

    def loss(self, cfg: Config) -> keras.losses.Loss:
        raise NotImplementedError

    def metrics(self, cfg: Config, data: ArrayDataset) -> list[keras.metrics.Metric]:
        """Keras metrics; each one's name is a row name (see :attr:`log_names`)."""
        return []

    log_names: ClassVar[Mapping[str, str]] = {}  # Keras metric name -> row name, where they differ

    def train_dataset(self, data: ArrayDataset, cfg: Config) -> tf.data.Dataset:
        from harness.data import train_pipeline

        return train_pipeline(data.x_train, data.y_train, cfg.run.batch_size, cfg.run.seed, cfg.data.augment)

    def eval_dataset(self, data: ArrayDataset, cfg: Config) -> tf.data.Dataset:
        from harness.data import eval_pipeline

        return eval_pipeline(data.x_test, data.y_test, cfg.run.eval_batch_size)

    def example_input(self, data: ArrayDataset) -> np.ndarray:
        """Two test inputs as the served (MLflow) model takes them: as the dataset holds them, so
        images are raw ``uint8`` pixels (the served model scales them itself; its signature)."""
        return data.x_test[:2]

    def input_vocabularies(self, data: ArrayDataset) -> Mapping[str, Sequence[str]]:
        """Input name -> the categories its integer index stands for (index ``i + 1``: ``vocabulary[i]``;
        0: any other), for a model of named columns (``served_flavour`` "rows"): its served model looks raw
        rows up in them (``harness.models._vocabulary``). None here."""
        return {}

    def served_output(self, outputs: Any, data: ArrayDataset) -> tuple[Any, str]:
        """The served model's output built on the trained model's symbolic ``outputs`` (a classifier
        adds its softmax), and what it means, in words (the MLflow model's metadata)."""
        return outputs, "the model's outputs as trained"

    def image_boxes(self, model: keras.Model, image: np.ndarray, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (image pixels, x1y1x2y2, ``[d, 4]``) and their scores (``[d]``) that a trained model
        finds on one whole uint8 image, for tasks whose :attr:`finds_boxes` (``harness detect-boxes``)."""
        raise NotImplementedError(f"task {self.name!r} finds no boxes on images")

    def evaluate(self, model: keras.Model, data: ArrayDataset, cfg: Config) -> dict[str, float]:
        """Final metrics measured once after training, beyond the per-evaluation ones (none here);
        NaN where undefined (see :attr:`undefined_when`)."""
        return {}

    def check_data(self, data: ArrayDataset, cfg: Config) -> None:
        """Refuse (:class:`DataError`) data this task cannot train on, before any run exists (none here)."""

    # --- what an evaluation means ---------------------------------------------------------

    def row(self, logs: Mapping[str, Any]) -> dict[str, float]:
        """Keras' epoch-end logs -> ``train_<m>``/``test_<m>`` for every metric of the task."""
        out: dict[str, float] = {}
        names = {k: k for k in logs if not k.startswith("val_")}
        names.update({row: k for k, row in self.log_names.items() if k in logs})  # xent, not Keras' "loss"
        for metric in self.metric_names:
            key = names.get(metric)
            if key is None or key not in logs or f"val_{key}" not in logs:
                continue  # an optional metric this data does not have (precision on 10 classes)
            if metric not in self.eval_only:
                out[f"train_{metric}"] = float(logs[key])
            out[f"test_{metric}"] = float(logs[f"val_{key}"])
        return out

    def better(self, metric: str) -> Callable[[Sequence[Row]], Row]:
        return max if self.directions.get(metric, "maximize") == "maximize" else min  # type: ignore[return-value]

    def summarize(self, history: Sequence[Row]) -> dict[str, float]:
        """Final values (last evaluation), and the best primary value and its step (among the
        evaluations where it is defined; NaN, and the last step, where it never was)."""
        last = history[-1]
        key = f"test_{self.primary}"
        defined = [row for row in history if not math.isnan(row[key])] or [{key: math.nan, "step": last["step"]}]
        best = self.better(self.primary)(defined, key=lambda row: row[key])  # type: ignore[call-arg]
        final = {f"final_{k}": v for k, v in last.items() if k.startswith(("train_", "test_"))}
        final[f"best_{key}"] = best[key]
        final["best_step"] = best["step"]
        final["steps"] = last["step"]
        return final

    def undefined_reason(self, key: str) -> str | None:
        """Why ``key`` (``test_auc``, ``final_test_auc``, ``best_test_iou``) can be undefined; None: it cannot."""
        split, _, metric = key.removeprefix("final_").removeprefix("best_").partition("_")
        reason = self.undefined_when.get(metric) if split in _SPLITS else None
        return None if reason is None else reason.format(split=_SPLITS[split])

    def split_undefined(self, values: Mapping[str, float]) -> tuple[dict[str, float], dict[str, str]]:
        """(the values that are numbers, {key: reason} for those undefined): a NaN of a metric that
        can be undefined is not a number to log; any other value (a NaN loss too) stays."""
        defined: dict[str, float] = {}
        undefined: dict[str, str] = {}
        for key, value in values.items():
            reason = self.undefined_reason(key) if math.isnan(value) else None
            if reason is None:
                defined[key] = value
            else:
                undefined[key] = reason
        return defined, undefined

    # --- studies and reports --------------------------------------------------------------

    def objectives(self) -> dict[str, Objective]:
        """Objective names a study may use (lower-case): ``m``, ``final_test_m``, ``best_test_<primary>``."""
        out: dict[str, Objective] = {}
        for m in self.metric_names:
            direction = self.directions.get(m, "maximize")
            scale = self.reference_scales.get(m, 1.0)
            for name in (m, f"final_test_{m}"):
                out[name.lower()] = Objective(name, f"final_test_{m}", f"test_{m}", direction, reference_scale=scale)
        p = self.primary
        best = f"best_test_{p}"
        out[best.lower()] = Objective(best, best, f"test_{p}", self.directions.get(p, "maximize"), running_best=True)
        return out

    def objective(self, name: Any, where: str) -> Objective:
        """The objective called ``name`` (case-insensitive), or an error listing this task's."""
        valid = self.objectives()
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: expected an objective name ({', '.join(valid)}), but got {name!r}")
        found = valid.get(name.strip().lower())
        if found is None:
            raise ConfigError(f"{where}: {name!r} is not an objective of task {self.name!r}; valid: {', '.join(valid)}")
        return found

    def target_key(self) -> str:
        """The per-evaluation value a target refers to (time to target, a benchmark's stop): ``test_<primary>``."""
        return f"test_{self.primary}"

    def reached(self, value: float, target: float) -> bool:
        """Whether ``value`` of the primary metric is at the target or past it, in its direction."""
        return value >= target if self.directions.get(self.primary, "maximize") == "maximize" else value <= target

    def report_columns(self) -> tuple[Column, ...]:
        """Final value of each metric, and the best primary value (what the talk quotes)."""
        cols = [
            Column(f"final {m}" + (" %" if m in self.percent else ""), f"final_test_{m}", m in self.percent)
            for m in self.metric_names
            if m != "loss"
        ]
        p = self.primary
        cols.append(Column(f"best {p}" + (" %" if p in self.percent else ""), f"best_test_{p}", p in self.percent))
        return tuple(cols)

    def curve_metrics(self) -> tuple[str, ...]:
        """The learning-curve panels: the primary metric, then the loss."""
        return tuple(dict.fromkeys((self.primary, "loss")))

    def learning_curve(self, history: Sequence[Row], title: str) -> Any:
        """Train and test value of each of :meth:`curve_metrics` against the training step."""
        import matplotlib

        matplotlib.use("Agg", force=False)  # headless; a no-op if a backend is already chosen
        from matplotlib.figure import Figure

        panels = [m for m in self.curve_metrics() if f"test_{m}" in history[0]]
        steps = [row["step"] for row in history]
        fig = Figure(figsize=(5 * len(panels), 3.8))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, metric in zip(axes, panels, strict=True):
            for split in ("train", "test"):
                if f"{split}_{metric}" in history[0]:  # an evaluation-only metric has no train curve
                    ax.plot(steps, [row[f"{split}_{metric}"] for row in history], label=split)
            self.style_panel(ax, metric, history)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(title)
        return fig

    def style_panel(self, ax: Any, metric: str, history: Sequence[Row]) -> None:
        ax.set_title(metric)


def require_two_classes(data: ArrayDataset, cfg: Config, class_names: Sequence[str] = ()) -> None:
    """A classifier cannot learn from training labels of one class: refuse them, naming the class."""
    n = cfg.data.train_subset
    labels = np.asarray(data.y_train[:n])
    if labels.size == 0 or np.any(labels != labels.flat[0]):
        return
    k = int(labels.flat[0])
    name = f"{k} ({class_names[k]})" if 0 <= k < len(class_names) else str(k)
    which = f"first {len(labels)} training examples (train_subset={n})" if n is not None else "training set"
    raise DataError(
        f"{data.source}: every label of the {which} is class {name}; a classifier needs examples of at "
        f"least two classes to learn from (dataset {data.name!r})"
    )


T = TypeVar("T", bound=type[Task])
TASKS: Registry[Task] = Registry("task")


def register_task(cls: T) -> T:
    """Class decorator: register a task under ``cls.name`` (and its parameter class)."""
    if not cls.name:
        raise ValueError(f"a task needs a name, but got {cls.name=}")
    register_params("task", cls.name, cls.params, frameworks=cls.frameworks)
    TASKS.add(cls.name, cls())
    return cls


def get_task(name: str) -> Task:
    """The registered task ``name``; an unknown name lists the valid ones."""
    return TASKS.get(name)


def list_tasks() -> list[str]:
    return TASKS.names()
