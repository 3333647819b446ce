"""Classification: softmax cross-entropy on logits, accuracy; precision and recall on 2 classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import Config
from harness.tasks._base import Column, Direction, Row, Task, register_task, require_two_classes

if TYPE_CHECKING:
    import keras

    from harness.data import ArrayDataset


@register_task
class Classification(Task):
    """Labels are class indices; the model outputs one logit per class.

    ``loss`` in the rows is the *mean* cross-entropy whatever reduction trains the
    model (``loss_reduction: sum`` is the talk's first rung), so losses compare
    across rungs. The reference trainers report the mean cross-entropy x 100
    (their Cloud ML Engine ``loss`` tag): :attr:`reference_scales` says so, and a
    study tuning ``loss`` shows that scale beside harness's.
    """

    name: ClassVar[str] = "classification"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy", "precision", "recall")
    directions: ClassVar[Mapping[str, Direction]] = {
        "loss": "minimize",
        "accuracy": "maximize",
        "precision": "maximize",
        "recall": "maximize",
    }
    primary: ClassVar[str] = "accuracy"
    percent: ClassVar[frozenset[str]] = frozenset({"accuracy", "precision", "recall"})
    reference_scales: ClassVar[Mapping[str, float]] = {"loss": 100.0}
    log_names: ClassVar[Mapping[str, str]] = {"xent": "loss"}
    undefined_when: ClassVar[Mapping[str, str]] = {
        "precision": "no positive predictions",
        "recall": "no positives in the {split} set",
    }

    def check_data(self, data: ArrayDataset, cfg: Config) -> None:
        require_two_classes(data, cfg)

    def outputs(self, data: ArrayDataset, cfg: Config) -> int:
        return data.num_classes

    def loss(self, cfg: Config) -> keras.losses.Loss:
        import keras

        reduction = "sum" if cfg.optim.loss_reduction == "sum" else "sum_over_batch_size"
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)

    def metrics(self, cfg: Config, data: ArrayDataset) -> list[keras.metrics.Metric]:
        import keras

        from harness.tasks._metrics import PositiveClassPrecision, PositiveClassRecall

        metrics: list[keras.metrics.Metric] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if cfg.optim.loss_reduction == "sum":
            # Keras' "loss" is then the batch sum: the mean cross-entropy is one more metric on every step.
            # Otherwise "loss" is that mean already (no model here adds regularisation losses), at no cost.
            metrics.append(keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent"))
        if data.num_classes == 2:  # imbalanced detection tiles: precision and recall of the positive class
            metrics += [PositiveClassPrecision(name="precision"), PositiveClassRecall(name="recall")]
        return metrics

    def served_output(self, outputs: Any, data: ArrayDataset) -> tuple[Any, str]:
        """Class probabilities: the softmax of the trained logits (float32 under any precision)."""
        import keras

        probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(outputs)
        return probabilities, (
            f"class probabilities, float32 [batch, {data.num_classes}]: column i is P(class i), each row "
            "sums to 1 (the softmax of the trained logits); the predicted class is the argmax"
        )

    def report_columns(self) -> tuple[Column, ...]:
        return (
            Column("final acc %", "final_test_accuracy", percent=True),
            Column("best acc %", "best_test_accuracy", percent=True),
            Column("precision %", "final_test_precision", percent=True, optional=True),
            Column("recall %", "final_test_recall", percent=True, optional=True),
        )

    def style_panel(self, ax: Any, metric: str, history: Sequence[Row]) -> None:
        if metric == "accuracy":  # the talk's zoom near the top
            low = min(row["test_accuracy"] for row in history)
            ax.set_ylim(max(0.0, min(low, 0.9)), 1.0)
            ax.set_title("accuracy")
        else:
            ax.set_title("cross-entropy (mean)")
