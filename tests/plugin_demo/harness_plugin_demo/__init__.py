"""A harness plug-in: a regression task, a noisy linear dataset and a one-hidden-layer model.

Installed, it is found through its ``harness.plugins`` entry point (``register`` below),
so that ``harness ladder``, ``harness study`` (its worker processes too) and
``harness report`` know the three names with no edit to harness. ``seam_ladder.yaml``
beside this file is a two-rung ladder over them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.config import Config, DataParams, ModelParams, TaskParams, check
from harness.data import ArrayDataset, register_dataset
from harness.models import register_model
from harness.tasks import Column, Direction, Task, register_task

TASK = "regression-demo"
DATASET = "linear-demo"
MODEL = "linear-demo"
LADDER = "seam-demo"  # the ladder's name (its MLflow experiment is ladder/seam-demo)
SPACE = "seam-demo"  # the search space's name (its study: seam-demo-random)
STUDY = f"{SPACE}-random"
N_TRAIN, N_TEST, N_FEATURES = 512, 128, 8
TRIALS = 3
LADDER_FILE = Path(__file__).with_name("seam_ladder.yaml")


@dataclasses.dataclass(frozen=True)
class RegressionDemoParams(TaskParams):
    name: str = TASK


class RegressionDemo(Task):
    """Least squares on one real output; R² is the metric that matters."""

    name: ClassVar[str] = TASK
    params: ClassVar[type[TaskParams]] = RegressionDemoParams
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "r2")
    directions: ClassVar[Mapping[str, Direction]] = {"loss": "minimize", "r2": "maximize"}
    primary: ClassVar[str] = "r2"

    def outputs(self, data: ArrayDataset, cfg: Config) -> int:
        return 1

    def loss(self, cfg: Config) -> Any:
        import keras

        return keras.losses.MeanSquaredError()

    def metrics(self, cfg: Config, data: ArrayDataset) -> list[Any]:
        import keras

        return [keras.metrics.R2Score(name="r2")]

    def report_columns(self) -> tuple[Column, ...]:
        return (Column("final R²", "final_test_r2"), Column("best R²", "best_test_r2"))


@dataclasses.dataclass(frozen=True)
class LinearDemoData(DataParams):
    name: str = DATASET
    noise: float = 0.1  # stddev of the Gaussian noise added to y

    def check(self) -> None:
        super().check()
        check(self.noise, self.noise >= 0, "noise", ">= 0")


def linear_demo_arrays(noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic float32 x [N, 8] and y = x·w + noise, y as [N, 1]."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_TRAIN + N_TEST, N_FEATURES)).astype(np.float32)
    w = np.linspace(-1.0, 1.0, N_FEATURES, dtype=np.float32)
    y = (x @ w + noise * rng.normal(size=N_TRAIN + N_TEST)).astype(np.float32)[:, None]
    return x, y


def load_linear_demo(data_dir: Path | None, params: LinearDemoData) -> ArrayDataset:
    x, y = linear_demo_arrays(params.noise)
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    return ArrayDataset(
        name=DATASET,
        x_train=x[:N_TRAIN],
        y_train=y[:N_TRAIN],
        x_test=x[N_TRAIN:],
        y_test=y[N_TRAIN:],
        num_classes=0,
        checksum=digest,
        source=f"generated (noise={params.noise})",
    )


@dataclasses.dataclass(frozen=True)
class LinearDemoModel(ModelParams):
    name: str = MODEL
    hidden: int = 8  # units of the one hidden layer

    def check(self) -> None:
        check(self.hidden, self.hidden > 0, "hidden", "> 0")


def linear_demo_model(p: LinearDemoModel, input_shape: tuple[int, ...], outputs: int) -> Any:
    import keras

    inputs = keras.Input(shape=input_shape, name="x")
    x = keras.layers.Dense(p.hidden, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(outputs, name="y")(x), name="linear_demo")


def register() -> None:
    """The entry point: register the task, the dataset and the model with harness's public decorators."""
    register_task(RegressionDemo)
    register_dataset(DATASET, params=LinearDemoData, tasks=(TASK,))(load_linear_demo)
    register_model(MODEL, params=LinearDemoModel, tasks=(TASK,))(linear_demo_model)


def space_yaml(ladder_file: Path = LADDER_FILE, trials: int = TRIALS) -> str:
    """A search space over the ladder's ``wide`` rung at smoke scale (random sampler, R² maximised)."""
    return textwrap.dedent(
        f"""\
        name: {SPACE}
        experiment: {{ladder: {ladder_file}, rung: wide, scale: smoke}}
        objective: {{metric: r2}}
        budget: {{max_trials: {trials}}}
        sampler: random
        params:
          lr0: {{type: float, low: 0.005, high: 0.05, log: true}}
          hidden: {{type: int, low: 2, high: 16}}
        """
    )
