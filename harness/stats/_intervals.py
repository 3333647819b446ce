"""Summaries of repeated measurements: mean ± standard error, a seeded bootstrap CI of the mean, an
order-statistic CI of the median, and Kaplan-Meier medians for "repeats to a target" that may never get there.

Everything comes from scipy.stats: ``bootstrap`` (BCa, seeded), ``sem``, ``quantile_test`` (the exact
binomial CI of the median, which needs at least 6 values for 95%) and ``ecdf`` on ``CensoredData``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 9_999


@dataclasses.dataclass(frozen=True)
class Interval:
    low: float
    high: float

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def __contains__(self, value: float) -> bool:
        return self.defined and self.low <= value <= self.high


NO_INTERVAL = Interval(math.nan, math.nan)


@dataclasses.dataclass(frozen=True)
class Summary:
    """Repeats of one measurement (seeds, sampler seeds, repetitions); nan where ``n`` is too small."""

    n: int
    mean: float
    sem: float  # standard error of the mean (ddof 1)
    sd: float
    mean_ci: Interval  # seeded bootstrap (BCa), 95%
    median: float
    median_ci: Interval  # exact order-statistic interval (binomial), 95%; undefined below 6 values

    @classmethod
    def empty(cls) -> Summary:
        return cls(0, math.nan, math.nan, math.nan, NO_INTERVAL, math.nan, NO_INTERVAL)


def finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray([float(v) for v in values], dtype=float)
    return x[np.isfinite(x)]


def bootstrap_ci(
    samples: tuple[np.ndarray, ...], statistic: Callable[..., Any], *, paired: bool = False, seed: int = 0
) -> Interval:
    """A seeded BCa bootstrap CI (scipy.stats.bootstrap) of a vectorized ``statistic(*samples, axis=...)``;
    a constant sample is its own CI."""
    from scipy import stats

    if any(len(s) < 2 for s in samples):
        return NO_INTERVAL
    if all(np.ptp(s) == 0 for s in samples):  # every resample gives the same value: BCa is undefined
        value = float(statistic(*samples, axis=-1))
        return Interval(value, value)
    for method in ("BCa", "percentile"):  # BCa is undefined on some tiny samples: then percentiles
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning on tiny samples: the interval says it
            res = stats.bootstrap(
                samples,
                statistic,
                paired=paired,
                vectorized=True,
                confidence_level=CONFIDENCE,
                n_resamples=RESAMPLES,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (math.isnan(low) or math.isnan(high)):
            break
    return Interval(low, high)


def mean_of(x: np.ndarray, axis: int = -1) -> Any:
    return np.mean(x, axis=axis)


def mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def summarize(values: Sequence[float], *, seed: int = 0) -> Summary:
    """Mean, standard error and CIs of the finite values (nan and inf are left out: see ``censored_summary``)."""
    from scipy import stats

    x = finite(values)
    n = len(x)
    if n == 0:
        return Summary.empty()
    mean, median = float(np.mean(x)), float(np.median(x))
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, NO_INTERVAL, median, NO_INTERVAL)
    sem = float(stats.sem(x))
    sd = float(np.std(x, ddof=1))
    median_ci = NO_INTERVAL
    if np.ptp(x) == 0:
        median_ci = Interval(median, median)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = stats.quantile_test(x, q=median, p=0.5).confidence_interval(CONFIDENCE)
        if math.isfinite(ci.low) and math.isfinite(ci.high):
            median_ci = Interval(float(ci.low), float(ci.high))
    return Summary(n, mean, sem, sd, bootstrap_ci((x,), mean_of, seed=seed), median, median_ci)


@dataclasses.dataclass(frozen=True)
class CensoredSummary:
    """Repeats that may not reach a target within a budget: "not reached" is right-censored at the budget.

    ``median`` and its CI are Kaplan-Meier (scipy.stats.ecdf on CensoredData): inf where fewer than half of
    the repeats reached the target, since the median then lies beyond the budget. ``restricted_mean`` counts
    a censored repeat as the budget, so it is a lower bound of the true mean (exact when all reached)."""

    n: int
    reached: int
    median: float
    median_ci: Interval
    restricted_mean: float
    restricted_sem: float

    @property
    def all_reached(self) -> bool:
        return self.n > 0 and self.reached == self.n


def censored_summary(values: Sequence[float], budget: float | Sequence[float]) -> CensoredSummary:
    """``values``: the count (or time) to the target per repeat; inf (or nan) where it was never reached,
    which is censored at ``budget``: the trials (or the time) each repeat had, one number or one per value."""
    from scipy import stats

    x = np.asarray([float(v) for v in values], dtype=float)
    n = len(x)
    hit = np.isfinite(x)
    reached = int(hit.sum())
    if n == 0:
        return CensoredSummary(0, 0, math.nan, NO_INTERVAL, math.nan, math.nan)
    limit = np.broadcast_to(np.asarray(budget, dtype=float), x.shape)
    capped = np.where(hit, x, limit)
    restricted_mean = float(np.mean(capped))
    restricted_sem = float(stats.sem(capped)) if n > 1 else math.nan
    if reached == 0:
        return CensoredSummary(
            n, 0, math.inf, Interval(float(np.min(limit)), math.inf), restricted_mean, restricted_sem
        )
    data = stats.CensoredData(uncensored=x[hit], right=limit[~hit])
    sf = stats.ecdf(data).sf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RuntimeWarning where the log-log interval is undefined
        band = sf.confidence_interval(CONFIDENCE, method="log-log")
    # fewer than half reached: the median lies beyond what was observed. (Kaplan-Meier's tail would still
    # drop below 0.5 where censoring times differ, e.g. each repeat's own total time, and the repeats still
    # at risk there are few: a median from them says more about the censoring than about the sampler.)
    median = _first_at_or_below(sf.quantiles, sf.probabilities, 0.5) if 2 * reached >= n else math.inf
    # the median's CI: the times where the band's upper / lower curve crosses 0.5 (Brookmeyer-Crowley)
    low = _first_at_or_below(band.low.quantiles, band.low.probabilities, 0.5)
    high = _first_at_or_below(band.high.quantiles, band.high.probabilities, 0.5)
    return CensoredSummary(n, reached, median, Interval(low, high), restricted_mean, restricted_sem)


def _first_at_or_below(times: np.ndarray, survival: np.ndarray, level: float) -> float:
    below = np.flatnonzero(np.nan_to_num(survival, nan=1.0) <= level + 1e-12)
    return float(times[below[0]]) if len(below) else math.inf
