"""The hardware benchmark's tables, read back from the tracking store.

``harness bench hardware`` logs one run per measurement under a parent run; this module groups
them per experiment x backend x batch size x precision and writes ``hardware.md|csv|png``:
throughput (the median over repetitions of each run's median window), time to accuracy and cost,
and the projection of the talks' headline runs from the measured steady throughput
(``talk_runs.yaml`` beside this module: what each run was, its size and the talk's own figure).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import load_yaml
from harness.errors import UserError
from harness.report import _html
from harness.report._core import (
    children,
    generated_by,
    markdown_table,
    provenance,
    require_store,
    search,
    write,
    write_csv,
    write_figure,
)
from harness.tracking import Tracker

EXPERIMENT = "bench-hardware"
_GROUP = ["tags.bench.experiment", "tags.bench.backend", "tags.device", "tags.bench.batch_size", "tags.bench.precision"]


@dataclasses.dataclass(frozen=True)
class TalkRun:
    """A headline run of the talks, to project on measured hardware."""

    name: str
    experiment: str  # the benchmark experiment whose throughput it is projected from
    examples: int  # examples (images, tiles) the run trains on: iterations x batch
    how: str  # where the size comes from
    talk: str  # the talk's own time and cost, quoted


def talk_runs() -> list[TalkRun]:
    text = resources.files("harness.report").joinpath("talk_runs.yaml").read_text(encoding="utf-8")
    return [TalkRun(**row) for row in load_yaml(text, "harness/report/talk_runs.yaml")]


@dataclasses.dataclass(frozen=True)
class HardwareReport:
    throughput: pd.DataFrame
    time_to_accuracy: pd.DataFrame
    projections: pd.DataFrame
    meta: dict[str, str]
    store: Tracker | None = dataclasses.field(default=None, repr=False, compare=False)  # its HTML is logged there


def find_parent(tracker: Tracker, run_id: str | None) -> Any:
    require_store(tracker, "harness bench hardware")
    if run_id is not None:
        return tracker.client.get_run(run_id)
    exp = tracker.client.get_experiment_by_name(EXPERIMENT)
    runs = [] if exp is None else search(tracker, [exp.experiment_id], "tags.harness.kind = 'bench-hardware'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.status == "FINISHED"]
    if not parents:
        raise UserError(f"no finished `harness bench hardware` run in {tracker.display_uri}; run it first")
    return max(parents, key=lambda r: r.info.start_time)


def _spread(values: pd.Series, fmt: str) -> str:
    """``median [min, max]`` over repetitions (the median alone for one)."""
    v = values.dropna().astype(float)
    if v.empty:
        return ""
    if len(v) == 1:
        return format(v.iloc[0], fmt)
    return f"{format(v.median(), fmt)} [{format(v.min(), fmt)}, {format(v.max(), fmt)}]"


def _rows(frame: pd.DataFrame) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """Per experiment x backend x device x batch x precision: the row's key columns and its runs."""
    for key, g in frame.groupby(_GROUP, sort=False):
        yield dict(zip(("experiment", "backend", "device", "batch", "precision"), key, strict=True)), g


def _throughput(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row, g in _rows(frame):
        unit = g["tags.bench.unit"].iloc[0]
        price = g["tags.price_per_hour"].iloc[0]
        rows.append(
            {
                **row,
                "reps": len(g),
                "examples/s, median [min, max]": _spread(g["metrics.bench_examples_per_s"], ",.1f") + f" {unit}",
                "examples_per_s": float(g["metrics.bench_examples_per_s"].median()),
                "step ms": _spread(g["metrics.bench_step_ms"], ",.1f"),
                "compile s": _spread(g["metrics.bench_compile_s"], ".1f"),
                "peak memory MiB": f"{g['metrics.bench_peak_memory_mb'].max():,.0f}",
                "$/h": price,
                "$ per 1M examples": _spread(g.get("metrics.bench_usd_per_million_examples", pd.Series()), ".4f"),
            }
        )
    return pd.DataFrame(rows)


def _tta(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row, g in _rows(frame):
        reached = g["metrics.bench_reached"].fillna(0).astype(float)
        rows.append(
            {
                **row,
                "target %": f"{100 * float(g['tags.bench.target'].iloc[0]):.2f}",
                "reached": f"{int(reached.sum())}/{len(g)}",
                "time to target s, median [min, max]": _spread(
                    g.get("metrics.bench_time_to_target_s", pd.Series()), ".1f"
                ),
                "of which data s": _spread(g["metrics.bench_data_load_s"], ".2f"),
                "step at target": _spread(g.get("metrics.bench_step_at_target", pd.Series()), ".0f"),
                "$ to target": _spread(g.get("metrics.bench_usd_to_target", pd.Series()), ".5f"),
            }
        )
    return pd.DataFrame(rows)


def _projections(throughput: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for run in talk_runs():
        measured = throughput[throughput["experiment"] == run.experiment] if len(throughput) else throughput
        for _, m in measured.iterrows():
            hours = run.examples / m["examples_per_s"] / 3600
            price = m["$/h"]
            rows.append(
                {
                    "talk's run": run.name,
                    "size": run.how,
                    "projected on": f"{m['backend']}: {m['device']}, batch {m['batch']}, {m['precision']}",
                    "from throughput": f"{m['examples_per_s']:,.1f}/s ({run.experiment})",
                    "projected hours": f"{hours:,.2f}",
                    "projected $": "" if price in ("", "unknown", None) else f"{hours * float(price):,.2f}",
                    "the talk": run.talk,
                }
            )
    return pd.DataFrame(rows)


def hardware_report(tracker: Tracker, run_id: str | None = None) -> HardwareReport:
    parent = find_parent(tracker, run_id)
    frame = children(tracker, parent)
    if frame.empty:
        raise UserError(f"parent run {parent.info.run_id} has no measurements")
    frame = frame[frame["status"] == "FINISHED"].sort_values("start_time")  # rows in the order measured
    thr = frame[frame["tags.bench.measure"] == "throughput"]
    tta = frame[frame["tags.bench.measure"] == "time-to-accuracy"]
    throughput = _throughput(thr) if len(thr) else pd.DataFrame()
    meta = provenance(tracker, parent, ("tensorflow", "keras", "mlflow"))
    meta.update({k: parent.data.tags.get(f"bench.{k}", "") for k in ("repeats", "windows", "quick")})
    # quick mode measures tiny stand-ins (32x32 ResNet, synthetic scenes): nothing to project from
    projections = _projections(throughput) if meta["quick"] != "true" else pd.DataFrame()
    return HardwareReport(throughput, _tta(tta) if len(tta) else pd.DataFrame(), projections, meta, tracker)


def _usd_per_million(row: Any) -> float:
    """$ per million examples at the row's median throughput; nan where the price is unknown."""
    try:
        price = float(row["$/h"])
    except (TypeError, ValueError):
        return float("nan")
    return price / 3600 / row["examples_per_s"] * 1e6 if row["examples_per_s"] > 0 else float("nan")


@_html.default_style
def hardware_figure(report: HardwareReport) -> Any:
    """Per experiment, a bar per backend x batch x precision: throughput, and cost per million
    examples where the backend has a price (matplotlib's Figure API: no pyplot state)."""
    from matplotlib.figure import Figure

    t = report.throughput
    cost = t.apply(_usd_per_million, axis=1) if len(t) else pd.Series(dtype=float)
    priced = bool(cost.notna().any())
    exps = list(dict.fromkeys(t["experiment"]))
    fig = Figure(figsize=(12 if priced else 8, 1.2 + 0.9 * len(t)), layout="constrained")
    axes = fig.subplots(len(exps), 2 if priced else 1, squeeze=False)
    for row, exp in zip(axes, exps, strict=True):
        mine = t["experiment"] == exp
        rows = t[mine]
        labels = [f"{r.backend} b{r.batch} {r.precision}" for r in rows.itertuples()]
        row[0].barh(labels, rows["examples_per_s"], color="tab:blue")
        row[0].set_title(f"{exp}: throughput", fontsize=9, loc="left")
        row[0].set_xlabel("examples/s (median over repetitions)", fontsize=8)
        if priced:
            row[1].barh(labels, cost[mine].fillna(0.0), color="tab:orange")
            row[1].set_title(f"{exp}: cost", fontsize=9, loc="left")
            row[1].set_xlabel("$ per 1M examples at that throughput (0: no price)", fontsize=8)
        for ax in row:
            ax.tick_params(labelsize=8)
            ax.invert_yaxis()  # rows top-down in the order measured, as in the table
    return fig


def _lead(m: dict[str, str]) -> list[str]:
    """The benchmark's provenance and method (Markdown and HTML alike)."""
    return [
        f"Benchmark run: `{m['command']}`",
        f"MLflow parent run `{m['parent_run_id']}` ({m['parent_status']}), started {m['started']}, "
        f"host `{m['host']}`; {m['versions']}; harness commit `{m['git_commit']}`",
        f"{m['repeats']} repetitions per row{' (quick mode: checks only)' if m['quick'] == 'true' else ''}. "
        f"Throughput: after one untimed warm-up execution (tracing and compilation, shown as *compile s*), "
        f"{m['windows']} timed windows of a fixed number of steps; each run's rate is its median window, "
        "the row shows the median [min, max] over repetitions. Peak memory: the GPU's peak, or on a CPU the "
        "process's resident memory at window ends.",
        "Time to accuracy (DAWNBench's rule): from before the dataset is read to the first evaluation at or "
        "above the target, evaluation time included.",
        "Cost = time x the backend's price per hour (harness/hardware/prices.yaml, each row with its source "
        "and date). A batch size other than the experiment's own keeps its configured learning rate.",
    ]


_TITLE = "Hardware: throughput, time to accuracy and cost"
_QUICK = "**QUICK MODE**: tiny stand-ins that check the benchmark runs; these are not measurements."
_PROJECTED = (
    "Projected = the run's examples / the steady throughput measured above (no evaluation, data "
    "loading or start-up), x the backend's price. These are projections, not runs."
)
_PROJECTIONS = "What the talks' runs would take here (projections)"


def write_hardware(report: HardwareReport, out_dir: Path, command: str, stem: str = "hardware") -> list[Path]:
    """``<stem>.md``, ``.csv``, ``_projections.csv``, ``.png`` and ``.html`` (also logged to the bench's parent run)."""
    m = report.meta
    quick = m["quick"] == "true"
    throughput = report.throughput.drop(columns=["examples_per_s"]) if len(report.throughput) else pd.DataFrame()
    lines = [
        f"# {_TITLE}",
        "",
        *([_QUICK, ""] if quick else []),
        generated_by(command),
        "",
        *[f"- {line}" for line in _lead(m)],
        "",
        "## Throughput",
        "",
        markdown_table(throughput) if len(throughput) else "(none)",
        "",
    ]
    if len(report.time_to_accuracy):
        lines += ["## Time to accuracy", "", markdown_table(report.time_to_accuracy), ""]
    if len(report.projections):
        lines += [f"## {_PROJECTIONS}", "", _PROJECTED, "", markdown_table(report.projections), ""]
    md, csv = write(out_dir, stem, "\n".join(lines), report.throughput)
    written = [md, csv]
    if len(report.projections):
        proj = out_dir / f"{stem}_projections.csv"
        write_csv(proj, report.projections)
        written.append(proj)
    figure = hardware_figure(report) if len(report.throughput) else None
    if figure is not None:
        png = out_dir / f"{stem}.png"
        write_figure(png, figure, dpi=110)
        written.append(png)
    sections = [
        _html.Section("Throughput", table=throughput, figures=[figure] if figure is not None else []),
        *([_html.Section("Time to accuracy", table=report.time_to_accuracy)] if len(report.time_to_accuracy) else []),
        *(
            [_html.Section(_PROJECTIONS, table=report.projections, notes=[_PROJECTED])]
            if len(report.projections)
            else []
        ),
    ]
    page = _html.publish_html(
        out_dir,
        stem,
        _TITLE,
        sections,
        lead=[*([_QUICK] if quick else []), *_lead(m)],
        generated=generated_by(command),
        tracker=report.store,
        run_id=m["parent_run_id"],
    )
    written.append(page)
    return written
