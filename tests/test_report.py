"""The ladder verdict: tolerance against the reference, and the talk's ordering."""

from __future__ import annotations

import math

import pandas as pd

from harness.report import LadderReport, verdict


def _report(refs: list[float], ours: list[float]) -> LadderReport:
    table = pd.DataFrame(
        {
            "rung_index": range(1, len(refs) + 1),
            "rung": [f"r{i}" for i in range(1, len(refs) + 1)],
            "reference": refs,
            "best_mean": ours,
        }
    )
    table["vs_reference"] = table["best_mean"] - table["reference"]
    return LadderReport(table, {})


def test_within_tolerance_and_ties_in_the_reference_impose_no_order() -> None:
    lines = verdict(_report([0.92, 0.982, 0.982, 0.989], [0.921, 0.981, 0.980, 0.990]))
    assert lines == [
        "Every rung is within 0.3 points of its reference or better.",
        "Ordering by best accuracy matches the talk's.",
    ]


def test_shortfall_and_inversion_are_reported() -> None:
    lines = verdict(_report([0.92, 0.979, 0.989], [0.921, 0.990, 0.985]))
    assert "Rung 3 (r3) is 0.40 points below its reference." in lines
    assert lines[-1] == "Ordering differs from the talk's where the reference improves but ours does not: 2->3."


def test_a_single_reference_claims_no_ordering_and_flat_rungs_are_named() -> None:
    report = _report([math.nan, math.nan, 0.996], [0.92, 0.985, 0.977])
    report.table["delta_prev"] = report.table["best_mean"].diff()
    lines = verdict(report)
    assert "Rung 3 (r3) is 1.90 points below its reference." in lines
    assert "Only 1 rung has a reference: there is no ordering to compare." in lines
    assert lines[-1] == "Rungs whose best accuracy is not better than the rung before: 3 (r3, -0.80) pts."


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
