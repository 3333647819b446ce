"""harness.stats against known answers: scipy.stats on the same data, a textbook Holm example, synthetic
effects whose direction is known, and the power estimate against a simulation of the rank tests themselves.

Everything is seeded and small: the whole file runs in a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from harness.stats import (
    ALPHA,
    NO_DIFFERENCE,
    censored_summary,
    holm,
    pairwise,
    repeats_needed,
    smallest_testable,
    standardized_effect,
    summarize,
    winner,
)

INF = math.inf


def _groups(**values: list[float]) -> dict[str, dict[int, float]]:
    """Each group keyed by seed 0..n-1, so equal lengths pair up."""
    return {name: dict(enumerate(v)) for name, v in values.items()}


def _only(tests: list) -> object:
    assert len(tests) == 1
    return tests[0]


def _standardized(rng: np.random.Generator, n: int) -> np.ndarray:
    """n normal draws rescaled to mean exactly 0 and sd (ddof 1) exactly 1."""
    z = rng.standard_normal(n)
    return (z - z.mean()) / z.std(ddof=1)


# --- pairwise p-values are scipy's p-values (before Holm) -------------------------------------------------


def test_paired_p_is_scipy_wilcoxon() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    y = [0.5, 3.0, 1.0, 4.0, 2.0, 4.5, 6.75, 9.5]  # one zero difference, dropped (zero_method "wilcox")
    t = _only(pairwise(_groups(a=x, b=y), higher_is_better=True))
    assert t.paired and t.test == "wilcoxon"
    d = np.subtract(x, y)
    ref = stats.wilcoxon(d, zero_method="wilcox")
    assert t.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert t.statistic == pytest.approx(ref.statistic)
    assert t.p_holm == pytest.approx(t.p)  # one hypothesis: Holm changes nothing
    # the matched-pairs rank-biserial correlation, by hand: (R+ - R-) / (R+ + R-) over the nonzero differences
    nz = d[d != 0]
    ranks = stats.rankdata(np.abs(nz))
    r_plus, r_minus = ranks[nz > 0].sum(), ranks[nz < 0].sum()
    assert t.effect == pytest.approx((r_plus - r_minus) / (r_plus + r_minus))
    assert t.diff == pytest.approx(float(np.mean(d)))


def test_paired_by_key_not_by_order() -> None:
    """Pairs are matched by seed, whatever order each group lists its seeds in."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=9), rng.normal(size=9)
    a = {seed: float(x[seed]) for seed in range(9)}
    b = {seed: float(y[seed]) for seed in reversed(range(9))}
    t = _only(pairwise({"a": a, "b": b}, higher_is_better=True))
    assert t.paired
    assert t.p == pytest.approx(stats.wilcoxon(x, y).pvalue, rel=1e-12)


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1.2, 3.4, 2.2, 5.1, 0.3], [2.5, 4.4, 6.0, 7.1, 3.3, 8.0]),  # small, no ties: scipy's exact p
        ([1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 6.0, 9.0, 9.0], [2.0, 4.0, 5.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]),  # ties
    ],
)
def test_unpaired_p_is_scipy_mannwhitneyu(x: list[float], y: list[float]) -> None:
    t = _only(pairwise(_groups(a=x, b=y), higher_is_better=True, paired=False))
    assert not t.paired and t.test == "mann-whitney"
    ref = stats.mannwhitneyu(x, y, alternative="two-sided")
    assert t.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert t.statistic == pytest.approx(ref.statistic)
    assert t.effect == pytest.approx(2 * ref.statistic / (len(x) * len(y)) - 1)
    assert t.diff == pytest.approx(np.mean(x) - np.mean(y))


def test_paired_censored_p_is_scipy_binomtest() -> None:
    """A sign test over the pairs whose order is known; both-censored pairs are ties and drop out."""
    a = [3.0, INF, 5.0, 2.0, INF, 7.0, 1.0, 4.0, INF, 6.0]
    b = [5.0, 8.0, INF, 6.0, INF, 9.0, 4.0, 4.0, INF, INF]
    t = _only(pairwise(_groups(a=a, b=b), higher_is_better=False))
    assert t.paired and t.test == "sign"
    wins = sum(x > y for x, y in zip(a, b, strict=True))
    losses = sum(x < y for x, y in zip(a, b, strict=True))
    assert (wins, losses) == (1, 6)
    assert t.p == pytest.approx(stats.binomtest(wins, wins + losses, 0.5).pvalue, rel=1e-12)
    assert t.effect == pytest.approx((wins - losses) / len(a))
    assert math.isnan(t.diff) and not t.diff_ci.defined
    assert t.needed is None  # no power estimate from censored values


def test_unpaired_censored_ranks_censored_above_everything() -> None:
    """Mann-Whitney with inf: the same as replacing every censored value by one larger than all observed."""
    a = [3.0, INF, 5.0, 12.0, INF, 7.0, 2.0]
    b = [5.0, 8.0, INF, 6.0, 11.0, 9.0, 4.0, 10.0]
    t = _only(pairwise(_groups(a=a, b=b), higher_is_better=False))
    assert not t.paired and t.test == "mann-whitney"
    big = 1e9
    ref = stats.mannwhitneyu([big if math.isinf(v) else v for v in a], [big if math.isinf(v) else v for v in b])
    assert t.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert t.statistic == pytest.approx(ref.statistic)


def test_holm_is_applied_across_one_tables_pairs() -> None:
    rng = np.random.default_rng(7)
    groups = _groups(a=list(rng.normal(0, 1, 8)), b=list(rng.normal(1, 1, 8)), c=list(rng.normal(2, 1, 8)))
    tests = pairwise(groups, higher_is_better=True)
    assert [(t.a, t.b) for t in tests] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [t.p_holm for t in tests] == pytest.approx(holm([t.p for t in tests]))
    for t in tests:
        assert t.p_holm >= t.p


# --- summaries against scipy -------------------------------------------------------------------------------


def test_summarize_matches_scipy() -> None:
    x = np.random.default_rng(11).lognormal(0.0, 0.8, 12)
    s = summarize(list(x), seed=5)
    assert s.n == 12
    assert s.mean == pytest.approx(np.mean(x))
    assert s.sem == pytest.approx(stats.sem(x), rel=1e-12)
    assert s.sd == pytest.approx(np.std(x, ddof=1), rel=1e-12)
    boot = stats.bootstrap(
        (x,), np.mean, confidence_level=0.95, n_resamples=9_999, method="BCa", rng=np.random.default_rng(5)
    )
    assert s.mean_ci.low == pytest.approx(boot.confidence_interval.low, rel=1e-9)
    assert s.mean_ci.high == pytest.approx(boot.confidence_interval.high, rel=1e-9)
    assert s.median == pytest.approx(np.median(x))
    ci = stats.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
    assert (s.median_ci.low, s.median_ci.high) == pytest.approx((ci.low, ci.high))
    # the exact CI is two order statistics of the data
    assert s.median_ci.low in x and s.median_ci.high in x


def test_summarize_seeded_and_edges() -> None:
    x = [4.0, 1.0, 7.0, 3.0, 9.0, 2.0, 5.0]
    assert summarize(x, seed=1) == summarize(x, seed=1)
    y = list(np.random.default_rng(0).lognormal(0.0, 1.0, 9))  # off any lattice, so resamples differ by seed
    assert summarize(y, seed=1).mean_ci != summarize(y, seed=2).mean_ci
    # nan and inf are left out
    assert summarize([*x, math.nan, INF]).n == len(x)
    assert summarize([*x, math.nan, INF]).mean == pytest.approx(np.mean(x))
    # below 6 values the 95% exact median CI does not exist (2 / 2**5 > 0.05)
    assert not summarize(x[:5]).median_ci.defined
    assert summarize(x[:6]).median_ci.defined
    one = summarize([3.0])
    assert one.n == 1 and math.isnan(one.sem) and not one.mean_ci.defined
    assert summarize([]).n == 0
    const = summarize([2.5] * 4)
    assert const.sem == 0 and (const.mean_ci.low, const.mean_ci.high) == (2.5, 2.5)


# --- Kaplan-Meier ------------------------------------------------------------------------------------------


def _km_median_by_hand(values: list[float]) -> float:
    """The product-limit estimate, written out: the KM median is the first event time where S(t) <= 0.5
    (censored values are inf, censored at the budget, which is after every event here)."""
    events = sorted(v for v in values if math.isfinite(v))
    at_risk, survival = len(values), 1.0
    for t in sorted(set(events)):
        d = events.count(t)
        survival *= 1.0 - d / at_risk
        at_risk -= d
        if survival <= 0.5 + 1e-12:
            return t
    return INF


def _km_median_scipy(values: list[float], budget: float) -> float:
    """The same definition on scipy.stats.ecdf(CensoredData): the first observed time with sf <= 0.5."""
    v = np.asarray(values, dtype=float)
    hit = np.isfinite(v)
    sf = stats.ecdf(stats.CensoredData(uncensored=v[hit], right=np.full(int((~hit).sum()), budget))).sf
    times = np.unique(v[hit])
    below = times[sf.evaluate(times) <= 0.5 + 1e-12]
    return float(below[0]) if len(below) else INF


@pytest.mark.parametrize(
    "values",
    [
        [3.0, INF, 1.0, 9.0, INF, 12.0, 5.0, INF, 2.0, 6.0],  # 3 of 10 censored: S steps to exactly 0.5 at 6
        [4.0, INF, 4.0, 2.0, 8.0, INF, 6.0],  # tied event times
        [INF, 5.0, 1.0, INF, INF, 2.0, INF],  # fewer than half reached: the median is beyond the budget
        [7.0, INF, 3.0, INF, 5.0],
    ],
)
def test_km_median_matches_scipy_ecdf(values: list[float]) -> None:
    cs = censored_summary(values, budget=20)
    assert cs.n == len(values) and cs.reached == sum(math.isfinite(v) for v in values)
    assert cs.median == _km_median_scipy(values, 20.0) == _km_median_by_hand(values)
    if math.isfinite(cs.median):
        assert cs.median_ci.low <= cs.median <= cs.median_ci.high
    assert cs.restricted_mean == pytest.approx(np.mean([min(v, 20.0) for v in values]))


@pytest.mark.parametrize(
    "values",
    [
        [5.0, 1.0, 9.0, 3.0, 7.0],  # odd n: the ordinary median
        [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 2.0],  # odd n, ties
        [3.0, 7.0, 1.0, 9.0, 4.0, 12.0, 5.0, 8.0],  # even n: S hits exactly 0.5 at the lower middle value
    ],
)
def test_km_median_without_censoring_is_the_plain_median(values: list[float]) -> None:
    """With nothing censored the KM median (first t with S(t) <= 0.5) is the smallest x with ECDF(x) >= 0.5:
    the ordinary median for odd n, the lower of the two middle values for even n (where np.median averages)."""
    cs = censored_summary(values, budget=100)
    assert cs.all_reached
    assert cs.median == float(np.quantile(values, 0.5, method="inverted_cdf"))
    if len(values) % 2:
        assert cs.median == float(np.median(values))
    else:
        assert cs.median == sorted(values)[len(values) // 2 - 1]
    assert cs.restricted_mean == pytest.approx(np.mean(values))


def test_km_nothing_reached() -> None:
    cs = censored_summary([INF, math.nan, INF], budget=50)
    assert cs.reached == 0 and not cs.all_reached
    assert cs.median == INF and cs.median_ci.low == 50 and cs.median_ci.high == INF
    assert cs.restricted_mean == 50


# --- Holm --------------------------------------------------------------------------------------------------


def test_holm_textbook_example() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, and the step-down is monotone even where (m - rank) * p is not
    assert holm([0.5, 0.3, 0.02]) == pytest.approx([0.6, 0.6, 0.06])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_holm_nan_passes_through_and_does_not_count() -> None:
    out = holm([0.01, math.nan, 0.04, 0.03, math.nan, 0.005])
    assert math.isnan(out[1]) and math.isnan(out[4])
    assert [out[0], out[2], out[3], out[5]] == pytest.approx([0.03, 0.06, 0.06, 0.02])  # m = 4, not 6


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(math.nan)), max_size=30))
def test_holm_properties(p: list[float]) -> None:
    adjusted = holm(p)
    assert len(adjusted) == len(p)
    for raw, adj in zip(p, adjusted, strict=True):
        if math.isnan(raw):
            assert math.isnan(adj)
        else:
            assert raw <= adj <= 1.0
    tested = [(raw, adj) for raw, adj in zip(p, adjusted, strict=True) if not math.isnan(raw)]
    for raw_i, adj_i in tested:  # the adjustment keeps the order of the raw p-values
        for raw_j, adj_j in tested:
            if raw_i <= raw_j:
                assert adj_i <= adj_j


# --- known effects and verdicts ----------------------------------------------------------------------------


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_large_paired_effect_has_the_right_direction(higher_is_better: bool) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(10.0, 3.0, 12)  # per-seed difficulty, shared by both samplers
    high = base + 2.0 + rng.normal(0.0, 1.0, 12)  # a shift of 2 sd of the paired noise
    low = base + rng.normal(0.0, 1.0, 12)
    groups = _groups(low=list(low), high=list(high))
    t = _only(pairwise(groups, higher_is_better=higher_is_better))
    assert t.paired and t.test == "wilcoxon" and t.p_holm < ALPHA
    assert t.effect < -0.8  # "low" is "a": its values tend to be smaller
    assert t.verdict == ("worse" if higher_is_better else "better")
    assert t.needed is None  # only asked for where there is no significant difference
    assert winner(["low", "high"], [t]) == ("high" if higher_is_better else "low")


def test_winner_of_three_needs_to_beat_both_others() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(0.0, 5.0, 12)
    groups = _groups(
        a=list(base + rng.normal(0, 1, 12)),
        b=list(base + 3 + rng.normal(0, 1, 12)),
        c=list(base + 3 + rng.normal(0, 1, 12)),
    )
    tests = pairwise(groups, higher_is_better=True)
    verdicts = {(t.a, t.b): t.verdict for t in tests}
    assert verdicts[("a", "b")] == verdicts[("a", "c")] == "worse"
    assert verdicts[("b", "c")] == NO_DIFFERENCE
    assert winner(["a", "b", "c"], tests) is None  # b and c each beat a, not each other
    assert winner(["a", "b", "c"], pairwise(groups, higher_is_better=False)) == "a"


@pytest.mark.parametrize("paired", [True, False])
def test_identical_groups_no_difference(paired: bool) -> None:
    values = [0.91, 0.93, 0.88, 0.95, 0.90, 0.92, 0.94, 0.89]
    tests = pairwise(_groups(s1=values, s2=list(values)), higher_is_better=True, paired=paired)
    t = _only(tests)
    assert t.paired is paired
    assert t.p == 1.0 and t.effect == 0.0 and t.diff == 0.0
    assert t.verdict == NO_DIFFERENCE and not t.significant
    assert t.needed is None  # no effect to detect
    assert winner(["s1", "s2"], tests) is None


@pytest.mark.parametrize("paired", [True, False])
def test_pure_noise_is_not_significant(paired: bool) -> None:
    rng = np.random.default_rng(12345)
    x, y = rng.normal(0.0, 1.0, 10), rng.normal(0.0, 1.0, 10)
    tests = pairwise(_groups(a=list(x), b=list(y)), higher_is_better=True, paired=paired)
    t = _only(tests)
    assert t.p > ALPHA and t.verdict == NO_DIFFERENCE
    assert winner(["a", "b"], tests) is None
    # what it would take: the power estimate for the observed (small) effect, at least the testable floor
    assert t.needed == repeats_needed(x, y, paired=paired, alpha=ALPHA)
    assert t.needed is not None and t.needed >= smallest_testable(ALPHA, paired)


def test_censored_never_vs_always_unpaired() -> None:
    """Trials to target, lower is better: a group that never reaches it loses to one that always does."""
    never = {f"n{i}": INF for i in range(10)}
    always = {f"a{i}": float(3 + i % 4) for i in range(10)}
    t = _only(pairwise({"never": never, "always": always}, higher_is_better=False))
    assert not t.paired and t.test == "mann-whitney"
    assert t.effect == 1.0 and t.p < 0.001
    assert t.verdict == "worse"
    flipped = _only(pairwise({"always": always, "never": never}, higher_is_better=False))
    assert flipped.effect == -1.0 and flipped.verdict == "better"


def test_too_few_repeats_is_not_testable() -> None:
    t = _only(pairwise(_groups(a=[1.0], b=[2.0, 3.0]), higher_is_better=True))
    assert t.verdict == "not testable" and t.test == "none" and math.isnan(t.p) and math.isnan(t.p_holm)


# --- effect sizes ------------------------------------------------------------------------------------------


def test_rank_biserial_extremes() -> None:
    unpaired = _only(pairwise(_groups(a=[5.0, 6.0, 7.0, 8.0], b=[1.0, 2.0, 3.0]), higher_is_better=True))
    assert not unpaired.paired and unpaired.effect == 1.0
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    b = [1.5, 4.0, 3.5, 9.0, 5.25, 6.5]  # every paired difference negative
    paired = _only(pairwise(_groups(a=a, b=b), higher_is_better=True))
    assert paired.paired and paired.effect == -1.0
    # six pairs all one way: the exact Wilcoxon p is 2 / 2**6, the smallest n that can reach 0.05
    assert paired.p == pytest.approx(2 / 2**6) and paired.verdict == "worse"


# --- power -------------------------------------------------------------------------------------------------


def test_smallest_testable() -> None:
    assert smallest_testable(0.05, paired=True) == 6  # 2/2**5 = 0.0625, 2/2**6 = 0.031
    assert smallest_testable(0.05, paired=False) == 4  # 2/C(6,3) = 0.1, 2/C(8,4) = 0.029
    # and scipy's exact tests agree: the most extreme outcome at that n is below alpha, one fewer is not
    assert stats.wilcoxon(np.arange(1.0, 7.0)).pvalue < 0.05 <= stats.wilcoxon(np.arange(1.0, 6.0)).pvalue
    assert (
        stats.mannwhitneyu([5, 6, 7, 8], [1, 2, 3, 4]).pvalue < 0.05 <= stats.mannwhitneyu([4, 5, 6], [1, 2, 3]).pvalue
    )


def _exact_effect(d: float, paired: bool, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(99)
    if paired:  # differences with mean d and sd 1 exactly: Cohen's d_z = d
        y = rng.normal(50.0, 10.0, n)
        return y + d + _standardized(rng, n), y
    return _standardized(rng, n) + d, _standardized(rng, n)  # pooled sd 1 exactly


# n from the t-test (the G*Power values: paired d_z = 0.5 -> 34, d_z = 1 -> 10; two groups d = 1 -> 17 each),
# divided by the rank tests' ARE 3/pi and rounded up
@pytest.mark.parametrize(("d", "paired", "expected_n"), [(0.5, True, 36), (1.0, True, 11), (1.0, False, 18)])
def test_power_estimate_against_simulation(d: float, paired: bool, expected_n: int) -> None:
    """Simulate 400 experiments of the size repeats_needed asks for, each tested with the rank test scipy
    runs (its automatic method: exact Wilcoxon up to n = 50, asymptotic Mann-Whitney at n = 18 per group):
    the rejection rate is the power, aimed at 0.8 and slightly conservative because of the ARE scaling."""
    x, y = _exact_effect(d, paired)
    assert standardized_effect(x, y, paired) == pytest.approx(d)
    n = repeats_needed(x, y, paired=paired, alpha=ALPHA)
    assert n == expected_n
    rng = np.random.default_rng(2024)
    experiments = 400
    if paired:
        p = stats.wilcoxon(rng.normal(d, 1.0, (experiments, n)), axis=1).pvalue
    else:
        p = stats.mannwhitneyu(
            rng.normal(d, 1.0, (experiments, n)), rng.normal(0.0, 1.0, (experiments, n)), axis=1
        ).pvalue
    power = float(np.mean(p < ALPHA))
    assert 0.7 <= power <= 0.95, power


def test_repeats_needed_edges() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert repeats_needed(x, x.copy(), paired=True, alpha=ALPHA) is None  # no effect
    assert repeats_needed(x + 1, x, paired=True, alpha=ALPHA) == smallest_testable(ALPHA, True)  # constant shift
    assert repeats_needed(np.array([1.0, INF]), x, paired=False, alpha=ALPHA) is None  # censored
    big, small = _exact_effect(2.0, True), _exact_effect(0.3, True)
    assert repeats_needed(*big, paired=True, alpha=ALPHA) < repeats_needed(*small, paired=True, alpha=ALPHA)


# --- properties of the bootstrap interval ------------------------------------------------------------------


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=2, max_size=10))
def test_mean_ci_properties(values: list[float]) -> None:
    """BCa is not guaranteed to contain the sample mean (a large bias correction can move both ends to one
    side), but every resampled mean lies within the data's range, so the interval does, and low <= high."""
    s = summarize(values, seed=0)
    assert s.sem == pytest.approx(stats.sem(values), nan_ok=True)
    assert s.mean_ci.defined
    tol = 1e-9 * (1.0 + max(abs(v) for v in values))
    assert min(values) - tol <= s.mean_ci.low <= s.mean_ci.high <= max(values) + tol
