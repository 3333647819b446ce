"""Evaluation-only metrics (``EvalGate``): updated on every evaluation batch and on no training batch,
under Keras' own ``fit`` (graph and XLA), with the values an always-on copy of the same metric gives
at evaluation; and a ``model.evaluate`` after training computes them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from harness.train._eval_only import EvalGate  # noqa: E402  (after the skip)


class Seen(keras.metrics.Metric):
    """How many examples it was updated with: a metric whose value says when it ran."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.n = self.add_variable(shape=(), initializer="zeros", name="n")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self.n.assign_add(keras.ops.cast(keras.ops.shape(y_true)[0], "float32"))

    def result(self) -> Any:
        return self.n * 1.0  # a value, not the variable (which the next evaluation resets)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_an_eval_only_metric_runs_on_evaluation_batches_only(jit_compile: bool) -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 3)).astype("float32"), rng.normal(size=(24, 1)).astype("float32")
    x_val, y_val = x[:10], y[:10]
    gate = EvalGate()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(
        optimizer="sgd",
        loss="mse",
        metrics=[Seen("always"), gate.wrap(Seen("at_eval")), keras.metrics.MeanAbsoluteError(name="mae")],
        jit_compile=jit_compile,
    )
    fitted = model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        validation_data=(x_val, y_val),
        validation_batch_size=4,
        callbacks=[gate],
        verbose=0,
    )
    h = fitted.history
    assert h["always"] == [24.0] * 3  # the always-on copy saw every training example
    assert h["at_eval"] == [0.0] * 3  # the gated one none
    assert h["val_always"] == h["val_at_eval"] == [10.0] * 3  # and both every evaluation example
    after = model.evaluate(x_val, y_val, batch_size=4, return_dict=True, verbose=0)
    assert after["at_eval"] == after["always"] == 10.0  # the gate is open again after training


def test_a_wrapped_metric_gives_its_own_value_at_evaluation() -> None:
    """The wrapper changes when a metric runs, never what it computes."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    gate = EvalGate()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(
        optimizer="adam",
        loss="mse",
        metrics=[
            keras.metrics.MeanAbsoluteError(name="mae"),
            gate.wrap(keras.metrics.MeanAbsoluteError(name="mae_eval")),
        ],
    )
    h = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x[:16], y[:16]), callbacks=[gate], verbose=0).history
    assert h["val_mae_eval"] == pytest.approx(h["val_mae"])
    assert all(v == 0.0 for v in h["mae_eval"])  # MeanAbsoluteError of nothing: Keras' 0
