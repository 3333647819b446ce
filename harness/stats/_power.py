"""How many repeats would detect an observed effect: the power of the t-test from the noncentral t
(scipy.stats.nct), scaled by the asymptotic relative efficiency of the rank tests harness runs
(3/π for Wilcoxon and Mann-Whitney against the t-test on normal data), and never below the smallest
sample at which the exact rank test can reach alpha at all.

``tests/test_stats.py`` checks the estimate against a simulation of the rank test itself.
"""

from __future__ import annotations

import math

import numpy as np

POWER = 0.8
MAX_REPEATS = 1_000_000
RANK_EFFICIENCY = 3.0 / math.pi  # Wilcoxon / Mann-Whitney vs the t-test, normal data (Pitman ARE)


def _t_power(n: int, effect: float, alpha: float, paired: bool) -> float:
    from scipy import stats

    if paired:
        df, nc = n - 1, effect * math.sqrt(n)
    else:
        df, nc = 2 * n - 2, effect * math.sqrt(n / 2.0)
    crit = stats.t.ppf(1.0 - alpha / 2.0, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def _t_repeats(effect: float, alpha: float, paired: bool, power: float) -> int:
    """The smallest n (per group) at which a two-sided t-test has ``power``; doubling, then bisection."""
    lo, hi = 2, 2
    while _t_power(hi, effect, alpha, paired) < power:
        lo, hi = hi, hi * 2
        if hi > MAX_REPEATS:
            return MAX_REPEATS
    while lo < hi:
        mid = (lo + hi) // 2
        if _t_power(mid, effect, alpha, paired) >= power:
            hi = mid
        else:
            lo = mid + 1
    return hi


def smallest_testable(alpha: float, paired: bool) -> int:
    """The fewest repeats (per group) at which the exact two-sided rank test can give p < alpha."""
    n = 2
    while (2.0 / 2**n if paired else 2.0 / math.comb(2 * n, n)) >= alpha:
        n += 1
    return n


def standardized_effect(x: np.ndarray, y: np.ndarray, paired: bool) -> float:
    """Cohen's d_z (paired: mean difference / sd of differences) or d (pooled sd); inf for a constant shift."""
    if paired:
        d = x - y
        mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
    else:
        mean = float(np.mean(x) - np.mean(y))
        pooled = ((len(x) - 1) * np.var(x, ddof=1) + (len(y) - 1) * np.var(y, ddof=1)) / (len(x) + len(y) - 2)
        sd = float(math.sqrt(pooled))
    if mean == 0:
        return 0.0
    return math.inf if sd == 0 else abs(mean) / sd


def repeats_needed(x: np.ndarray, y: np.ndarray, *, paired: bool, alpha: float, power: float = POWER) -> int | None:
    """Repeats per group for the rank test to detect the observed standardized effect with ``power``;
    None where there is no effect to detect or the values are censored."""
    if len(x) < 2 or len(y) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    effect = standardized_effect(x, y, paired)
    if effect == 0:
        return None
    floor = smallest_testable(alpha, paired)
    if math.isinf(effect):
        return floor
    n_t = _t_repeats(effect, alpha, paired, power)
    return min(MAX_REPEATS, max(floor, math.ceil(n_t / RANK_EFFICIENCY)))
