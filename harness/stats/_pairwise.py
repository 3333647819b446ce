"""Pairwise tests between the groups of one table, with Holm's correction and a verdict per pair.

- Paired repeats (the same seeds on both sides: the comparison used common random numbers): Wilcoxon
  signed-rank on the differences; effect size the matched-pairs rank-biserial correlation.
- Unpaired repeats: Mann-Whitney U; effect size the rank-biserial correlation ``2U/(n1 n2) - 1``.
- Censored values (inf: a target never reached within the budget): unpaired, Mann-Whitney ranks every
  censored repeat above every observed one, tied among themselves (Gehan's test with one censoring time,
  which every repeat of a comparison shares); paired, a sign test (``binomtest``) on the pairs whose
  order is known, since a censored difference has no size to rank.

- One group against a fixed number (a reference quoted elsewhere): ``one_sample``/``one_samples``, the
  signed-rank test on ``values - reference`` (a sign test where values are censored).

The verdict: ``better`` or ``worse`` where Holm's adjusted p < alpha, else ``no significant difference``,
with the repeats a new experiment would need to detect the observed effect (:mod:`._power`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from harness.stats._intervals import NO_INTERVAL, Interval, bootstrap_ci, mean_difference, mean_of
from harness.stats._power import repeats_needed

ALPHA = 0.05
Verdict = Literal["better", "worse", "no significant difference", "not testable"]
NO_DIFFERENCE: Verdict = "no significant difference"


@dataclasses.dataclass(frozen=True)
class PairTest:
    """``a`` against ``b``: ``effect`` > 0 means ``a`` tends to be larger; the verdict is about ``a``."""

    a: str
    b: str
    n_a: int
    n_b: int
    paired: bool
    test: str  # wilcoxon | mann-whitney | sign | none
    statistic: float
    p: float
    p_holm: float
    effect: float  # rank-biserial correlation in [-1, 1]
    diff: float  # mean(a) - mean(b) (paired: mean of the differences); nan with censored values
    diff_ci: Interval
    verdict: Verdict
    needed: int | None  # repeats per group to detect the observed effect (power 0.8); None: not estimable
    note: str = ""  # why a pair could not be tested

    @property
    def significant(self) -> bool:
        return self.verdict in ("better", "worse")


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (nan stays nan and does not count as a hypothesis)."""
    indexed = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    indexed.sort()
    m = len(indexed)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def _paired_values(a: Mapping[Any, float], b: Mapping[Any, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(a) & set(b), key=str)
    return np.array([a[k] for k in keys], dtype=float), np.array([b[k] for k in keys], dtype=float)


def _mean_diff(x: np.ndarray, y: np.ndarray, paired: bool, seed: int) -> tuple[float, Interval]:
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return math.nan, NO_INTERVAL
    if paired:
        d = x - y
        return float(np.mean(d)), bootstrap_ci((d,), mean_of, seed=seed)
    return float(np.mean(x) - np.mean(y)), bootstrap_ci((x, y), mean_difference, seed=seed)


def _test(x: np.ndarray, y: np.ndarray, paired: bool) -> tuple[str, float, float, float]:
    """(test, statistic, p, rank-biserial effect of x over y)."""
    from scipy import stats

    censored = not (np.isfinite(x).all() and np.isfinite(y).all())
    if paired and censored:
        wins = int(np.sum(x > y))
        losses = int(np.sum(x < y))
        if wins + losses == 0:
            return "sign", 0.0, 1.0, 0.0
        res = stats.binomtest(wins, wins + losses, 0.5)
        return "sign", float(wins), float(res.pvalue), (wins - losses) / len(x)
    if paired:
        d = x - y
        nonzero = d[d != 0]
        if len(nonzero) == 0:
            return "wilcoxon", 0.0, 1.0, 0.0
        ranks = stats.rankdata(np.abs(nonzero))
        r_plus, r_minus = float(ranks[nonzero > 0].sum()), float(ranks[nonzero < 0].sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
        return "wilcoxon", float(res.statistic), float(res.pvalue), (r_plus - r_minus) / (r_plus + r_minus)
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    u = float(res.statistic)
    p = float(res.pvalue)
    return "mann-whitney", u, (1.0 if math.isnan(p) else p), 2.0 * u / (len(x) * len(y)) - 1.0


def _untested(a: str, b: str, n_a: int, n_b: int, paired: bool, note: str) -> PairTest:
    return PairTest(
        a,
        b,
        n_a,
        n_b,
        paired,
        "none",
        math.nan,
        math.nan,
        math.nan,
        0.0,
        math.nan,
        NO_INTERVAL,
        "not testable",
        None,
        note,
    )


def _tested(a: str, b: str, x: np.ndarray, y: np.ndarray, paired: bool, alpha: float, seed: int) -> PairTest:
    """``x`` against ``y``, before correction: ``p_holm`` and the verdict come from :func:`_corrected`."""
    test, statistic, p, effect = _test(x, y, paired)
    diff, ci = _mean_diff(x, y, paired, seed)
    needed = repeats_needed(x, y, paired=paired, alpha=alpha)
    return PairTest(a, b, len(x), len(y), paired, test, statistic, p, math.nan, effect, diff, ci, NO_DIFFERENCE, needed)


def _corrected(tests: Sequence[PairTest], higher_is_better: bool, alpha: float) -> list[PairTest]:
    """Holm across ``tests`` (one table's family), then each verdict; ``needed`` stays only where no
    significant difference was found (it says what it would take)."""
    out = []
    for t, p_holm in zip(tests, holm([t.p for t in tests]), strict=True):
        if t.test == "none":
            out.append(t)
            continue
        if p_holm < alpha and t.effect != 0:
            verdict: Verdict = "better" if (t.effect > 0) == higher_is_better else "worse"
        else:
            verdict = NO_DIFFERENCE
        out.append(
            dataclasses.replace(
                t, p_holm=p_holm, verdict=verdict, needed=t.needed if verdict == NO_DIFFERENCE else None
            )
        )
    return out


def pairwise(
    groups: Mapping[str, Mapping[Any, float]],
    *,
    higher_is_better: bool,
    paired: bool | None = None,
    alpha: float = ALPHA,
    seed: int = 0,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> list[PairTest]:
    """Every pair of ``groups`` (or the given ``pairs``), tested and corrected together (Holm).

    A group maps a repeat's key (seed) to its value; nan is dropped, inf is censored (never reached).
    ``paired``: None pairs two groups whose keys are the same (at least 2 of them), else uses every value.
    The repeats needed are estimated at alpha / (number of pairs), so that they hold under Holm.
    """
    chosen = list(pairs) if pairs is not None else list(itertools.combinations(groups, 2))
    tests = []
    for a, b in chosen:
        ga = {k: float(v) for k, v in groups[a].items() if not math.isnan(float(v))}
        gb = {k: float(v) for k, v in groups[b].items() if not math.isnan(float(v))}
        same_keys = set(ga) == set(gb) and len(ga) >= 2
        is_paired = same_keys if paired is None else (paired and same_keys)
        if is_paired:
            x, y = _paired_values(ga, gb)
        else:
            x, y = np.array(list(ga.values()), dtype=float), np.array(list(gb.values()), dtype=float)
        if len(x) < 2 or len(y) < 2:
            note = f"needs at least 2 repeats on each side, has {len(x)} and {len(y)}"
            tests.append(_untested(a, b, len(x), len(y), is_paired, note))
        else:
            tests.append(_tested(a, b, x, y, is_paired, alpha / max(1, len(chosen)), seed))
    return _corrected(tests, higher_is_better, alpha)


def winner(names: Sequence[str], tests: Sequence[PairTest]) -> str | None:
    """The one group significantly better than every other group, or None (then say "within noise")."""
    for name in names:
        beats = 0
        for t in tests:
            if (t.a == name and t.verdict == "better") or (t.b == name and t.verdict == "worse"):
                beats += 1
        if beats == len(names) - 1 and len(names) > 1:
            return name
    return None


def describe_verdict(t: PairTest) -> str:
    """``a`` vs ``b`` in words, with the corrected p-value and, for no difference, what it would take."""
    if t.verdict == "not testable":
        return f"{t.a} vs {t.b}: not testable ({t.note})"
    if t.significant:
        return f"{t.a} {t.verdict} than {t.b} (p = {format_p(t.p_holm)}, Holm)"
    needed = f"; about {t.needed} repeats each would detect the observed effect" if t.needed else ""
    if t.needed is None and t.effect == 0:
        needed = "; no difference observed at all"
    return f"{t.a} vs {t.b}: no significant difference (p = {format_p(t.p_holm)}, Holm{needed})"


def format_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def one_samples(
    samples: Mapping[str, tuple[Sequence[float], float]],
    *,
    higher_is_better: bool,
    alpha: float = ALPHA,
    seed: int = 0,
) -> list[PairTest]:
    """Each group's repeats against its own fixed reference (a number quoted elsewhere, not measured here),
    corrected together (Holm), as :func:`one_sample` does for one group."""
    tests = []
    for name, (values, reference) in samples.items():
        x = np.array([float(v) for v in values], dtype=float)
        x = x[~np.isnan(x)]
        against = f"reference {reference:g}"
        if len(x) < 2:
            tests.append(_untested(name, against, len(x), 0, True, f"needs at least 2 repeats, has {len(x)}"))
            continue
        # signed-rank on values - reference (a sign test if censored); the mean's CI shifted by the reference
        t = _tested(name, against, x, np.full(len(x), float(reference)), True, alpha / max(1, len(samples)), seed)
        tests.append(dataclasses.replace(t, n_b=0))
    return _corrected(tests, higher_is_better, alpha)


def one_sample(
    values: Sequence[float],
    reference: float,
    *,
    higher_is_better: bool,
    alpha: float = ALPHA,
    seed: int = 0,
    name: str = "values",
) -> PairTest:
    """Repeats against a fixed number: Wilcoxon signed-rank on ``values - reference`` (a sign test where a
    value is inf: censored), the matched-pairs rank-biserial effect, ``diff`` = mean - reference with the
    seeded bootstrap 95% CI of the mean shifted by the reference, and the same verdict vocabulary as
    :func:`pairwise` (``a`` is ``name``, ``b`` "reference <number>", ``n_b`` 0, ``p_holm`` = ``p``)."""
    (test,) = one_samples({name: (values, reference)}, higher_is_better=higher_is_better, alpha=alpha, seed=seed)
    return test
