"""The typed run records (harness/tracking/_records.py): tag names and values as harness has always written
them, typed on the way back, and a clear error (or None, where documented) for old, foreign or garbled runs."""

from __future__ import annotations

import dataclasses

import pytest

from harness.tracking import (
    BenchHardwareRecord,
    LadderRecord,
    ReplayRecord,
    RungRecord,
    StudyBest,
    StudyBudget,
    StudyRecord,
    StudyResumed,
    TagError,
    TrialRecord,
    kind_filter,
    tag_filter,
)

SHARED = {"ladder": "mnist", "scale": "smoke", "task": "classification", "metric": "test_accuracy"}
RUNG = RungRecord(**SHARED, rung="cnn", rung_index=6, rung_changes="conv layers", seed=3, variant="", reference=0.99)
LADDER = LadderRecord(**SHARED, seeds=3, rungs_selected="", variants=("a", "b"), command="harness ladder mnist")
STUDY = StudyRecord(
    study="s1",
    space="mnist-cnn",
    space_source="search_spaces/mnist-cnn.yaml",
    experiment="mnist-cnn@smoke",
    objective="final_test_accuracy",
    direction="maximize",
    params=("lr", "size"),
    param_keys=("optim.lr", "model.size"),
    fingerprint="abc123",
    sampler="tpe",
    sampler_seed=0,
    pruner="none",
    task="classification",
    objective_reference_scale=100.0,
)
REPLAY = ReplayRecord(
    space="mnist-cnn",
    space_source="s.yaml",
    experiment="mnist-cnn@smoke",
    objective="final_test_loss",
    direction="minimize",
    params=("lr",),
    fingerprint="f00d",
    landscape="land",
    landscape_run="r1",
    landscape_design="grid",
    priced_on="",
)


@pytest.mark.parametrize(
    "record",
    [
        RUNG,
        dataclasses.replace(RUNG, reference=None, variant="wide"),
        LADDER,
        STUDY,
        TrialRecord(study="s1", space="mnist-cnn", sampler="tpe", worker="host:12", retry_of=4),
        TrialRecord(study="s1", space="mnist-cnn", sampler="tpe", worker="host:12"),
        REPLAY,
        BenchHardwareRecord(command="harness bench hardware"),
    ],
)
def test_a_record_reads_back_what_it_wrote(record: object) -> None:
    tags = record.to_tags()  # type: ignore[attr-defined]
    assert all(isinstance(v, str) for v in tags.values())
    assert type(record).from_tags(tags) == record  # type: ignore[attr-defined]


def test_the_tags_are_the_names_and_values_stores_already_hold() -> None:
    """Stores written before the records (and the committed reports' stores) must read the same."""
    assert RUNG.to_tags() == {
        "harness.kind": "rung",
        "harness.ladder": "mnist",
        "harness.scale": "smoke",
        "harness.task": "classification",
        "harness.metric": "test_accuracy",
        "harness.rung": "cnn",
        "harness.rung_index": "6",
        "harness.rung_changes": "conv layers",
        "harness.rung_note": "",
        "harness.variant": "",
        "harness.reference": "0.99",
        "harness.seed": "3",
    }
    assert dataclasses.replace(RUNG, reference=None).to_tags()["harness.reference"] == ""
    assert LADDER.to_tags()["harness.variants"] == "a;b" and LADDER.to_tags()["harness.seeds"] == "3"
    assert StudyBudget(max_trials=8).to_tags() == {
        "harness.max_trials": "8",
        "harness.max_parallel": "",
        "harness.max_failed": "",
    }
    assert TrialRecord(study="s", space="x", sampler="tpe", worker="w").to_tags()["harness.retry_of"] == ""
    assert STUDY.to_tags()["harness.objective_reference_scale"] == "100.0"
    assert STUDY.to_tags()["harness.params"] == "lr,size"
    assert REPLAY.to_tags()["harness.replay"] == "1" and REPLAY.to_tags()["harness.priced_on"] == ""
    assert "harness.priced_on" not in dataclasses.replace(REPLAY, priced_on=None).to_tags()


def test_a_ladder_run_without_a_task_is_refused_by_name_not_read_as_classification() -> None:
    old = {k: v for k, v in LADDER.to_tags().items() if k != "harness.task"}
    with pytest.raises(TagError, match=r"ladder parent run p1: tag harness.task is missing"):
        LadderRecord.from_tags(old, "ladder parent run p1")


def test_garbled_values_and_wrong_kinds_say_which_tag() -> None:
    with pytest.raises(TagError, match=r"harness.rung_index is 'six', not an integer"):
        RungRecord.from_tags({**RUNG.to_tags(), "harness.rung_index": "six"})
    with pytest.raises(TagError, match=r"harness.reference is 'n/a', not a number"):
        RungRecord.from_tags({**RUNG.to_tags(), "harness.reference": "n/a"})
    with pytest.raises(TagError, match=r"harness.kind is 'ladder', not 'rung'"):
        RungRecord.from_tags(LADDER.to_tags())
    with pytest.raises(TagError, match=r"harness.direction is 'up', not maximize or minimize"):
        StudyRecord.from_tags({**STUDY.to_tags(), "harness.direction": "up"})
    with pytest.raises(TagError, match=r"harness.best_params is '\{oops', not JSON"):
        StudyBest.from_tags({"harness.best_trial": "2", "harness.best_params": "{oops"})
    with pytest.raises(TagError, match=r"harness.fingerprint is missing"):  # every replay had one
        ReplayRecord.from_tags({k: v for k, v in REPLAY.to_tags().items() if k != "harness.fingerprint"})


def test_tags_added_later_are_none_on_old_runs() -> None:
    """A study from before param_keys, fingerprints and tasks; a rung from before variants and notes."""
    added = ("harness.param_keys", "harness.fingerprint", "harness.task", "harness.objective_reference_scale")
    old = StudyRecord.from_tags({k: v for k, v in STUDY.to_tags().items() if k not in added})
    assert (old.param_keys, old.fingerprint, old.task, old.objective_reference_scale) == (None, None, None, None)
    assert old.keys == ("lr", "size")  # the names were the keys then
    rung = RungRecord.from_tags(
        {k: v for k, v in RUNG.to_tags().items() if k not in ("harness.variant", "harness.rung_note")}
    )
    assert (rung.variant, rung.rung_note) == (None, None)
    # pandas gives a tag one run lacks as NaN in a frame of several runs: absent, not a value
    assert RungRecord.from_tags({**RUNG.to_tags(), "harness.rung_note": float("nan")}).rung_note is None


def test_the_parts_of_a_study_set_after_its_start() -> None:
    assert StudyBudget.from_tags({}) == StudyBudget(max_trials=None)
    assert StudyBudget.from_tags(StudyBudget(max_trials=8, max_failed=2).to_tags()) == StudyBudget(
        max_trials=8, max_failed=2
    )
    assert StudyResumed.from_tags({}).resumed == 0  # written at the first resume: absent is never resumed
    again = StudyResumed(resumed=2, command="harness study x")
    assert StudyResumed.from_tags(again.to_tags()) == again
    assert StudyBest.from_tags({}) is None
    best = StudyBest(trial=3, params={"lr": 0.1, "size": "S"})
    assert StudyBest.from_tags(best.to_tags()) == best


def test_search_filters_quote_their_values() -> None:
    assert kind_filter(StudyRecord.KIND) == "tags.`harness.kind` = 'study'"
    assert tag_filter("harness.study", "it's-cmp-%", "LIKE") == "tags.`harness.study` LIKE 'it''s-cmp-%'"
