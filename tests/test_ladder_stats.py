"""The ladder report's statistics: Δ vs the rung before and vs the talk's reference with 95% CIs over
seeds, Wilcoxon (matching seeds) or Mann-Whitney, Holm across the table, and the verdict sentences.

The input is what ``harness.report.ladder_report`` builds from the store: child runs as the frame
``_core.children`` gives (tags, metrics), aggregated by ``_aggregate`` and ``_per_seed``; no training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.report import LadderReport, display_table, to_markdown, verdict, write_report
from harness.report._ladder import _aggregate, _per_seed, csv_table, ladder_tests, rung_runs
from harness.stats import NO_DIFFERENCE, one_sample, one_samples
from harness.tasks import get_task
from harness.tracking import RungRecord

METRIC = "test_accuracy"
Rungs = Mapping[tuple[int, str, str], Sequence[float]]  # (rung index, rung, variant) -> each seed's best value

META = {
    "ladder": "mnist",
    "scale": "standard",
    "seeds": "10",
    "command": "harness ladder mnist --seeds 10",
    "parent_run_id": "p0",
    "parent_status": "FINISHED",
    "started": "2024-01-01 00:00 UTC",
    "device": "cpu",
    "host": "h",
    "versions": "tensorflow 2",
    "git_commit": "abc",
    "data_checksum": "00",
    "price_per_hour": "unknown",
}


def _runs(
    rungs: Rungs, references: Mapping[int, float], seeds: Mapping[int, Sequence[int]] | None = None
) -> pd.DataFrame:
    """Child runs, one per seed; ``seeds``: a rung's seed numbers where they are not 0, 1, 2, ..."""
    rows = []
    for (index, rung, variant), values in rungs.items():
        numbers = (seeds or {}).get(index, range(len(values)))
        for seed, value in zip(numbers, values, strict=True):
            rows.append(
                {
                    "run_id": f"run-{index}-{variant}-{seed}",
                    "status": "FINISHED",
                    "source": 0,
                    "parent_run_id": "p0",
                    **{
                        f"tags.{k}": v
                        for k, v in RungRecord(
                            ladder="mnist",
                            scale="standard",
                            task="classification",
                            metric=METRIC,
                            rung=rung,
                            rung_index=index,
                            rung_changes=f"changes of {rung}",
                            rung_note="",
                            variant=variant,
                            reference=references.get(index),
                            seed=seed,
                        )
                        .to_tags()
                        .items()
                    },
                    "metrics.best_test_accuracy": value,
                    "metrics.final_test_accuracy": value - 0.001,
                    "metrics.time_train_s": 10.0,
                    "metrics.time_total_s": 12.0,
                    "metrics.examples_per_s": 5000.0,
                }
            )
    return rung_runs(pd.DataFrame(rows), "p0")


def _report(
    rungs: Rungs, references: Mapping[int, float], seeds: Mapping[int, Sequence[int]] | None = None
) -> LadderReport:
    runs = _runs(rungs, references, seeds)
    table = _aggregate(runs, get_task("classification"), METRIC)
    return LadderReport(table, dict(META), "classification", METRIC, seeds=_per_seed(runs, METRIC))


def _noise(n: int, seed: int = 1, sd: float = 0.001) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, n)


def test_identical_seeds_are_within_noise_and_no_reversal_is_claimed() -> None:
    values = list(0.985 + _noise(5))
    report = _report({(1, "a", ""): values, (2, "b", ""): values}, {1: 0.98, 2: 0.99})
    lines = verdict(report)
    assert (
        "Rung 2 (b) vs the rung before: Δ +0.00 pts [95% CI +0.00, +0.00], within noise "
        "(p = 1.000, Holm; no difference observed at all)."
    ) in lines
    assert not any("differs from the talk's" in line or "worse than the rung before" in line for line in lines)
    assert (
        "Ordering by best accuracy: no significant reversal of the talk's between consecutive rungs "
        "(by the means alone: 1->2; not a finding)."
    ) in lines
    row = csv_table(report).iloc[1]
    assert row["verdict_prev"] == NO_DIFFERENCE and row["p_prev_holm"] == 1.0 and row["test_prev"] == "wilcoxon"
    assert row["delta_prev"] == 0.0 and row["delta_prev_ci_low"] == row["delta_prev_ci_high"] == 0.0


def test_a_clearly_worse_rung_with_ten_seeds_is_significantly_worse() -> None:
    first = 0.99 + _noise(10, seed=2)
    worse = first - 0.01 + _noise(10, seed=3, sd=0.0005)  # 1 point lower on every seed
    report = _report({(1, "a", ""): list(first), (2, "b", ""): list(worse)}, {1: 0.98, 2: 0.985})
    lines = verdict(report)
    (line,) = [line for line in lines if line.startswith("Rung 2 (b) is worse")]
    assert line.startswith("Rung 2 (b) is worse than the rung before (significant, p = 0.002, Holm): Δ -1.0")
    assert (
        "Ordering differs from the talk's where the reference improves but ours is significantly worse than "
        "the rung before: 1->2 (p = 0.002, Holm)."
    ) in lines
    row = csv_table(report).iloc[1]
    assert row["verdict_prev"] == "worse" and row["test_prev"] == "wilcoxon"
    assert row["p_prev"] == pytest.approx(2 / 2**10) and row["p_prev_holm"] == pytest.approx(2 / 2**10)
    assert row["delta_prev_ci_low"] < row["delta_prev"] < row["delta_prev_ci_high"] < 0
    assert row["delta_prev"] == pytest.approx(float(np.mean(worse - first)))


def test_a_drop_within_the_spread_says_how_many_seeds_would_detect_it() -> None:
    first = 0.99 + _noise(4, seed=4, sd=0.003)
    report = _report({(1, "a", ""): list(first), (2, "b", ""): list(first - 0.001 + _noise(4, seed=5, sd=0.003))}, {})
    (line,) = [line for line in verdict(report) if "the rung before" in line]
    assert line.startswith("Rung 2 (b) vs the rung before: Δ ")
    assert ", within noise (p = " in line and "seeds each would detect the observed Δ)." in line
    needed = int(csv_table(report).iloc[1]["needed_prev"])
    assert needed > 4 and f"about {needed:,} seeds each" in line


def test_one_seed_makes_no_ordering_claim() -> None:
    report = _report({(1, "a", ""): [0.99], (2, "b", ""): [0.95], (3, "c", ""): [0.96]}, {1: 0.98, 2: 0.985, 3: 0.99})
    lines = verdict(report)
    assert (
        "One seed per rung: no ordering claim can be made (one seed: deltas are shown but not tested; "
        "a paired test needs at least 6 seeds to reach p < 0.05)."
    ) in lines
    assert not any(line.startswith("Ordering") or "the rung before" in line for line in lines)
    assert "Rung 2 (b) is 3.50 points below its reference (1 seed: not tested)." in lines
    table = csv_table(report)
    assert list(table["verdict_prev"]) == ["", "not testable", "not testable"]
    assert list(table["seeds"]) == [1, 1, 1] and table["p_prev_holm"].isna().all()
    assert list(table["delta_prev"].round(4)[1:]) == [-0.04, 0.01]  # the deltas are still shown


def test_holm_corrects_across_the_tables_consecutive_pairs() -> None:
    base = 0.98 + _noise(10, seed=6)
    rungs = {(i, f"r{i}", ""): list(base + 0.005 * (i - 1) + _noise(10, seed=10 + i, sd=0.0002)) for i in (1, 2, 3)}
    table = csv_table(_report(rungs, {}))
    assert list(table["verdict_prev"]) == ["", "better", "better"]
    assert list(table["p_prev_holm"][1:]) == pytest.approx([2 * 2 / 2**10] * 2)  # 2 pairs: Holm doubles the least


def test_seeds_that_do_not_match_are_compared_unpaired() -> None:
    report = _report(
        {(1, "a", ""): list(0.99 + _noise(6, seed=7)), (2, "b", ""): list(0.98 + _noise(6, seed=8))},
        {},
        seeds={1: range(6), 2: range(10, 16)},
    )
    row = csv_table(report).iloc[1]
    assert row["test_prev"] == "mann-whitney" and row["verdict_prev"] == "worse"
    assert ladder_tests(report).prev[(0, 2, "")].paired is False


def test_reference_gets_a_ci_and_a_one_sample_test() -> None:
    report = _report(
        {(1, "a", ""): list(0.985 + _noise(10, seed=9)), (2, "b", ""): list(0.995 + _noise(10))}, {1: 0.99}
    )
    table = csv_table(report)
    first = table.iloc[0]
    assert first["delta_ref"] == pytest.approx(first["best_mean"] - 0.99)
    assert first["delta_ref_ci_low"] < first["delta_ref"] < first["delta_ref_ci_high"] < 0
    assert first["verdict_ref"] == "worse" and first["p_ref_holm"] == pytest.approx(2 / 2**10)
    assert math.isnan(table.iloc[1]["delta_ref"]) and table.iloc[1]["verdict_ref"] == ""
    (line,) = [line for line in verdict(report) if "its reference" in line]
    assert (
        line.startswith("Rung 1 (a) is 0.") and " points below its reference (significant, p = 0.002, Holm): " in line
    )


def test_variants_of_a_rung_are_compared_pairwise_with_holm_across_the_table() -> None:
    scene = 0.95 + _noise(8, seed=11)
    rungs = {
        (1, "a", "split=scene"): list(scene),
        (1, "a", "split=random"): list(scene + 0.02 + _noise(8, seed=12, sd=0.0005)),
        (2, "b", "split=scene"): list(scene + 0.001),
        (2, "b", "split=random"): list(scene + 0.001),
    }
    report = _report(rungs, {})
    lines = verdict(report)
    (one,) = [line for line in lines if line.startswith("Rung 1 (a), variants: ")]
    # 8 paired seeds all one way: p = 2/2^8, doubled by Holm over the table's 2 variant pairs
    assert one.startswith(
        "Rung 1 (a), variants: split=random better than split=scene (significant, p = 0.016, Holm): Δ +2.0"
    )
    (two,) = [line for line in lines if line.startswith("Rung 2 (b), variants: ")]
    assert two == (
        "Rung 2 (b), variants: split=random vs split=scene: Δ +0.00 pts [95% CI +0.00, +0.00], within noise "
        "(p = 1.000, Holm; no difference observed at all)."
    )
    # each variant's rungs are compared too, in their own lines (Holm across the table's 2 consecutive pairs)
    assert "Rungs [split=scene] better than the rung before (significant, Holm): 2 (b, +0.10 pts, p = 0.016)." in lines
    assert any(
        line.startswith("Rung 2 (b) [split=random] is worse than the rung before (significant") for line in lines
    )


def test_one_seed_variants_are_not_compared() -> None:
    report = _report({(1, "a", "split=scene"): [0.9], (1, "a", "split=random"): [0.95]}, {})
    assert not any("variants" in line for line in verdict(report))
    assert ladder_tests(report).variants[(0, 1)][0].verdict == "not testable"


def test_markdown_csv_and_html_carry_the_tests_and_the_terminal_table_stays_narrow(tmp_path: Path) -> None:
    from harness.cli._commands import narrow

    first = 0.98 + _noise(6, seed=13)
    rungs = {(i, f"rung{i}", ""): list(first + 0.003 * i + _noise(6, seed=20 + i, sd=0.002)) for i in range(1, 9)}
    report = _report(rungs, {i: 0.98 + 0.003 * i for i in range(1, 9)})
    plain = display_table(report)
    assert not any("CI" in str(c) or "Holm" in str(c) for c in plain.columns)
    assert max(len(line) for line in narrow(plain).splitlines()) <= 100
    shown = display_table(report, stats=True)
    for column in (
        "Δ best vs prev (pts)",
        "Δ prev 95% CI",
        "p prev (Holm)",
        "vs prev",
        "vs ref 95% CI",
        "p ref (Holm)",
    ):
        assert column in shown.columns, column
    assert set(shown["vs prev"][1:]) <= {"better", "worse", "within noise"} and shown["vs prev"][0] == ""
    text = to_markdown(report, "harness report ladder mnist")
    assert "Wilcoxon signed-rank on matching seeds, else Mann-Whitney U, Holm-corrected" in text
    assert "seeded bootstrap" in text and "α = 0.05" in text and "| Δ prev 95% CI " in text
    md, csv, page = write_report(report, tmp_path, "harness report ladder mnist")
    written = pd.read_csv(csv)
    wanted = [
        "delta_prev",
        "delta_prev_ci_low",
        "delta_prev_ci_high",
        "p_prev",
        "p_prev_holm",
        "verdict_prev",
        "needed_prev",
        "delta_ref",
        "delta_ref_ci_low",
        "delta_ref_ci_high",
        "p_ref_holm",
        "verdict_ref",
    ]
    assert set(wanted) <= set(written.columns)
    assert written["delta_prev_ci_low"][1:].notna().all() and written["delta_ref_ci_high"].notna().all()
    assert "Δ prev 95% CI" in page.read_text(encoding="utf-8") and md.exists()


def test_a_loss_shows_the_reference_ci_in_the_better_is_positive_direction() -> None:
    runs = _runs({(1, "a", ""): list(0.30 + _noise(6, seed=14, sd=0.01))}, {1: 0.20})
    runs = runs.rename(columns={"metrics.best_test_accuracy": "metrics.best_test_loss"})
    report = LadderReport(
        _aggregate(runs, get_task("classification"), "test_loss"),
        dict(META),
        "classification",
        "test_loss",
        seeds=_per_seed(runs, "test_loss"),
    )
    (ci,) = display_table(report, stats=True)["vs ref 95% CI"]
    low, high = (float(v) for v in ci.strip("[]").split(", "))
    assert low < high < 0  # a higher loss than the reference: worse, negative like "best vs ref"
    assert csv_table(report).iloc[0]["delta_ref_ci_low"] > 0  # the CSV keeps the raw difference: mean - reference
    assert ladder_tests(report).ref[(0, 1, "")].verdict == "worse"


def test_one_sample_against_a_fixed_number() -> None:
    below = one_sample([0.95 + 0.001 * i for i in range(10)], 0.99, higher_is_better=True, name="rung")
    assert (below.a, below.b, below.n_a, below.test) == ("rung", "reference 0.99", 10, "wilcoxon")
    assert below.verdict == "worse" and below.p == pytest.approx(2 / 2**10) and below.p_holm == below.p
    assert below.diff == pytest.approx(-0.0355) and below.diff_ci.low < below.diff < below.diff_ci.high < 0
    assert one_sample([0.95 + 0.001 * i for i in range(10)], 0.99, higher_is_better=False).verdict == "better"
    same = one_sample([0.99, 0.99, 0.99], 0.99, higher_is_better=True)
    assert same.verdict == NO_DIFFERENCE and same.p == 1.0 and same.needed is None
    alone = one_sample([0.9], 0.99, higher_is_better=True)
    assert alone.verdict == "not testable" and alone.note == "needs at least 2 repeats, has 1"
    both = one_samples(
        {"x": ([1.0 + i for i in range(8)], 0.0), "y": ([-1.0 - i for i in range(8)], 0.0)}, higher_is_better=True
    )
    assert [t.verdict for t in both] == ["better", "worse"]
    assert [t.p_holm for t in both] == pytest.approx([2 * 2 / 2**8] * 2)  # Holm across the two


def test_censored_values_get_a_sign_test() -> None:
    t = one_sample([math.inf, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 1.0, higher_is_better=False)
    assert t.test == "sign" and t.verdict == "worse" and math.isnan(t.diff)
