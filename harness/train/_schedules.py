"""Learning-rate schedules: the talk's decay to a floor, and Keras' warm-up + cosine (a one-cycle)."""

from __future__ import annotations

from typing import Any

import keras

from harness.config import OptimParams


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


def learning_rate(optim: OptimParams, iterations: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The schedule of ``optim`` over a run of ``iterations`` steps.

    ``exp_decay``: a constant ``lr0`` when ``lr2 == 0``, else the talk's decay.
    ``warmup_cosine``: lr1 -> lr0 linearly over ``warmup`` of the run, then a cosine to lr1.
    """
    if optim.schedule == "warmup_cosine":
        warmup = int(optim.warmup * iterations)
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=optim.lr1 if warmup else optim.lr0,
            decay_steps=max(iterations - warmup, 1),
            alpha=optim.lr1 / optim.lr0,
            warmup_target=optim.lr0 if warmup else None,
            warmup_steps=warmup,
        )
    return optim.lr0 if optim.lr2 == 0 else ExpDecayToFloor(optim.lr0, optim.lr1, optim.lr2)
