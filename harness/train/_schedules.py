"""The talk's learning-rate schedule as a Keras schedule."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="harness")
class ExpDecayToFloor(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(step) = lr1 + lr0 * exp(-step / lr2)``: decays from lr0+lr1 towards the floor lr1."""

    def __init__(self, lr0: float, lr1: float, lr2: float) -> None:
        if lr2 <= 0:
            raise ValueError(f"lr2 must be > 0 steps, but got {lr2=}")
        self.lr0, self.lr1, self.lr2 = float(lr0), float(lr1), float(lr2)

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        return self.lr1 + self.lr0 * keras.ops.exp(-step / self.lr2)

    def get_config(self) -> dict[str, float]:
        return {"lr0": self.lr0, "lr1": self.lr1, "lr2": self.lr2}


def learning_rate(lr0: float, lr1: float, lr2: float) -> float | ExpDecayToFloor:
    """A constant ``lr0`` when ``lr2 == 0``, else the decaying schedule."""
    return lr0 if lr2 == 0 else ExpDecayToFloor(lr0, lr1, lr2)
