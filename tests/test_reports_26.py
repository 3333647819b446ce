"""Issue 26, reports: no ``nan`` in a table (a killed rung says so), bar charts from zero or with a marked
break and the task's baselines drawn, HTML tables that scroll inside the page, and headers with paths
relative to where the command ran and a ``-dirty`` commit said in words."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from helpers import chromium

from harness.report import LadderReport, StudyReport, display_table, to_markdown
from harness.report._core import generated_by, local_paths, md_commit, number, provenance
from harness.report._document import Document, Section
from harness.report._html import render_html
from harness.report._ladder import _aggregate, _per_seed, best_figure, captions, rung_runs
from harness.report._study import _param_columns, display_study, study_markdown
from harness.tasks import get_task
from harness.tracking import RungRecord

NAN = re.compile(r"\bnan\b", re.IGNORECASE)

META = {
    "ladder": "census",
    "scale": "standard",
    "seeds": "2",
    "command": "harness ladder census --seeds 2",
    "parent_run_id": "p0",
    "parent_status": "KILLED",
    "started": "2026-01-01 00:00 UTC",
    "device": "cpu",
    "host": "h",
    "versions": "tensorflow 2",
    "git_commit": "0123abcd-dirty",
    "data_checksum": "00",
    "price_per_hour": "0.0971",
}


def _run(index: int, rung: str, seed: int, status: str, metrics: dict[str, float]) -> dict[str, object]:
    return {
        "run_id": f"run-{index}-{seed}",
        "status": status,
        "source": 0,
        "parent_run_id": "p0",
        **{
            f"tags.{k}": v
            for k, v in RungRecord(
                ladder="census",
                scale="standard",
                task="tabular",
                metric="test_accuracy",
                rung=rung,
                rung_index=index,
                rung_changes=f"changes of {rung}",
                seed=seed,
            )
            .to_tags()
            .items()
        },
        **{f"metrics.{k}": v for k, v in metrics.items()},
    }


def _killed_ladder() -> LadderReport:
    """Census: rung 1 finished on two seeds, rung 2 killed before its first evaluation (no metrics at all)."""
    done = {
        "best_test_accuracy": 0.8536,
        "final_test_accuracy": 0.8533,
        "final_test_auc": 0.905,
        "final_test_precision": 0.73,
        "final_test_recall": 0.59,
        "majority_accuracy": 0.7638,
        "time_train_s": 18.7,
        "time_total_s": 20.0,
        "examples_per_s": 40981.0,
        "cost_usd": 0.0007,
    }
    runs = rung_runs(
        pd.DataFrame(
            [
                _run(1, "linear", 0, "FINISHED", done),
                _run(1, "linear", 1, "FINISHED", {**done, "best_test_accuracy": 0.8538}),
                _run(2, "dnn", 0, "KILLED", {}),
            ]
        ),
        "p0",
    )
    table = _aggregate(runs, get_task("tabular"), "test_accuracy")
    return LadderReport(table, dict(META), "tabular", "test_accuracy", seeds=_per_seed(runs, "test_accuracy"))


# --- no nan in a table ----------------------------------------------------------------------------------------


def test_a_killed_rung_says_killed_where_it_has_no_numbers_and_no_table_shows_nan() -> None:
    report = _killed_ladder()
    for stats in (False, True):
        shown = display_table(report, stats=stats)
        cells = [str(v) for v in shown.to_numpy().ravel()]
        assert not [c for c in cells if NAN.search(c)], shown.to_string()
        killed = shown.iloc[1]
        assert killed["accuracy %"] == "n/a (killed)" and killed["train time (s)"] == "n/a (killed)"
        assert killed["rows/s"] == "n/a (killed)" and killed["cost/run ($)"] == "n/a (killed)"
        assert shown.iloc[0]["train time (s)"] == "18.7"
    markdown = to_markdown(report, "harness report ladder census")
    assert not NAN.search(markdown) and "n/a (killed)" in markdown
    page = render_html(Document("t", [], [Section("Rungs", table=display_table(report, stats=True))]))
    assert not NAN.search(page) and "n/a (killed)" in page
    assert report.table.loc[1, "not_finished_status"] == "KILLED"  # the CSV says how the runs ended


def test_the_ladder_markdown_keeps_its_header_and_has_the_sections_of_its_html() -> None:
    report = _killed_ladder()
    report.meta["notes"] = "trained on a subset"
    lines = to_markdown(report, "harness report ladder census").split("\n")
    assert lines[:5] == [
        "# Ladder `census`: standard scale, 2 seed(s)",
        "",
        "Generated from the MLflow tracking store by `harness report ladder census`; do not edit by hand.",
        "",
        "- Ladder run: `harness ladder census --seeds 2`",
    ]
    headings = [line for line in lines if line.startswith("## ")]
    # the bars and curves are inlined in the HTML only: the Markdown has no section for them
    assert headings == ["## Rungs", "## Verdict", "## Where this ladder differs from its reference, on purpose"]
    rungs, verdicts = lines.index("## Rungs"), lines.index("## Verdict")
    assert lines[rungs + 2].startswith("| #") and lines[verdicts + 2].startswith("- Rung 2 (dnn)")
    assert lines[-2:] == ["- trained on a subset", ""]


def test_a_pruned_trial_and_a_missing_number_show_no_nan() -> None:
    table = pd.DataFrame(
        {
            "trial": [0, 1],
            "state": ["COMPLETE", "PRUNED"],
            "status": ["FINISHED", "KILLED"],
            "lr0": ["0.01", "0.02"],
            "objective": [0.91, math.nan],
            "time_s": [3.0, math.nan],
            "cost_usd": [math.nan, math.nan],
            "retry_of": ["", ""],
            "run_id": ["a", "b"],
        }
    )
    meta = {"study": "s", "objective": "final_test_accuracy", "direction": "maximize"}
    shown = display_study(StudyReport(table, ["lr0"], None, meta))
    assert not [c for c in map(str, shown.to_numpy().ravel()) if NAN.search(c)], shown.to_string()
    assert (number(math.nan, ".1f"), number(None, ",.0f"), number(1234.5, ",.0f")) == ("n/a", "n/a", "1,234")
    assert number(float("nan"), ".1f", "n/a (killed)") == "n/a (killed)"


def test_a_parameter_named_like_a_study_column_keeps_both_columns() -> None:
    """A search space may name a parameter ``trial`` or ``objective``: it must not overwrite the table's own."""
    labels = _param_columns(["trial", "lr0", "objective", "objective (parameter)", "time (s)"])
    assert labels == [
        "trial (parameter)",
        "lr0",
        "objective (parameter)",
        "objective (parameter) (parameter)",
        "time (s) (parameter)",
    ]
    table = pd.DataFrame(
        {
            "trial": [0],
            "state": ["COMPLETE"],
            "status": ["FINISHED"],
            **{label: [f"v{i}"] for i, label in enumerate(labels)},
            "objective": [0.5],
            "time_s": [1.0],
            "cost_usd": [0.0],
            "retry_of": [""],
            "run_id": ["a"],
        }
    )
    meta = {"study": "s", "objective": "final_test_accuracy", "direction": "maximize"}
    shown = display_study(StudyReport(table, labels, None, meta))
    assert list(shown.columns).count("trial") == 1 and shown["trial"].tolist() == [0]
    assert [shown[label].tolist() for label in labels] == [[f"v{i}"] for i in range(len(labels))]
    assert shown["objective"].tolist() == ["0.5"] and shown["time (s)"].tolist() == ["1.0"]  # the table's own values


# --- bar charts: zero-based or a marked break, baselines drawn ----------------------------------------------


def _census_bars() -> LadderReport:
    table = pd.DataFrame(
        {
            "rung_index": [1, 2, 3],
            "rung": ["linear", "dnn", "wide-deep"],
            "variant": ["", "", ""],
            "reference": [math.nan] * 3,
            "best_mean": [0.8536, 0.8587, 0.8590],
            "best_sd": [0.0002, 0.0007, 0.0007],
            "majority_accuracy_mean": [0.7638] * 3,
        }
    )
    return LadderReport(table, {"ladder": "census"}, "tabular", "test_accuracy")


def test_bars_far_above_zero_get_a_marked_broken_axis_from_zero_and_the_majority_baseline() -> None:
    report = _census_bars()
    fig = best_figure(report)
    top, floor = fig.axes
    assert floor.get_ylim()[0] == 0 and [t for t in floor.get_yticks()] == [0]  # the bars' feet are at 0
    low, high = top.get_ylim()
    assert 0 < low < 76.38 < 85.36 < 85.90 < high  # the zoomed panel holds the bars' tops and the baseline
    assert "axis broken" in top.get_ylabel()
    heights = sorted(round(b.get_height(), 2) for b in top.patches)
    assert heights == [85.36, 85.87, 85.9]  # the same bars in both panels
    assert sorted(round(b.get_height(), 2) for b in floor.patches) == heights
    breaks = [line for line in [*top.lines, *floor.lines] if line.get_transform() in (top.transAxes, floor.transAxes)]
    assert len(breaks) == 2  # the diagonal strokes at the break, one pair per panel
    (baseline,) = [line for line in top.lines if line.get_label().startswith("majority-class baseline")]
    assert list(baseline.get_ydata()) == [pytest.approx(76.38)] * 2
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["majority-class baseline (76.38%)", "this run"]
    assert "grey line: the majority-class baseline" in captions(report)[0]


def test_bars_near_zero_start_at_zero_on_one_axis_and_a_non_primary_metric_draws_no_baseline() -> None:
    table = _census_bars().table.assign(best_mean=[0.10, 0.25, 0.30])
    (ax,) = best_figure(LadderReport(table, {"ladder": "yolo"}, "tabular", "test_accuracy")).axes
    assert ax.get_ylim()[0] == 0 and "axis broken" not in ax.get_ylabel()
    auc = LadderReport(table, {"ladder": "census"}, "tabular", "test_auc")  # the baseline is an accuracy
    (ax,) = best_figure(auc).axes
    assert not [line for line in ax.lines if "baseline" in str(line.get_label())]


# --- HTML tables scroll inside the page -----------------------------------------------------------------------


def _wide_page() -> str:
    wide = pd.DataFrame({f"a rather long column header {i}": [f"{i * 1234.5678:,.4f} ± 0.01"] for i in range(30)})
    return render_html(Document("wide", ["`harness ladder census`"], [Section("Rungs", table=wide)]))


def test_every_table_sits_in_a_focusable_box_that_scrolls_sideways() -> None:
    page = _wide_page()
    assert re.search(r"\.scroll \{ overflow-x: auto;", page)
    assert re.search(r'<div class="scroll" tabindex="0" role="region" aria-label="[^"]+">\s*<table', page)
    # numbers do not wrap, their headers do (a long header no longer sets its column's width)
    assert re.search(r"#s0-table td:nth-child\(1\)[^{]*\{ text-align: right; white-space: nowrap; \}", page)
    assert re.search(r"#s0-table th:nth-child\(1\)[^{]*\{ text-align: right; \}", page)


@pytest.mark.slow
def test_chromium_scrolls_a_wide_table_inside_the_page_not_the_page(tmp_path: Path) -> None:
    browser = chromium()
    probe = (
        "<script>window.onload=function(){var d=document.documentElement,b=document.querySelector('.scroll');"
        "document.body.setAttribute('data-m',[d.scrollWidth,d.clientWidth,b.scrollWidth,b.clientWidth].join(' '))}"
        "</script></body>"
    )
    path = tmp_path / "wide.html"
    path.write_text(_wide_page().replace("</body>", probe), encoding="utf-8")  # a copy with a probe, for the test
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}"]
    for width in (1024, 1600):
        dom = subprocess.run(
            [browser, *flags, f"--window-size={width},900", "--dump-dom", path.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        page_w, page_view, box_w, box_view = map(int, re.search(r'data-m="([\d ]+)"', dom).group(1).split())
        assert page_w == page_view, dom[-500:]  # the page itself never scrolls sideways
        assert box_w > box_view  # the table does, inside its box


# --- headers: relative paths, an honest commit ------------------------------------------------------------------


def test_paths_in_commands_are_written_relative_to_where_the_command_ran() -> None:
    command = (
        "harness ladder census --data-dir /work/shared/data --tracking-uri sqlite:////work/main/mlflow.db "
        "--out=/work/main/results --tensorboard-dir /work/main --prices /etc/prices.yaml"
    )
    assert local_paths(command, "/work/main") == (
        "harness ladder census --data-dir ../shared/data --tracking-uri sqlite:///mlflow.db "
        "--out=results --tensorboard-dir . --prices /etc/prices.yaml"  # only the root in common: as it is
    )
    assert local_paths(command, None) == command
    assert local_paths("harness ladder mnist --rungs 1,3 --vary backend=cpu,gpu", "/work/main").endswith("cpu,gpu")


def test_a_report_header_shows_relative_paths_and_says_a_dirty_commit_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = SimpleNamespace(
        info=SimpleNamespace(run_id="p0", status="FINISHED", start_time=0),
        data=SimpleNamespace(
            tags={
                "harness.command": f"harness ladder census --data-dir {tmp_path}/data --out {tmp_path}/results",
                "harness.cwd": str(tmp_path),
                "mlflow.source.git.commit": "0123abcd-dirty",
            }
        ),
    )
    meta = provenance(SimpleNamespace(display_uri="sqlite:///mlflow.db"), parent, ())
    assert meta["command"] == "harness ladder census --data-dir data --out results"
    assert md_commit(meta["git_commit"]) == "`0123abcd` (uncommitted changes)" and md_commit("abc") == "`abc`"
    monkeypatch.chdir(tmp_path)
    line = generated_by(f"harness report ladder census --out {tmp_path}/results")
    assert line.startswith("Generated from the MLflow tracking store by `harness report ladder census --out results`;")
    report = _killed_ladder()
    report.meta.update(command=meta["command"])
    text = to_markdown(report, f"harness report ladder census --out {tmp_path / 'results'}")
    assert str(tmp_path) not in text and "harness commit `0123abcd` (uncommitted changes)" in text
    assert "-dirty" not in text
    study = study_markdown(
        StudyReport(
            pd.DataFrame(columns=["trial", "state", "status", "objective", "time_s", "cost_usd", "retry_of"]),
            [],
            None,
            _study_meta(meta),
        ),
        "harness report study s",
    )
    assert "harness commit `0123abcd` (uncommitted changes)" in study and str(tmp_path) not in study


def _study_meta(provenance_meta: dict[str, str]) -> dict[str, str]:
    keys = (
        "study resumed space space_source space_format experiment objective direction sampler sampler_class "
        "sampler_seed pruner storage_kind max_trials max_parallel max_failed counts devices prices reference_scale "
        "cmle total_time_s total_cost_usd"
    ).split()
    return {**dict.fromkeys(keys, "x"), "resumed": "0", "cmle": "", "reference_scale": "1.0", **provenance_meta}
