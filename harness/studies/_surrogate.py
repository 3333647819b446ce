"""A recorded landscape as an objective: exact lookups where a point was recorded, a surrogate elsewhere.

The surrogate is a scikit-learn random forest on the parameters' positions on their sampling scales
(log where the space samples log; a categorical's index), as kurobako's surrogate problems and
HPOBench's surrogate benchmarks use: it needs no kernel or noise model, handles categorical and
integer parameters and flat regions, and never predicts outside the recorded range of values (a
GP extrapolates smoothly into objective values no real run reached). A second forest predicts the
trial's training time (on its log), and its cost is that time at the recorded price per second.

Fidelity is measured, not assumed (:func:`fidelity`): out-of-fold predictions of a K-fold split of
the recorded trials, scored by Kendall's τ (does the surrogate order points as the real runs did?)
and R² (how much of the variance between points it explains).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.studies._landscape import to_unit
from harness.studies._space import OptunaValue, SearchSpace

TREES = 200
FOLDS = 5


def point_key(point: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A recorded point's identity: Optuna names and values (floats to 12 significant digits)."""
    return tuple(sorted((k, float(f"{v:.12g}") if isinstance(v, float) else v) for k, v in point.items()))


@dataclasses.dataclass(frozen=True)
class Recorded:
    """The completed trials of a landscape, parameters as Optuna sees them."""

    points: tuple[dict[str, OptunaValue], ...]
    objective: np.ndarray
    time_s: np.ndarray
    cost_usd: np.ndarray  # nan where no price was known

    def __len__(self) -> int:
        return len(self.points)


def features(space: SearchSpace, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
    rows = [[to_unit(p, point[p.optuna_name]) for p in space.params] for point in points]
    return np.ascontiguousarray(rows, dtype=np.float32)


def _forest(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=TREES, random_state=seed).fit(x, y)


def _predict(forest: Any, x: np.ndarray) -> float:
    # the trees' own predict without input checks: a replay asks one point at a time, thousands of
    # times, and the forest's predict spends milliseconds per call on validation and thread pools
    return float(np.mean([tree.predict(x, check_input=False) for tree in forest.estimators_]))


@dataclasses.dataclass(frozen=True)
class Answer:
    value: float
    time_s: float
    cost_usd: float
    exact: bool  # a recorded point (looked up), not a prediction


class Surrogate:
    """``surrogate(point)`` -> the recorded answer for a recorded point, else the forests' prediction."""

    def __init__(self, space: SearchSpace, recorded: Recorded, seed: int = 0) -> None:
        self.space = space
        x = features(space, recorded.points)
        self._objective = _forest(x, recorded.objective, seed)
        self._log_time = _forest(x, np.log(np.maximum(recorded.time_s, 1e-6)), seed)
        rate = recorded.cost_usd / np.maximum(recorded.time_s, 1e-9)
        self.usd_per_s = float(np.nanmedian(rate)) if np.isfinite(rate).any() else math.nan
        self._table = {
            point_key(p): Answer(float(v), float(t), float(c), True)
            for p, v, t, c in zip(recorded.points, recorded.objective, recorded.time_s, recorded.cost_usd, strict=True)
        }

    def __call__(self, point: Mapping[str, Any]) -> Answer:
        known = self._table.get(point_key(point))
        if known is not None:
            return known
        x = features(self.space, [point])
        time_s = math.exp(_predict(self._log_time, x))
        return Answer(_predict(self._objective, x), time_s, time_s * self.usd_per_s, False)


@dataclasses.dataclass(frozen=True)
class Fidelity:
    n: int
    folds: int
    kendall_tau: float
    kendall_p: float
    r2: float
    time_kendall_tau: float
    time_r2: float
    worst_recorded: float  # the held-out point the forest got most wrong: its real objective ...
    worst_predicted: float  # ... and the forest's out-of-fold prediction of it


def fidelity(space: SearchSpace, recorded: Recorded, seed: int = 0, folds: int = FOLDS) -> Fidelity:
    """Out-of-fold predictions of the objective and time on recorded trials the forest was not fitted on."""
    from scipy.stats import kendalltau
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    x = features(space, recorded.points)
    y, log_t = recorded.objective, np.log(np.maximum(recorded.time_s, 1e-6))
    k = min(folds, len(recorded))
    pred_y, pred_t = np.empty_like(y, dtype=float), np.empty_like(log_t, dtype=float)
    for train, test in KFold(n_splits=k, shuffle=True, random_state=seed).split(x):
        pred_y[test] = _forest(x[train], y[train], seed).predict(x[test])
        pred_t[test] = _forest(x[train], log_t[train], seed).predict(x[test])
    tau = kendalltau(y, pred_y)
    worst = int(np.argmax(np.abs(y - pred_y)))
    time_tau = kendalltau(log_t, pred_t)
    return Fidelity(
        n=len(recorded),
        folds=k,
        kendall_tau=float(tau.statistic),
        kendall_p=float(tau.pvalue),
        r2=float(r2_score(y, pred_y)),
        time_kendall_tau=float(time_tau.statistic),
        time_r2=float(r2_score(log_t, pred_t)),
        worst_recorded=float(y[worst]),
        worst_predicted=float(pred_y[worst]),
    )
