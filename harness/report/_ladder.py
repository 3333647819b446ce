"""Ladder comparison tables, rebuilt from the tracking store (never from memory)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from harness.errors import UserError
from harness.ladders._runner import experiment_name
from harness.tracking import Tracker

TOLERANCE = 0.003  # "within 0.3 points of the reference"


@dataclasses.dataclass
class LadderReport:
    table: pd.DataFrame  # one row per rung, numeric
    meta: dict[str, str]  # where the numbers came from


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """``mlflow.search_runs`` reads the global URI; set it for this call only."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    # restore the global exactly (usually "unset"): setting it back explicitly would pin a default
    # resolved against today's working directory for every later MLflow call in this process
    previous = utils._tracking_uri
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        utils._tracking_uri = previous


def find_parent_run(tracker: Tracker, ladder: str, run_id: str | None, scale: str | None) -> Any:
    """The given parent run, else the latest parent run of ``ladder`` (at ``scale``)."""
    if tracker.uri.startswith("sqlite:///") and not Path(tracker.uri.removeprefix("sqlite:///")).exists():
        raise UserError(
            f"no tracking store at {tracker.uri.removeprefix('sqlite:///')}; run "
            f"`harness ladder {ladder}` here first, or pass --tracking-uri"
        )
    exp = tracker.client.get_experiment_by_name(experiment_name(ladder))
    if exp is None:
        raise UserError(f"no runs of ladder {ladder!r} in {tracker.uri}; run `harness ladder {ladder}` first")
    if run_id:
        try:
            return tracker.client.get_run(run_id)
        except Exception as exc:  # MlflowException: RESOURCE_DOES_NOT_EXIST
            raise UserError(f"no run {run_id!r} in {tracker.uri} ({exc})") from None
    filters = ["tags.`harness.kind` = 'ladder'"]
    if scale:
        filters.append(f"tags.`harness.scale` = '{scale}'")
    runs = [
        run
        for run in tracker.client.search_runs(
            [exp.experiment_id], " and ".join(filters), order_by=["attributes.start_time DESC"]
        )
        if MLFLOW_PARENT_RUN_ID not in run.data.tags
    ]
    if not runs:
        raise UserError(f"no {scale or ''} parent run of ladder {ladder!r} in {tracker.uri}")
    return runs[0]


def ladder_report(tracker: Tracker, ladder: str, run_id: str | None = None, scale: str | None = None) -> LadderReport:
    import mlflow

    parent = find_parent_run(tracker, ladder, run_id, scale)
    with _tracking_uri(tracker.uri):
        runs = mlflow.search_runs(
            experiment_ids=[parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            output_format="pandas",
        )
    if runs.empty:
        raise UserError(f"parent run {parent.info.run_id} of ladder {ladder!r} has no rung runs yet")
    table = _aggregate(runs)
    tags = parent.data.tags
    meta = {
        "ladder": ladder,
        "parent_run_id": parent.info.run_id,
        "parent_status": parent.info.status,
        "tracking_uri": tracker.uri,
        "scale": tags.get("harness.scale", "?"),
        "seeds": tags.get("harness.seeds", "?"),
        "command": tags.get("harness.command", ""),
        "device": tags.get("device", "?"),
        "host": tags.get("host", "?"),
        "git_commit": tags.get("mlflow.source.git.commit", "?"),
        "versions": ", ".join(
            f"{k.removesuffix('.version')} {tags[k]}"
            for k in ("tensorflow.version", "keras.version", "mlflow.version")
            if k in tags
        ),
        "data_checksum": tags.get("data.checksum", "?"),
        "price_per_hour": tags.get("price_per_hour", "unknown"),
        "started": datetime.fromtimestamp(parent.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return LadderReport(table, meta)


def _aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of each rung's (and variant's) FINISHED runs."""
    variant = runs["tags.harness.variant"] if "tags.harness.variant" in runs else pd.Series("", index=runs.index)
    runs = runs.assign(rung_index=runs["tags.harness.rung_index"].astype(int), variant=variant.fillna(""))
    rows = []
    for (index, variant_label), group in runs.groupby(["rung_index", "variant"], sort=True):
        done = group[group["status"] == "FINISHED"]
        first = group.iloc[0]
        reference = first.get("tags.harness.reference") or ""
        row: dict[str, Any] = {
            "rung_index": index,
            "rung": first["tags.harness.rung"],
            "variant": variant_label,
            "changes": first["tags.harness.rung_changes"],
            "reference": float(reference) if reference else math.nan,
            "runs": len(done),
            "runs_not_finished": len(group) - len(done),
        }
        for out, metric in _AGGREGATED:
            column = f"metrics.{metric}"
            values = done[column].dropna().astype(float) if column in done else pd.Series(dtype=float)
            row[f"{out}_mean"] = values.mean() if len(values) else math.nan
            row[f"{out}_sd"] = values.std(ddof=1) if len(values) > 1 else math.nan
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["variant", "rung_index"], kind="stable").reset_index(drop=True)
    table["delta_prev"] = table.groupby("variant")["best_mean"].diff()
    table["vs_reference"] = table["best_mean"] - table["reference"]
    return table


_AGGREGATED = (
    ("final", "final_test_accuracy"),
    ("best", "best_test_accuracy"),
    ("precision", "final_test_precision"),
    ("recall", "final_test_recall"),
    ("train_s", "time_train_s"),
    ("total_s", "time_total_s"),
    ("warmup_s", "time_warmup_s"),
    ("examples_per_s", "examples_per_s"),
    ("cost_usd", "cost_usd"),
)


def _pct(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{100 * mean:.2f}" + ("" if math.isnan(sd) else f" ± {100 * sd:.2f}")


def _points(value: float) -> str:
    return "" if math.isnan(value) else f"{100 * value:+.2f}"


def display_table(report: LadderReport) -> pd.DataFrame:
    """The table people read: percentages, mean ± sd, deltas in points."""
    t = report.table
    columns: dict[str, Any] = {"#": t["rung_index"], "rung": t["rung"]}
    if t["variant"].astype(bool).any():
        columns["variant"] = t["variant"]
    extra: dict[str, Any] = {}
    if t["precision_mean"].notna().any():  # 2-class data: the positive class, at the last step
        extra = {
            "precision %": [_pct(m, s) for m, s in zip(t["precision_mean"], t["precision_sd"], strict=True)],
            "recall %": [_pct(m, s) for m, s in zip(t["recall_mean"], t["recall_sd"], strict=True)],
        }
    return pd.DataFrame(
        {
            **columns,
            "what changed": t["changes"],
            "reference %": [("" if math.isnan(r) else f"{100 * r:.1f}") for r in t["reference"]],
            "final acc %": [_pct(m, s) for m, s in zip(t["final_mean"], t["final_sd"], strict=True)],
            "best acc %": [_pct(m, s) for m, s in zip(t["best_mean"], t["best_sd"], strict=True)],
            **extra,
            "Δ best vs prev (pts)": [_points(v) for v in t["delta_prev"]],
            "best vs ref (pts)": [_points(v) for v in t["vs_reference"]],
            "train time (s)": [f"{v:.1f}" for v in t["train_s_mean"]],
            "examples/s": [f"{v:,.0f}" for v in t["examples_per_s_mean"]],
            "cost/run ($)": [("n/a" if math.isnan(v) else f"{v:.4f}") for v in t["cost_usd_mean"]],
            "runs": t["runs"],
        }
    )


def verdict(report: LadderReport) -> list[str]:
    """Which rungs fall short of the reference, the talk's ordering, and which rungs bought nothing."""
    table = report.table if "variant" in report.table else report.table.assign(variant="")
    lines = []
    for variant, all_rungs in table.groupby("variant", sort=False):
        t = all_rungs.dropna(subset=["reference", "best_mean"])
        where = f" [{variant}]" if variant else ""
        short = t[t["vs_reference"] < -TOLERANCE]
        if short.empty and not t.empty:
            lines.append(f"Every rung{where} is within {100 * TOLERANCE:.1f} points of its reference or better.")
        for _, row in short.iterrows():
            lines.append(
                f"Rung {row['rung_index']} ({row['rung']}){where} is {100 * -row['vs_reference']:.2f} points "
                "below its reference."
            )
        # same ordering: wherever the talk's reference rises, ours rises too (ties impose nothing)
        rows = list(t.itertuples())
        inversions = [
            f"{a.rung_index}->{b.rung_index}"
            for i, a in enumerate(rows)
            for b in rows[i + 1 :]
            if (a.reference < b.reference) and not (a.best_mean < b.best_mean)
        ]
        if len(rows) < 2:
            lines.append(f"Only {len(rows)} rung{where} has a reference: there is no ordering to compare.")
        elif inversions:
            lines.append(
                f"Ordering{where} differs from the talk's where the reference rises but ours does not: "
                f"{', '.join(inversions)}."
            )
        else:
            lines.append(f"Ordering by best accuracy{where} matches the talk's.")
        # each rung should buy something: name the ones that did not
        if "delta_prev" in all_rungs:
            flat = [
                f"{r.rung_index} ({r.rung}, {100 * r.delta_prev:+.2f})"
                for r in all_rungs.itertuples()
                if r.delta_prev <= 0  # NaN (the first rung) compares False
            ]
            if flat:
                lines.append(f"Rungs{where} whose best accuracy is not above the rung before: {', '.join(flat)} pts.")
    return lines


def to_markdown(report: LadderReport, report_command: str) -> str:
    m = report.meta
    head = [
        f"# Ladder `{m['ladder']}`: {m['scale']} scale, {m['seeds']} seed(s)",
        "",
        f"Generated from the MLflow tracking store by `{report_command}`; do not edit by hand.",
        "",
        f"- Ladder run: `{m['command']}`" if m["command"] else "- Ladder run: (command not recorded)",
        f"- MLflow parent run `{m['parent_run_id']}` ({m['parent_status']}), started {m['started']}",
        f"- Device: {m['device']} on host `{m['host']}`; {m['versions']}; harness commit `{m['git_commit']}`",
        f"- Data checksum (sha256): `{m['data_checksum']}`",
        f"- Cost = wall time x {m['price_per_hour']} $/h (harness/hardware/prices.yaml)",
        "- Accuracy on the test set: *final* at the last step, *best* = best seen at an evaluation "
        "step (what the talk quotes); mean ± sd over seeds. Train time includes warm-up, excludes evaluation.",
        "- Times and examples/s are wall-clock as measured in this run, on whatever else shared the machine; "
        "controlled throughput numbers come from `nox -s bench` (results/bench/).",
        "",
    ]
    body = display_table(report).to_markdown(index=False, disable_numparse=True)
    return "\n".join(head) + "\n" + body + "\n\n" + "\n".join(f"- {line}" for line in verdict(report)) + "\n"


def write_report(report: LadderReport, out_dir: Path, report_command: str) -> tuple[Path, Path]:
    """``<ladder>_ladder.md`` and ``.csv`` (suffixed ``_<scale>`` unless standard scale)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scale = report.meta["scale"]
    stem = f"{report.meta['ladder']}_ladder" + ("" if scale == "standard" else f"_{scale}")
    md, csv = out_dir / f"{stem}.md", out_dir / f"{stem}.csv"
    md.write_text(to_markdown(report, report_command), encoding="utf-8")
    report.table.assign(parent_run_id=report.meta["parent_run_id"]).to_csv(csv, index=False)
    return md, csv
