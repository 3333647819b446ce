"""The ladder verdict: tolerance against the reference, and the talk's ordering (tested over seeds:
tests/test_ladder_stats.py has the statistics themselves)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.report import LadderReport, verdict


def _report(refs: list[float], ours: list[float], seeds: int = 10) -> LadderReport:
    """Each rung's seeds spread evenly (±0.05 points) around ``ours``, the same spread on every rung: the
    rungs differ by a constant shift per seed, which the paired test finds with enough seeds."""
    table = pd.DataFrame(
        {
            "rung_index": range(1, len(refs) + 1),
            "rung": [f"r{i}" for i in range(1, len(refs) + 1)],
            "reference": refs,
            "best_mean": ours,
        }
    )
    table["vs_reference"] = table["best_mean"] - table["reference"]
    spread = np.linspace(-0.0005, 0.0005, seeds) if seeds > 1 else np.zeros(1)
    per_seed = pd.DataFrame(
        [
            {"source": 0, "rung_index": i, "variant": "", "seed": str(s), "value": mean + spread[s]}
            for i, mean in enumerate(ours, 1)
            for s in range(seeds)
        ]
    )
    return LadderReport(table, {}, "classification", "test_accuracy", seeds=per_seed)


def test_within_tolerance_and_ties_in_the_reference_impose_no_order() -> None:
    lines = verdict(_report([0.92, 0.982, 0.982, 0.989], [0.921, 0.981, 0.980, 0.990]))
    assert lines[:2] == [
        "Every rung is within 0.3 points of its reference or better.",
        "Ordering by best accuracy matches the talk's.",
    ]
    # rung 3 is significantly worse than rung 2, but their references tie: no reversal of the talk's order
    assert any(line.startswith("Rung 3 (r3) is worse than the rung before (significant, p = ") for line in lines)
    assert not any("differs from the talk's" in line for line in lines)


def test_shortfall_and_inversion_are_reported() -> None:
    lines = verdict(_report([0.92, 0.979, 0.989], [0.921, 0.990, 0.985]))
    assert any(line.startswith("Rung 3 (r3) is 0.40 points below its reference (significant, p = ") for line in lines)
    (order,) = [line for line in lines if line.startswith("Ordering")]
    assert order.startswith(
        "Ordering differs from the talk's where the reference improves but ours is significantly worse than "
        "the rung before: 2->3 (p = "
    )


def test_an_inversion_within_noise_is_not_a_finding() -> None:
    lines = verdict(_report([0.92, 0.979, 0.989], [0.921, 0.990, 0.985], seeds=3))  # 3 seeds: p >= 0.25
    assert not any("differs from the talk's" in line for line in lines)
    assert (
        "Ordering by best accuracy: no significant reversal of the talk's between consecutive rungs "
        "(by the means alone: 2->3; not a finding)."
    ) in lines
    assert any(line.startswith("Rung 3 (r3) is 0.40 points below its reference: Δ -0.40 pts") for line in lines)


def test_a_single_reference_claims_no_ordering_and_flat_rungs_are_named() -> None:
    report = _report([math.nan, math.nan, 0.996], [0.92, 0.985, 0.977])
    report.table["delta_prev"] = report.table["best_mean"].diff()
    lines = verdict(report)
    assert any(line.startswith("Rung 3 (r3) is 1.90 points below its reference (significant, p = ") for line in lines)
    assert "Only 1 rung has a reference: there is no ordering to compare." in lines
    (flat,) = [line for line in lines if "the rung before" in line and "Rung 3" in line]
    assert flat.startswith("Rung 3 (r3) is worse than the rung before (significant, p = ")
    assert flat.endswith("Holm): Δ -0.80 pts [95% CI -0.80, -0.80].")
    assert lines[-1].startswith("Rungs better than the rung before (significant, Holm): 2 (r2, +6.50 pts, p = ")


def test_a_loss_objective_is_shown_on_the_reference_trainers_scale_too() -> None:
    from harness.report import StudyReport, display_study

    table = pd.DataFrame(
        {
            "trial": [0, 1],
            "state": ["COMPLETE", "COMPLETE"],
            "status": ["FINISHED", "FINISHED"],
            "lr2": ["832", "900"],
            "objective": [0.01746, 0.0189],
            "time_s": [1.0, 2.0],
            "cost_usd": [math.nan, math.nan],
            "retry_of": ["", ""],
        }
    )
    scaled = display_study(StudyReport(table, ["lr2"], None, {"reference_scale": "100.0"}))
    assert list(scaled["objective x 100 (reference scale)"]) == ["1.746", "1.89"]  # the talk's 1.746 for lr2 832
    plain = display_study(StudyReport(table, ["lr2"], None, {"reference_scale": "1.0"}))
    assert not any("reference scale" in c for c in plain.columns)


def test_smoke_scale_says_its_numbers_are_not_comparable() -> None:
    report = _report([0.92, 0.979], [0.30, 0.10])
    report.meta["scale"] = "smoke"
    (line,) = verdict(report)
    assert "not comparable with the talk's references" in line and "below" not in line
