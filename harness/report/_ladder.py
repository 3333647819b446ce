"""Ladder comparison tables, rebuilt from the tracking store (never from memory).

The columns are the task's (:meth:`harness.tasks.Task.report_columns`), plus the
reference, the deltas of the best primary metric, time, throughput and cost.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from harness._secrets import redact_text
from harness.errors import UserError
from harness.report import _core, _html
from harness.tasks import Task, get_task
from harness.tracking import Tracker, ladder_experiment, quote

TOLERANCE = 0.003  # "within 0.3 points of the reference"


@dataclasses.dataclass
class LadderReport:
    table: pd.DataFrame  # one row per rung (and variant), numeric
    meta: dict[str, str]  # where the numbers came from
    task: str = "classification"
    metric: str = "test_accuracy"  # the per-evaluation metric the references quote
    # test metrics per evaluation step, mean over the seeds of each rung's FINISHED runs:
    # source, rung_index, rung, variant, metric (``accuracy``), step, value
    curves: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    store: Tracker | None = dataclasses.field(default=None, repr=False, compare=False)  # its HTML is logged there

    @property
    def best_label(self) -> str:
        """``best accuracy``: what ``best_mean`` holds."""
        return f"best {self.metric.removeprefix('test_')}"

    def percent(self) -> bool:
        return self.metric.removeprefix("test_") in get_task(self.task).percent


def find_parent_run(tracker: Tracker, ladder: str, run_id: str | None, scale: str | None) -> Any:
    """The given parent run, else the latest parent run of ``ladder`` (at ``scale``)."""
    _core.require_store(tracker, f"harness ladder {ladder}")
    exp = tracker.client.get_experiment_by_name(ladder_experiment(ladder))
    if exp is None:
        raise UserError(f"no runs of ladder {ladder!r} in {tracker.display_uri}; run `harness ladder {ladder}` first")
    if run_id:
        try:
            return tracker.client.get_run(run_id)
        except Exception as exc:  # MlflowException: RESOURCE_DOES_NOT_EXIST
            raise UserError(f"no run {run_id!r} in {tracker.display_uri} ({exc})") from None
    filters = ["tags.`harness.kind` = 'ladder'"]
    if scale:
        filters.append(f"tags.`harness.scale` = '{quote(scale)}'")
    runs = [
        run
        for run in _core.search(tracker, [exp.experiment_id], " and ".join(filters), ["attributes.start_time DESC"])
        if MLFLOW_PARENT_RUN_ID not in run.data.tags
    ]
    if not runs:
        raise UserError(f"no {scale or ''} parent run of ladder {ladder!r} in {tracker.display_uri}")
    # the latest run of every rung that finished; else the latest with any rung run (never an empty
    # parent left by Ctrl-C at start-up); a partial run is reported only when asked for by --run
    for run in runs:
        if run.info.status == "FINISHED" and not run.data.tags.get("harness.rungs_selected"):
            return run
    for run in runs:
        if not _core.children(tracker, run).empty:
            return run
    raise UserError(f"no parent run of ladder {ladder!r} in {tracker.display_uri} has any rung run yet")


def ladder_report(
    tracker: Tracker,
    ladder: str,
    run_id: str | None = None,
    scale: str | None = None,
    also: tuple[str, ...] = (),
    rungs: str | None = None,
) -> LadderReport:
    """The table of one ladder run; ``also``: more parent runs (another scale) as extra rows;
    ``rungs``: only these rung indices (``"7,8"``, ``"7-8"``), for a side table."""
    parent = find_parent_run(tracker, ladder, run_id, scale)
    runs = _core.children(tracker, parent)
    if runs.empty:
        raise UserError(f"parent run {parent.info.run_id} of ladder {ladder!r} has no rung runs yet")
    frames = [_with_variant(runs, "").assign(parent_run_id=parent.info.run_id, source=0)]
    also_lines = []
    for other_id in also:
        other = find_parent_run(tracker, ladder, other_id, None)
        extra = _core.children(tracker, other)
        if extra.empty:
            raise UserError(f"parent run {other_id} of ladder {ladder!r} has no rung runs")
        other_scale = other.data.tags.get("harness.scale", "?")
        frames.append(_with_variant(extra, f"{other_scale} scale").assign(parent_run_id=other_id, source=len(frames)))
        also_lines.append(
            f"Rows marked *{other_scale} scale*: parent run `{other_id}` ({other.info.status}), "
            f"`{redact_text(other.data.tags.get('harness.command', '?'))}`, "
            f"device {other.data.tags.get('device', '?')}"
        )
    tags = parent.data.tags
    task = get_task(tags.get("harness.task", "classification"))
    metric = tags.get("harness.metric", f"test_{task.primary}")
    runs = pd.concat(frames, ignore_index=True)
    if rungs:
        keep = _rung_indices(rungs)
        runs = runs[runs["tags.harness.rung_index"].astype(int).isin(keep)]
        if runs.empty:
            raise UserError(f"--rungs {rungs}: no rung runs with these indices under parent run {parent.info.run_id}")
    table = _aggregate(runs, task, metric)
    curves = _curves(tracker, runs, task, metric)
    meta = {
        "ladder": ladder,
        **_core.provenance(tracker, parent, ("tensorflow", "keras", "mlflow")),
        "scale": tags.get("harness.scale", "?"),
        "seeds": tags.get("harness.seeds", "?"),
        "device": tags.get("device", "?"),
        "data_checksum": tags.get("data.checksum", "?"),
        "price_per_hour": tags.get("price_per_hour", "unknown"),
        "also": "\n".join(also_lines),
        "notes": tags.get("harness.ladder_notes", ""),
    }
    return LadderReport(table, meta, task.name, metric, curves, tracker)


def _rung_indices(spec: str) -> set[int]:
    keep: set[int] = set()
    for part in spec.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise UserError(f"--rungs expects indices and ranges like 7,8 or 2-5, but got {spec!r}")
        first, last = int(lo), int(hi if dash else lo)
        if first > last or last - first > 10_000:  # no ladder has that many rungs: refuse before building it
            raise UserError(f"--rungs: {part.strip()!r} is not a range of rung indices like 2-5")
        keep.update(range(first, last + 1))
    return keep


def _with_variant(runs: pd.DataFrame, prefix: str) -> pd.DataFrame:
    variant = runs["tags.harness.variant"] if "tags.harness.variant" in runs else pd.Series("", index=runs.index)
    variant = variant.fillna("")
    if prefix:  # rows of another parent run: say which scale (and split) they ran at
        split = runs["tags.data.split"].fillna("") if "tags.data.split" in runs else pd.Series("", index=runs.index)
        pairs = zip(variant, split, strict=True)
        variant = [", ".join(filter(None, [prefix, v or (f"split={s}" if s else "")])) for v, s in pairs]
    return runs.assign(variant=variant)


def _aggregate(runs: pd.DataFrame, task: Task, metric: str) -> pd.DataFrame:
    """Mean and sd over seeds of each rung's (and variant's) FINISHED runs."""
    runs = runs.assign(rung_index=runs["tags.harness.rung_index"].astype(int))
    columns = [(c.metric, c.metric) for c in task.report_columns()] + [("best", f"best_{metric}"), *_TIMINGS]
    rows = []
    for (source, index, variant_label), group in runs.groupby(["source", "rung_index", "variant"], sort=True):
        done = group[group["status"] == "FINISHED"]
        first = group.iloc[0]
        reference = first.get("tags.harness.reference") or ""
        row: dict[str, Any] = {
            "source": source,  # 0: the report's run; 1, 2, ...: the --also runs
            "rung_index": index,
            "rung": first["tags.harness.rung"],
            "variant": variant_label,
            "changes": first["tags.harness.rung_changes"],
            "note": _text(first.get("tags.harness.rung_note")),
            "reference": float(reference) if reference else math.nan,
            "runs": len(done),
            "parent_run_id": first["parent_run_id"],
            "runs_not_finished": len(group) - len(done),
        }
        for out, key in columns:
            column = f"metrics.{key}"
            values = done[column].dropna().astype(float) if column in done else pd.Series(dtype=float)
            row[f"{out}_mean"] = values.mean() if len(values) else math.nan
            row[f"{out}_sd"] = values.std(ddof=1) if len(values) > 1 else math.nan
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["source", "variant", "rung_index"], kind="stable").reset_index(drop=True)
    sign = 1.0 if task.directions.get(metric.removeprefix("test_"), "maximize") == "maximize" else -1.0
    table["delta_prev"] = table.groupby("variant")["best_mean"].diff()
    table["vs_reference"] = sign * (table["best_mean"] - table["reference"])
    return table


def _curves(tracker: Tracker, runs: pd.DataFrame, task: Task, metric: str) -> pd.DataFrame:
    """Each rung's (and variant's) test curves: the metric histories of its FINISHED runs, mean over seeds."""
    names = list(dict.fromkeys([metric.removeprefix("test_"), *task.curve_metrics()]))
    rows = []
    for _, run in runs[runs["status"] == "FINISHED"].iterrows():
        key = {
            "source": run["source"],
            "rung_index": int(run["tags.harness.rung_index"]),
            "rung": run["tags.harness.rung"],
            "variant": run["variant"],
        }
        for name in names:
            for point in tracker.client.get_metric_history(run["run_id"], f"test_{name}"):
                rows.append({**key, "metric": name, "step": int(point.step), "value": float(point.value)})
    if not rows:
        return pd.DataFrame(columns=["source", "rung_index", "rung", "variant", "metric", "step", "value"])
    keys = ["source", "rung_index", "rung", "variant", "metric", "step"]
    return pd.DataFrame(rows).groupby(keys, sort=True, as_index=False)["value"].mean()


def _text(value: Any) -> str:
    """A tag's value, or "" where the run has none (pandas reads a missing tag as NaN)."""
    return value if isinstance(value, str) else ""


_TIMINGS = (
    ("train_s", "time_train_s"),
    ("total_s", "time_total_s"),
    ("wall_s", "time_wall_s"),  # multi-worker runs: the supervisor's clock, worker start-up included
    ("warmup_s", "time_warmup_s"),
    ("examples_per_s", "examples_per_s"),
    ("cost_usd", "cost_usd"),
)


def _fmt(mean: float, sd: float, percent: bool) -> str:
    if math.isnan(mean):
        return "n/a"
    if percent:
        return f"{100 * mean:.2f}" + ("" if math.isnan(sd) else f" ± {100 * sd:.2f}")
    return f"{mean:.4g}" + ("" if math.isnan(sd) else f" ± {sd:.2g}")


def _delta(value: float, percent: bool) -> str:
    return "" if math.isnan(value) else (f"{100 * value:+.2f}" if percent else f"{value:+.4g}")


def display_table(report: LadderReport) -> pd.DataFrame:
    """The table people read: the task's columns as mean ± sd, deltas (in points for percentages)."""
    t = report.table
    pct = report.percent()
    unit = " (pts)" if pct else ""
    columns: dict[str, Any] = {"#": t["rung_index"], "rung": t["rung"]}
    if t["variant"].astype(bool).any():
        columns["variant"] = t["variant"]
    columns["what changed"] = t["changes"]
    if t["note"].astype(bool).any():  # the talk's words where it gave no number (the YOLO ladder)
        columns["the talk said"] = t["note"]
    if t["reference"].notna().any():
        columns["reference" + (" %" if pct else "")] = [
            "" if math.isnan(r) else (f"{100 * r:.1f}" if pct else f"{r:.4g}") for r in t["reference"]
        ]
    for col in get_task(report.task).report_columns():
        mean, sd = t.get(f"{col.metric}_mean"), t.get(f"{col.metric}_sd")
        if mean is None or (col.optional and not mean.notna().any()):
            continue  # e.g. precision and recall: 2-class data only
        columns[col.header] = [_fmt(m, d, col.percent) for m, d in zip(mean, sd, strict=True)]
    columns[f"Δ best vs prev{unit}"] = [_delta(v, pct) for v in t["delta_prev"]]
    if t["reference"].notna().any():
        columns[f"best vs ref{unit}"] = [_delta(v, pct) for v in t["vs_reference"]]
    columns["train time (s)"] = [f"{v:.1f}" for v in t["train_s_mean"]]
    if t["wall_s_mean"].notna().any():  # a multi-worker run beside one-process runs: whole wall times
        wall = t["wall_s_mean"].where(t["wall_s_mean"].notna(), t["total_s_mean"])
        columns["wall time (s)"] = [f"{v:.1f}" for v in wall]
    columns[f"{get_task(report.task).examples}/s"] = [
        f"{v:,.0f}" if v >= 100 else f"{v:.1f}" for v in t["examples_per_s_mean"]
    ]
    columns["cost/run ($)"] = ["n/a" if math.isnan(v) else f"{v:.4f}" for v in t["cost_usd_mean"]]
    columns["runs"] = t["runs"]
    return pd.DataFrame(columns)


def verdict(report: LadderReport) -> list[str]:
    """Which rungs fall short of the reference, the talk's ordering, and which rungs bought nothing.

    At smoke scale (a few steps on a data subset, to check that everything runs) the numbers are
    not comparable with the talk's: one line says so instead of a verdict per rung.
    """
    if report.meta.get("scale") == "smoke":
        return [
            "Smoke scale: a few steps on a data subset, to check that every rung runs; these numbers are not "
            "comparable with the talk's references (run the standard scale for that)."
        ]
    table = report.table if "variant" in report.table else report.table.assign(variant="")
    pct = report.percent()
    scale, unit = (100.0, " points") if pct else (1.0, "")
    better = get_task(report.task).directions.get(report.metric.removeprefix("test_"), "maximize") == "maximize"
    lines = []
    for variant, all_rungs in table.groupby("variant", sort=False):
        t = all_rungs.dropna(subset=["reference", "best_mean"])
        where = f" [{variant}]" if variant else ""
        short = t[t["vs_reference"] < -TOLERANCE]
        if short.empty and not t.empty:
            lines.append(f"Every rung{where} is within {scale * TOLERANCE:.1f}{unit} of its reference or better.")
        for _, row in short.iterrows():
            lines.append(
                f"Rung {row['rung_index']} ({row['rung']}){where} is {scale * -row['vs_reference']:.2f}{unit} "
                f"{'below' if better else 'above'} its reference."
            )
        # same ordering: wherever the talk's reference improves, ours improves too (ties impose nothing)
        rows = list(t.itertuples())
        sign = 1 if better else -1
        inversions = [
            f"{a.rung_index}->{b.rung_index}"
            for i, a in enumerate(rows)
            for b in rows[i + 1 :]
            if (sign * a.reference < sign * b.reference) and not (sign * a.best_mean < sign * b.best_mean)
        ]
        if not rows:
            pass  # no reference numbers (the talk's words are in the table): nothing to order
        elif len(rows) == 1:
            lines.append(f"Only 1 rung{where} has a reference: there is no ordering to compare.")
        elif inversions:
            lines.append(
                f"Ordering{where} differs from the talk's where the reference improves but ours does not: "
                f"{', '.join(inversions)}."
            )
        else:
            lines.append(f"Ordering by {report.best_label}{where} matches the talk's.")
        # each rung should buy something: name the ones that did not
        if "delta_prev" in all_rungs:
            flat = [
                f"{r.rung_index} ({r.rung}, {_delta(r.delta_prev, pct)})"
                for r in all_rungs.itertuples()
                if sign * r.delta_prev <= 0  # NaN (the first rung) compares False
            ]
            if flat:
                lines.append(
                    f"Rungs{where} whose {report.best_label} is not better than the rung before: "
                    f"{', '.join(flat)}{' pts' if pct else ''}."
                )
    return lines


def _title(report: LadderReport) -> str:
    m = report.meta
    return f"Ladder `{m['ladder']}`: {m['scale']} scale, {m['seeds']} seed(s)"


def _lead(report: LadderReport) -> list[str]:
    """The provenance lines under the title (Markdown and HTML alike)."""
    m = report.meta
    return [
        f"Ladder run: `{m['command']}`" if m["command"] else "Ladder run: (command not recorded)",
        f"MLflow parent run `{m['parent_run_id']}` ({m['parent_status']}), started {m['started']}",
        f"Device: {m['device']} on host `{m['host']}`; {m['versions']}; harness commit `{m['git_commit']}`",
        f"Data checksum (sha256): `{m['data_checksum']}`",
        f"Cost = wall time x {m['price_per_hour']} $/h (harness/hardware/prices.yaml)",
        *(m["also"].split("\n") if m.get("also") else []),
        f"Task {report.task}; on the test set: *final* at the last step, *{report.best_label}* = best seen at "
        "an evaluation step (what the talk quotes); mean ± sd over seeds. Train time includes warm-up, "
        "excludes evaluation.",
        "Times and examples/s are wall-clock as measured in this run, on whatever else shared the machine; "
        "controlled throughput numbers come from `nox -s bench` (results/bench/).",
    ]


_NOTES_HEADING = "Where this ladder differs from its reference, on purpose"


def to_markdown(report: LadderReport, report_command: str) -> str:
    head = [
        f"# {_title(report)}",
        "",
        _core.generated_by(report_command),
        "",
        *[f"- {line}" for line in _lead(report)],
        "",
    ]
    body = _core.markdown_table(display_table(report))
    notes = [line for line in report.meta.get("notes", "").split("\n") if line]
    tail = ["", f"## {_NOTES_HEADING}", "", *[f"- {n}" for n in notes]]
    verdicts = "\n".join(f"- {line}" for line in verdict(report))
    return "\n".join(head) + "\n" + body + "\n\n" + verdicts + "\n" + ("\n".join(tail) + "\n" if notes else "")


def _series_label(rung_index: int, rung: str, variant: str) -> str:
    return f"{rung_index} {rung}" + (f" [{variant}]" if variant else "")


_DASHES = ("-", "--", ":", "-.")


@_html.default_style
def curves_figure(report: LadderReport) -> Any:
    """Every rung's test curves on shared axes, one panel per curve metric (the task's styling);
    ``None`` when no run logged a curve."""
    c = report.curves
    if c.empty:
        return None
    from matplotlib.figure import Figure

    task = get_task(report.task)
    names = [
        m for m in dict.fromkeys([report.metric.removeprefix("test_"), *task.curve_metrics()]) if m in set(c["metric"])
    ]
    variants = list(dict.fromkeys(c["variant"]))
    fig = Figure(figsize=(6.2 * len(names), 5.2), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        panel = c[c["metric"] == name]
        for (_, index, rung, variant), g in panel.groupby(["source", "rung_index", "rung", "variant"], sort=True):
            ax.plot(
                g["step"],
                g["value"],
                color=f"C{int(index) % 10}",
                ls=_DASHES[variants.index(variant) % len(_DASHES)],
                lw=1.6,
                label=_series_label(int(index), str(rung), str(variant)),
            )
        task.style_panel(ax, name, [{f"test_{name}": v} for v in panel["value"]])
        ax.set_xlabel("step")
        ax.set_ylabel(f"test {name}")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"{report.meta.get('ladder', '')}: test curves per rung (mean over seeds)")
    return fig


@_html.default_style
def best_figure(report: LadderReport) -> Any:
    """A bar per rung (grouped per variant) of the best metric, error bars = sd over seeds, and the
    talk's reference marked on each rung's bars; ``None`` when no rung has a value."""
    t = report.table
    if t.empty or not t["best_mean"].notna().any():
        return None
    from matplotlib.figure import Figure

    scale = 100.0 if report.percent() else 1.0
    rungs = t.drop_duplicates("rung_index").sort_values("rung_index")
    where = {int(i): k for k, i in enumerate(rungs["rung_index"])}
    variants = list(dict.fromkeys(t["variant"]))
    width = 0.8 / len(variants)
    fig = Figure(figsize=(max(6.0, 1.1 * len(rungs) * max(1, len(variants) / 1.5) + 2), 4.6), layout="constrained")
    ax = fig.subplots()
    marked = False
    for k, variant in enumerate(variants):
        rows = t[t["variant"] == variant]
        xs = [where[int(i)] - 0.4 + width * (k + 0.5) for i in rows["rung_index"]]
        sd = rows["best_sd"] * scale
        ax.bar(
            xs,
            rows["best_mean"] * scale,
            width * 0.92,
            yerr=sd if sd.notna().any() else None,
            capsize=3,
            color=f"C{k % 10}",
            label=variant or "this run",
        )
        refs = [(x, r * scale) for x, r in zip(xs, rows["reference"], strict=True) if not math.isnan(r)]
        if refs:
            ax.hlines(
                [r for _, r in refs],
                [x - width / 2 for x, _ in refs],
                [x + width / 2 for x, _ in refs],
                colors="black",
                lw=2,
                label="_nolegend_" if marked else "the talk's reference",
            )
            marked = True
    values = [v * scale for v in [*t["best_mean"].dropna(), *t["reference"].dropna()]]
    lo, hi = min(values), max(values)
    if lo > 0:  # zoom: the rungs differ by fractions of a point near the top of the scale
        ax.set_ylim(max(0.0, lo - 0.6 * (hi - lo) - 0.02 * hi), hi + 0.15 * (hi - lo) + 0.01 * hi)
    ax.set_xticks(range(len(rungs)), [f"{i} {r}" for i, r in zip(rungs["rung_index"], rungs["rung"], strict=True)])
    ax.tick_params(axis="x", labelrotation=25, labelsize=8)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_ylabel(report.best_label + (" (%)" if scale != 1 else ""))
    ax.grid(axis="y", alpha=0.3)
    if len(variants) > 1 or marked:
        fig.legend(loc="outside right upper", fontsize=8, frameon=False)  # beside the bars, never over them
    errors = " ± sd over seeds" if t["best_sd"].notna().any() else ""
    ax.set_title(f"{report.best_label} per rung{errors}")
    return fig


def captions(report: LadderReport) -> tuple[str, str]:
    """Under the bars and under the curves: the reference marks and dashes only where there are some."""
    table = report.table
    marks = "; black marks: the talk's reference" if "reference" in table and table["reference"].notna().any() else ""
    dashes = ", dashes = variant" if "variant" in table and table["variant"].nunique() > 1 else ""
    return (
        f"Bars: {report.best_label} (mean over the seeds' FINISHED runs){marks}.",
        f"Test metrics at each evaluation step, every rung on shared axes; colour = rung{dashes}.",
    )


def html_sections(report: LadderReport) -> list[_html.Section]:
    best, curves = best_figure(report), curves_figure(report)
    bars_caption, curves_caption = captions(report)
    sections = [
        _html.Section("Rungs", table=display_table(report)),
        _html.Section("Verdict", notes=verdict(report)),
    ]
    if best is not None:
        sections.append(
            _html.Section(f"{report.best_label.capitalize()} per rung", figures=[best], caption=bars_caption)
        )
    if curves is not None:
        sections.append(_html.Section("Learning curves", figures=[curves], caption=curves_caption))
    notes = [line for line in report.meta.get("notes", "").split("\n") if line]
    if notes:
        sections.append(_html.Section(_NOTES_HEADING, notes=notes))
    return sections


def write_report(
    report: LadderReport, out_dir: Path, report_command: str, name: str | None = None
) -> tuple[Path, Path, Path]:
    """``<ladder>_ladder.md``, ``.csv`` and ``.html`` (suffixed ``_<scale>`` unless standard scale), or
    ``<name>``; the HTML is also logged to the ladder's parent run."""
    scale = report.meta["scale"]
    stem = name or f"{report.meta['ladder']}_ladder" + ("" if scale == "standard" else f"_{scale}")
    md, csv = _core.write(out_dir, stem, to_markdown(report, report_command), report.table)
    page = _html.publish_html(
        out_dir,
        stem,
        _title(report),
        html_sections(report),
        lead=_lead(report),
        generated=_core.generated_by(report_command),
        tracker=report.store,
        run_id=report.meta["parent_run_id"],
    )
    return md, csv, page
