"""Tabular binary classification: rows of mixed columns in, P(positive class) out.

The model carries its own normalisation and takes each category as its index in
the training vocabulary (``TabularSchema.encode``: no string tensors, so it trains
on every framework): a dict of ``[N, 1]`` column arrays in training; served, a
DataFrame of raw values, looked up by the same rule (``executor._frame_model``,
which ships ``models/_vocabulary.py``; :meth:`input_vocabularies`). It ends in a sigmoid: the
probability of class 1 (adult: income ``>50K``) is what a served model answers.
Reported beside accuracy: AUC, precision and recall of class 1 (``+`` in reports), and the
majority-class baseline (the accuracy of always answering the most frequent
training label), the number every tabular result should be read against. AUC, precision and
recall are undefined (not 0) where the test set has one class or nothing is predicted positive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.config import Config
from harness.errors import DataError
from harness.tasks._base import Column, Direction, ServedFlavour, Task, register_task, require_two_classes

if TYPE_CHECKING:
    import keras

    from harness.data import ArrayDataset, TabularDataset
    from harness.models import TabularSchema


def _table(data: ArrayDataset) -> TabularDataset:
    from harness.data import TabularDataset

    if not isinstance(data, TabularDataset):
        raise TypeError(f"task 'tabular' needs a table (a TabularDataset), but dataset {data.name!r} is not one")
    return data


def _schema(table: TabularDataset) -> TabularSchema:
    """Each column's training statistics: nothing of the test split leaks into the model."""
    from harness.models import ColumnStats, TabularSchema

    stats = []
    for col in table.columns:
        values = table.x_train[col.name]
        if col.kind == "numeric":
            v = values.astype(np.float64)
            stats.append(ColumnStats(col.name, "numeric", float(v.mean()), float(max(v.var(), 1e-12))))
        else:
            counts = Counter(values.tolist())
            vocab = tuple(sorted(counts, key=lambda k: (-counts[k], k)))
            stats.append(ColumnStats(col.name, "categorical", vocabulary=vocab))
    return TabularSchema(tuple(stats))


@register_task
class Tabular(Task):
    name: ClassVar[str] = "tabular"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy", "auc", "precision", "recall")
    directions: ClassVar[Mapping[str, Direction]] = {
        "loss": "minimize",
        "accuracy": "maximize",
        "auc": "maximize",
        "precision": "maximize",
        "recall": "maximize",
    }
    primary: ClassVar[str] = "accuracy"
    percent: ClassVar[frozenset[str]] = frozenset({"accuracy", "auc", "precision", "recall"})
    examples: ClassVar[str] = "rows"
    undefined_when: ClassVar[Mapping[str, str]] = {
        "auc": "one class in the {split} set",
        "precision": "no positive predictions",
        "recall": "no positives in the {split} set",
    }

    def check_data(self, data: ArrayDataset, cfg: Config) -> None:
        """Both classes among the training rows, and finite numbers in every numeric column (a NaN or an
        infinity would only show up later, as a NaN loss)."""
        table = _table(data)
        require_two_classes(table, cfg, table.class_names)
        for split, x in (("training", table.x_train), ("test", table.x_test)):
            for col in table.columns:
                if col.kind != "numeric":
                    continue
                bad = np.flatnonzero(~np.isfinite(x[col.name].astype(np.float64)))
                if bad.size:
                    raise DataError(
                        f"{data.source}: column {col.name} must hold finite numbers, but {split} row "
                        f"{int(bad[0]) + 1} holds {x[col.name][bad[0]]} (dataset {data.name!r})"
                    )

    def outputs(self, data: ArrayDataset, cfg: Config) -> Any:
        """The schema (columns with training statistics and vocabularies): the model's inputs and head."""
        table = _table(data)
        if table.num_classes != 2:
            raise ValueError(f"task 'tabular' is binary, but {data.name!r} has {table.num_classes} classes")
        return _schema(table)

    def loss(self, cfg: Config) -> keras.losses.Loss:
        import keras

        reduction = "sum" if cfg.optim.loss_reduction == "sum" else "sum_over_batch_size"
        return keras.losses.BinaryCrossentropy(reduction=reduction)

    def metrics(self, cfg: Config, data: ArrayDataset) -> list[keras.metrics.Metric]:
        import keras

        from harness.tasks._metrics import DefinedAUC, DefinedPrecision, DefinedRecall

        return [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            DefinedAUC(name="auc", num_thresholds=1000),  # NaN, not Keras' 0, where undefined
            DefinedPrecision(name="precision"),
            DefinedRecall(name="recall"),
        ]

    def train_dataset(self, data: ArrayDataset, cfg: Config) -> Any:
        from harness.data import train_pipeline

        table = _table(data)
        x = _schema(table).encode(table.features(data.x_train))
        return train_pipeline(x, data.y_train.astype(np.float32).reshape(-1, 1), cfg.run.batch_size, cfg.run.seed)

    def eval_dataset(self, data: ArrayDataset, cfg: Config) -> Any:
        from harness.data import eval_pipeline

        table = _table(data)
        x = _schema(table).encode(table.features(data.x_test))
        return eval_pipeline(x, data.y_test.astype(np.float32).reshape(-1, 1), cfg.run.eval_batch_size)

    served_flavour: ClassVar[ServedFlavour] = "rows"  # raw rows in: the model's preprocessing layers read them

    def example_input(self, data: ArrayDataset) -> Any:
        """Two raw test rows as a DataFrame: the served model's input (and its MLflow signature)."""
        return _table(data).frame(data.x_test[:2])

    def input_vocabularies(self, data: ArrayDataset) -> dict[str, list[str]]:
        return _schema(_table(data)).vocabularies()

    def served_output(self, outputs: Any, data: ArrayDataset) -> tuple[Any, str]:
        names: tuple[str, ...] = getattr(data, "class_names", ())
        positive = f" ({names[1]})" if len(names) == 2 else ""
        return outputs, f"one column, probability: P(class 1{positive}), float32 in [0, 1]"

    def evaluate(self, model: keras.Model, data: ArrayDataset, cfg: Config) -> dict[str, float]:
        """The majority-class baseline on the test split (the most frequent *training* label)."""
        majority = int(np.bincount(data.y_train, minlength=2).argmax())
        return {"majority_accuracy": float(np.mean(data.y_test == majority))}

    def report_columns(self) -> tuple[Column, ...]:
        return (
            Column("accuracy %", "final_test_accuracy", percent=True),
            Column("best acc %", "best_test_accuracy", percent=True),  # what the Δ column compares
            Column("AUC %", "final_test_auc", percent=True),
            Column("precision+ %", "final_test_precision", percent=True),
            Column("recall+ %", "final_test_recall", percent=True),
            Column("majority %", "majority_accuracy", percent=True, optional=True, baseline="majority-class baseline"),
        )
