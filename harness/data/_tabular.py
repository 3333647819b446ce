"""Tables with mixed columns, held as numpy structured arrays.

``x`` is a structured array (one field per column: ``float32`` for numeric
columns, unicode for categorical ones) and ``y`` the ``int64`` class index, so a
table slices and subsets like any :class:`ArrayDataset`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from harness.data._base import ArrayDataset

Kind = Literal["numeric", "categorical"]


@dataclasses.dataclass(frozen=True)
class TableColumn:
    name: str
    kind: Kind


@dataclasses.dataclass(frozen=True)
class TabularDataset(ArrayDataset):
    """A table: ``x_*`` structured arrays with one field per column, ``y_*`` class indices."""

    columns: tuple[TableColumn, ...] = ()
    class_names: tuple[str, ...] = ()  # label values by class index (adult: "<=50K", ">50K")

    def features(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """A structured array as the model's named inputs: one ``[N, 1]`` array per column."""
        return {c.name: np.ascontiguousarray(x[c.name]).reshape(-1, 1) for c in self.columns}

    def frame(self, x: np.ndarray) -> object:
        """Rows as a pandas DataFrame of raw values (what the served model takes)."""
        import pandas as pd

        return pd.DataFrame(
            {c.name: x[c.name].astype(np.float64 if c.kind == "numeric" else str) for c in self.columns}
        )


def structured(columns: tuple[TableColumn, ...], data: dict[str, list[object]]) -> np.ndarray:
    """Column lists -> one structured array (numeric float32, categorical unicode)."""
    n = len(next(iter(data.values()))) if data else 0
    dtype: list[tuple[str, Any]] = []
    for c in columns:
        if c.kind == "numeric":
            dtype.append((c.name, np.float32))
        else:
            width = max((len(str(v)) for v in data[c.name]), default=1)
            dtype.append((c.name, f"U{max(width, 1)}"))
    out = np.empty(n, dtype=dtype)
    for c in columns:
        out[c.name] = data[c.name]
    return out
