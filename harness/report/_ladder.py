"""Ladder comparison tables, rebuilt from the tracking store (never from memory).

The columns are the task's (:meth:`harness.tasks.Task.report_columns`), plus the
reference, the deltas of the best primary metric, time, throughput and cost.

The deltas are tested over seeds (:mod:`harness.stats`, :func:`ladder_tests`): each rung against the
rung before (Wilcoxon signed-rank on matching seeds, else Mann-Whitney U; Holm across the table's
consecutive pairs), each rung against the talk's reference (one-sample signed-rank; Holm across the
table's rungs), and the ``--vary`` variants of each rung against each other (Holm across the table's
variant pairs). The verdict claims an ordering, a shortfall or a difference only where a test says so.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from harness.errors import UserError
from harness.report import _core, _html
from harness.report._document import Document, Section, render_markdown
from harness.report._publish import publish
from harness.stats import ALPHA, NO_DIFFERENCE, PairTest, format_p, one_samples, pairwise, smallest_testable
from harness.tasks import UNDEFINED_TAG, Column, Task, get_task
from harness.tracking import (
    SCALE_TAG,
    LadderRecord,
    RungRecord,
    TagError,
    Tracker,
    kind_filter,
    ladder_experiment,
    tag_filter,
)

TOLERANCE = 0.003  # "within 0.3 points of the reference"

RowKey = tuple[int, int, str]  # (source, rung_index, variant): one row of the table


@dataclasses.dataclass(frozen=True)
class LadderTests:
    """The tests behind one ladder table (:func:`ladder_tests`); every ``PairTest`` is about its row."""

    prev: dict[RowKey, PairTest]  # a row (a) against the row before it, same source and variant (b)
    ref: dict[RowKey, PairTest]  # a row's seeds against its reference (one-sample)
    variants: dict[tuple[int, int], list[PairTest]]  # (source, rung_index) -> its variants pairwise (a, b: labels)
    n_seeds: dict[RowKey, int]  # how many seeds (with a value) each row has


@dataclasses.dataclass
class LadderReport:
    table: pd.DataFrame  # one row per rung (and variant), numeric
    meta: dict[str, str]  # where the numbers came from
    task: str  # the ladder's task (its parent run's tag): its columns, directions and curves
    metric: str  # the per-evaluation metric the references quote (``test_<m>``)
    # test metrics per evaluation step, mean over the seeds of each rung's FINISHED runs:
    # source, rung_index, rung, variant, metric (``accuracy``), step, value
    curves: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    store: Tracker | None = dataclasses.field(default=None, repr=False, compare=False)  # its HTML is logged there
    # the best value of each FINISHED run, what the tests compare: source, rung_index, variant, seed, value
    seeds: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    tested: LadderTests | None = dataclasses.field(default=None, repr=False, compare=False)  # cache: ladder_tests

    @property
    def best_label(self) -> str:
        """``best accuracy``: what ``best_mean`` holds."""
        return f"best {self.metric.removeprefix('test_')}"

    def percent(self) -> bool:
        return self.metric.removeprefix("test_") in get_task(self.task).percent

    def higher_is_better(self) -> bool:
        return get_task(self.task).directions.get(self.metric.removeprefix("test_"), "maximize") == "maximize"


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
    filters = [kind_filter(LadderRecord.KIND)]
    if scale:
        filters.append(tag_filter(SCALE_TAG, scale))
    found = [
        run
        for run in _core.search(tracker, [exp.experiment_id], " and ".join(filters), ["attributes.start_time DESC"])
        if MLFLOW_PARENT_RUN_ID not in run.data.tags
    ]
    # a parent whose tags cannot be read (made before tasks) is no candidate; asked for by --run, it is refused
    runs = [(run, record) for run in found if (record := _readable(run)) is not None]
    if not runs:
        skipped = f" ({len(found)} older parent runs without a task skipped)" if found else ""
        raise UserError(f"no {scale or ''} parent run of ladder {ladder!r} in {tracker.display_uri}{skipped}")
    # the latest run of every rung that finished; else the latest with any rung run (never an empty
    # parent left by Ctrl-C at start-up); a partial run is reported only when asked for by --run
    for run, record in runs:
        if run.info.status == "FINISHED" and not record.rungs_selected:
            return run
    for run, _ in runs:
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
    record = _parent_record(parent)
    frames = [_with_variant(rung_runs(runs, parent.info.run_id), "").assign(parent_run_id=parent.info.run_id, source=0)]
    also_lines = []
    for other_id in also:
        other = find_parent_run(tracker, ladder, other_id, None)
        extra = _core.children(tracker, other)
        if extra.empty:
            raise UserError(f"parent run {other_id} of ladder {ladder!r} has no rung runs")
        other_scale = _parent_record(other).scale
        extra = _with_variant(rung_runs(extra, other_id), f"{other_scale} scale")
        frames.append(extra.assign(parent_run_id=other_id, source=len(frames)))
        also_lines.append(
            f"Rows marked *{_core.md_text(other_scale)} scale*: parent run {_core.md_code(other_id)} "
            f"({other.info.status}), {_core.md_code(_core.run_command(other.data.tags) or '?')}, "
            f"device {_core.md_text(other.data.tags.get('device', '?'))}"
        )
    tags = parent.data.tags
    task, metric = get_task(record.task), record.metric
    runs = pd.concat(frames, ignore_index=True)
    if rungs:
        keep = _rung_indices(rungs)
        runs = runs[runs["rung_index"].isin(keep)]
        if runs.empty:
            raise UserError(f"--rungs {rungs}: no rung runs with these indices under parent run {parent.info.run_id}")
    table = _aggregate(runs, task, metric)
    seeds = _per_seed(runs, metric)
    curves = _curves(tracker, runs, task, metric)
    meta = {
        "ladder": ladder,
        **_core.provenance(tracker, parent, (*_core.KERAS_VERSIONS, "mlflow")),
        "scale": record.scale,
        "seeds": str(record.seeds),
        "device": "; ".join(filter(None, [tags.get("device", "?"), _core.frameworks(runs)])),
        "data_checksum": tags.get("data.checksum", "?"),
        "price_per_hour": tags.get("price_per_hour", "unknown"),
        "also": "\n".join(also_lines),
        "notes": record.ladder_notes or "",
    }
    return LadderReport(table, meta, task.name, metric, curves, tracker, seeds)


def _rung_indices(spec: str) -> set[int]:
    keep: set[int] = set()
    for part in spec.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not (lo.isascii() and lo.isdigit()) or (dash and not (hi.isascii() and hi.isdigit())):
            raise UserError(f"--rungs expects indices and ranges like 7,8 or 2-5, but got {spec!r}")
        first, last = int(lo), int(hi if dash else lo)
        if first > last or last - first > 10_000:  # no ladder has that many rungs: refuse before building it
            raise UserError(f"--rungs: {part.strip()!r} is not a range of rung indices like 2-5")
        keep.update(range(first, last + 1))
    return keep


def _readable(parent: Any) -> LadderRecord | None:
    try:
        return _parent_record(parent)
    except TagError:
        return None


def _parent_record(parent: Any) -> LadderRecord:
    """A ladder parent run's tags, typed; one without them (made before tasks, or not by ``harness ladder``)
    is refused by name, never read as some default task."""
    return LadderRecord.from_tags(parent.data.tags, f"ladder parent run {parent.info.run_id}")


def rung_runs(runs: pd.DataFrame, parent_run_id: str) -> pd.DataFrame:
    """Child runs of a ladder (:func:`_core.children`) with their rung tags as typed columns: ``rung_index``,
    ``rung``, ``rung_changes``, ``rung_note``, ``reference`` (NaN: none), ``seed`` and ``variant`` ("": none)."""
    records = []
    for _, row in runs.iterrows():
        tags = {k.removeprefix("tags."): v for k, v in row.items() if isinstance(k, str) and k.startswith("tags.")}
        try:
            records.append(RungRecord.from_tags(tags, f"run {row['run_id']} of ladder parent run {parent_run_id}"))
        except TagError as exc:
            raise TagError(f"{exc}; pass another parent run with --run") from None
    return runs.assign(
        rung_index=[r.rung_index for r in records],
        rung=[r.rung for r in records],
        rung_changes=[r.rung_changes for r in records],
        rung_note=[r.rung_note or "" for r in records],
        reference=[math.nan if r.reference is None else r.reference for r in records],
        seed=[str(r.seed) for r in records],  # a pairing key, as the tag spells it
        variant=[r.variant or "" for r in records],
    )


def _with_variant(runs: pd.DataFrame, prefix: str) -> pd.DataFrame:
    variant = runs["variant"]
    if prefix:  # rows of another parent run: say which scale (and split) they ran at
        split = runs["tags.data.split"].fillna("") if "tags.data.split" in runs else pd.Series("", index=runs.index)
        pairs = zip(variant, split, strict=True)
        variant = [", ".join(filter(None, [prefix, v or (f"split={s}" if s else "")])) for v, s in pairs]
    return runs.assign(variant=variant)


def _aggregate(runs: pd.DataFrame, task: Task, metric: str) -> pd.DataFrame:
    """Mean and sd over seeds of each rung's (and variant's) FINISHED runs."""
    columns = [(c.metric, c.metric) for c in task.report_columns()] + [("best", f"best_{metric}"), *_TIMINGS]
    rows = []
    for (source, index, variant_label), group in runs.groupby(["source", "rung_index", "variant"], sort=True):
        done = group[group["status"] == "FINISHED"]
        first = group.iloc[0]
        row: dict[str, Any] = {
            "source": source,  # 0: the report's run; 1, 2, ...: the --also runs
            "rung_index": index,
            "rung": first["rung"],
            "variant": variant_label,
            "changes": first["rung_changes"],
            "note": first["rung_note"],
            "reference": first["reference"],
            "runs": len(done),
            "parent_run_id": first["parent_run_id"],
            "runs_not_finished": len(group) - len(done),
            # how the others ended (KILLED, FAILED, RUNNING): a row without numbers says why
            "not_finished_status": ", ".join(sorted(set(group["status"]) - {"FINISHED"})),
        }
        for out, key in columns:
            column = f"metrics.{key}"
            values = done[column].dropna().astype(float) if column in done else pd.Series(dtype=float)
            row[f"{out}_mean"] = values.mean() if len(values) else math.nan
            row[f"{out}_sd"] = values.std(ddof=1) if len(values) > 1 else math.nan
            why = done.get(f"tags.{UNDEFINED_TAG}{key}")  # runs where the metric is undefined, and why
            reasons = [] if why is None else [w for w in why if isinstance(w, str) and w]
            if reasons:
                row[f"{out}_undefined"] = "; ".join(dict.fromkeys(reasons))
                row[f"{out}_undefined_runs"] = len(reasons)
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["source", "variant", "rung_index"], kind="stable").reset_index(drop=True)
    sign = 1.0 if task.directions.get(metric.removeprefix("test_"), "maximize") == "maximize" else -1.0
    table["delta_prev"] = table.groupby("variant")["best_mean"].diff()
    table["vs_reference"] = sign * (table["best_mean"] - table["reference"])
    return table


def _per_seed(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The best value of every FINISHED run, keyed by its seed (by its run where a row repeats a seed)."""
    done = runs[runs["status"] == "FINISHED"]
    column = f"metrics.best_{metric}"
    keys = ["source", "rung_index", "variant", "seed"]
    if done.empty or column not in done:
        return pd.DataFrame(columns=[*keys, "value"])
    frame = pd.DataFrame(
        {
            "source": done["source"].astype(int),
            "rung_index": done["rung_index"].astype(int),
            "variant": done["variant"].astype(str),
            "seed": done["seed"].astype(str),
            "value": done[column].astype(float),
        }
    ).dropna(subset=["value"])
    repeated = frame.duplicated(keys, keep=False)  # the same seed twice in one row: not a pairing key
    frame.loc[repeated, "seed"] = [f"run {r}" for r in done.loc[frame.index[repeated], "run_id"]]
    return frame.reset_index(drop=True)


def _curves(tracker: Tracker, runs: pd.DataFrame, task: Task, metric: str) -> pd.DataFrame:
    """Each rung's (and variant's) test curves: the metric histories of its FINISHED runs, mean over seeds."""
    names = list(dict.fromkeys([metric.removeprefix("test_"), *task.curve_metrics()]))
    rows = []
    for _, run in runs[runs["status"] == "FINISHED"].iterrows():
        key = {
            "source": run["source"],
            "rung_index": int(run["rung_index"]),
            "rung": run["rung"],
            "variant": run["variant"],
        }
        for name in names:
            for point in tracker.client.get_metric_history(run["run_id"], f"test_{name}"):
                rows.append({**key, "metric": name, "step": int(point.step), "value": float(point.value)})
    if not rows:
        return pd.DataFrame(columns=["source", "rung_index", "rung", "variant", "metric", "step", "value"])
    keys = ["source", "rung_index", "rung", "variant", "metric", "step"]
    return pd.DataFrame(rows).groupby(keys, sort=True, as_index=False)["value"].mean()


_TIMINGS = (
    ("train_s", "time_train_s"),
    ("total_s", "time_total_s"),
    ("wall_s", "time_wall_s"),  # multi-worker runs: the supervisor's clock, worker start-up included
    ("warmup_s", "time_warmup_s"),
    ("examples_per_s", "examples_per_s"),
    ("cost_usd", "cost_usd"),
)


def _missing(t: pd.DataFrame) -> list[str]:
    """Each row's text where it has no number: "n/a", or "n/a (killed)" where none of its runs finished."""
    status = t.get("not_finished_status", pd.Series("", index=t.index))
    return [
        f"n/a ({s.lower()})" if isinstance(s, str) and s and not runs else "n/a"
        for s, runs in zip(status, t["runs"], strict=True)
    ]


def _metric_cells(t: pd.DataFrame, col: Column) -> list[str]:
    """A task column's cells: mean ± sd over the runs where it is defined, or "undefined (why)"."""
    nothing = pd.Series(math.nan, index=t.index)
    why, n = t.get(f"{col.metric}_undefined", nothing), t.get(f"{col.metric}_undefined_runs", nothing)
    cells = []
    for mean, sd, reason, k, runs, missing in zip(
        t[f"{col.metric}_mean"], t[f"{col.metric}_sd"], why, n, t["runs"], _missing(t), strict=True
    ):
        text = (
            _core.plus_minus(100 * mean, 100 * sd, ".2f", ".2f", missing)
            if col.percent
            else _core.plus_minus(mean, sd, ".4g", ".2g", missing)
        )
        if isinstance(reason, str) and reason:
            text = (
                f"undefined ({reason})"
                if math.isnan(mean)
                else f"{text}; undefined in {int(k)} of {runs} runs ({reason})"
            )
        cells.append(text)
    return cells


def _delta(value: float, percent: bool) -> str:
    return "" if math.isnan(value) else (f"{100 * value:+.2f}" if percent else f"{value:+.4g}")


# -- the tests ---------------------------------------------------------------------------------------------


def _rows(report: LadderReport) -> pd.DataFrame:
    """The table with ``source``, ``variant`` and ``reference`` (tables built by hand may lack them)."""
    t = report.table
    if "reference" not in t:
        t = t.assign(reference=math.nan)
    if "source" not in t:
        t = t.assign(source=0)
    if "variant" not in t:
        t = t.assign(variant="")
    return t


def _key(row: Any) -> RowKey:
    return int(row.source), int(row.rung_index), str(row.variant)


def _name(key: RowKey) -> str:
    return f"{key[0]}:{key[1]}:{key[2]}"


def _seed_values(report: LadderReport) -> dict[RowKey, dict[str, float]]:
    out: dict[RowKey, dict[str, float]] = {}
    for row in report.seeds.itertuples(index=False):
        out.setdefault(_key(row), {})[str(row.seed)] = float(row.value)
    return out


def _consecutive(t: pd.DataFrame) -> list[tuple[RowKey, RowKey]]:
    """(row, the row before it) for each rung after the first of every source and variant."""
    out: list[tuple[RowKey, RowKey]] = []
    for _, group in t.groupby(["source", "variant"], sort=False):
        keys = [_key(r) for r in group.sort_values("rung_index", kind="stable").itertuples()]
        out.extend(zip(keys[1:], keys[:-1], strict=True))
    return out


def _variant_pairs(t: pd.DataFrame) -> list[tuple[RowKey, RowKey]]:
    """Every pair of variants of one rung (and source), in the table's order."""
    by_rung: dict[tuple[int, int], list[RowKey]] = {}
    for row in t.itertuples():
        key = _key(row)
        by_rung.setdefault(key[:2], []).append(key)
    return [pair for keys in by_rung.values() for pair in itertools.combinations(keys, 2)]


def _compute_tests(report: LadderReport) -> LadderTests:
    t = _rows(report)
    values = _seed_values(report)
    higher = report.higher_is_better()
    keys = [_key(r) for r in t.itertuples()]
    groups = {_name(k): values.get(k, {}) for k in keys}
    prev_pairs, variant_pairs = _consecutive(t), _variant_pairs(t)
    prev = pairwise(groups, higher_is_better=higher, pairs=[(_name(a), _name(b)) for a, b in prev_pairs])
    by_variant = pairwise(groups, higher_is_better=higher, pairs=[(_name(a), _name(b)) for a, b in variant_pairs])
    references = {_key(r): float(r.reference) for r in t.itertuples() if not math.isnan(float(r.reference))}
    ref = one_samples(
        {_name(k): (list(values.get(k, {}).values()), v) for k, v in references.items()}, higher_is_better=higher
    )
    variants: dict[tuple[int, int], list[PairTest]] = {}
    for (a, b), test in zip(variant_pairs, by_variant, strict=True):
        variants.setdefault(a[:2], []).append(dataclasses.replace(test, a=a[2], b=b[2]))
    return LadderTests(
        prev={a: test for (a, _), test in zip(prev_pairs, prev, strict=True)},
        ref=dict(zip(references, ref, strict=True)),
        variants=variants,
        n_seeds={k: len(values.get(k, {})) for k in keys},
    )


def ladder_tests(report: LadderReport) -> LadderTests:
    """The report's tests, computed once (the bootstrap CIs take a moment) from ``report.seeds``."""
    if report.tested is None:
        report.tested = _compute_tests(report)
    return report.tested


def _test_columns(prefix: str, test: PairTest | None) -> dict[str, Any]:
    if test is None:
        return {
            f"delta_{prefix}_ci_low": math.nan,
            f"delta_{prefix}_ci_high": math.nan,
            f"test_{prefix}": "",
            f"p_{prefix}": math.nan,
            f"p_{prefix}_holm": math.nan,
            f"verdict_{prefix}": "",
            f"needed_{prefix}": None,
        }
    return {
        f"delta_{prefix}_ci_low": test.diff_ci.low,
        f"delta_{prefix}_ci_high": test.diff_ci.high,
        f"test_{prefix}": test.test,
        f"p_{prefix}": test.p,
        f"p_{prefix}_holm": test.p_holm,
        f"verdict_{prefix}": test.verdict,
        f"needed_{prefix}": test.needed,
    }


def csv_table(report: LadderReport) -> pd.DataFrame:
    """The numeric table plus the tests: Δ vs the rung before (``delta_prev``: this rung's mean minus the
    previous one's) and vs the reference (``delta_ref``: mean minus reference), each with its bootstrap
    95% CI, test, p, Holm-adjusted p, verdict (about this rung) and the seeds that would detect it."""
    tests = ladder_tests(report)
    t = _rows(report).reset_index(drop=True)
    rows = []
    for row in t.itertuples():
        key = _key(row)
        delta_ref = float(row.best_mean) - float(row.reference) if "best_mean" in t else math.nan
        rows.append(
            {
                "seeds": tests.n_seeds.get(key, 0),
                **_test_columns("prev", tests.prev.get(key)),
                "delta_ref": delta_ref,
                **_test_columns("ref", tests.ref.get(key)),
            }
        )
    extra = pd.DataFrame(rows, index=t.index).astype({"needed_prev": "Int64", "needed_ref": "Int64"})
    return pd.concat([report.table.reset_index(drop=True), extra], axis=1)


# -- the tables --------------------------------------------------------------------------------------------

_SHORT: dict[str, str] = {
    "better": "better",
    "worse": "worse",
    NO_DIFFERENCE: "within noise",
    "not testable": "not tested",
}


def _ci(test: PairTest | None, percent: bool, sign: float = 1.0) -> str:
    """``[low, high]`` of a test's Δ (``sign`` -1: the reference column's orientation, higher = better)."""
    if test is None or not test.diff_ci.defined:
        return ""
    low, high = sorted((sign * test.diff_ci.low, sign * test.diff_ci.high))
    return f"[{_delta(low, percent)}, {_delta(high, percent)}]"


def _stats_columns(report: LadderReport, name: str, prefix: str) -> dict[str, list[str]]:
    """The columns beside ``name`` (Δ vs prev, or vs ref) in the Markdown and HTML tables."""
    tests = ladder_tests(report)
    found = tests.prev if prefix == "prev" else tests.ref
    keys = [_key(r) for r in _rows(report).itertuples()]
    sign = 1.0 if prefix == "prev" or report.higher_is_better() else -1.0
    pct = report.percent()
    columns = {
        f"{name} 95% CI": [_ci(found.get(k), pct, sign) for k in keys],
        f"p {prefix} (Holm)": [format_p(found[k].p_holm) if k in found else "" for k in keys],
    }
    if prefix == "prev":
        columns["vs prev"] = [_SHORT[found[k].verdict] if k in found else "" for k in keys]
    return columns


def display_table(report: LadderReport, stats: bool = False) -> pd.DataFrame:
    """The table people read: the task's columns as mean ± sd, deltas (in points for percentages);
    ``stats``: with each delta's 95% CI, Holm-adjusted p and verdict (the Markdown and HTML tables; the
    terminal's stays narrow, and the verdict lines say the same)."""
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
        mean = t.get(f"{col.metric}_mean")
        if mean is None or (col.optional and not mean.notna().any() and f"{col.metric}_undefined" not in t):
            continue  # e.g. precision and recall: 2-class data only (undefined ones are shown, and why)
        columns[col.header] = _metric_cells(t, col)
    columns[f"Δ best vs prev{unit}"] = [_delta(v, pct) for v in t["delta_prev"]]
    if stats:
        columns.update(_stats_columns(report, "Δ prev", "prev"))
    if t["reference"].notna().any():
        columns[f"best vs ref{unit}"] = [_delta(v, pct) for v in t["vs_reference"]]
        if stats:
            columns.update(_stats_columns(report, "vs ref", "ref"))
    missing = _missing(t)
    columns["train time (s)"] = [_core.number(v, ".1f", m) for v, m in zip(t["train_s_mean"], missing, strict=True)]
    if t["wall_s_mean"].notna().any():  # a multi-worker run beside one-process runs: whole wall times
        wall = t["wall_s_mean"].where(t["wall_s_mean"].notna(), t["total_s_mean"])
        columns["wall time (s)"] = [_core.number(v, ".1f", m) for v, m in zip(wall, missing, strict=True)]
    columns[f"{get_task(report.task).examples}/s"] = [
        _core.number(v, ",.0f" if v >= 100 else ".1f", m)
        for v, m in zip(t["examples_per_s_mean"], missing, strict=True)
    ]
    columns["cost/run ($)"] = [_core.number(v, ".4f", m) for v, m in zip(t["cost_usd_mean"], missing, strict=True)]
    columns["runs"] = t["runs"]
    return pd.DataFrame(columns)


# -- the verdict -------------------------------------------------------------------------------------------


def _delta_text(test: PairTest, percent: bool) -> str:
    """``Δ -0.16 pts [95% CI -0.22, -0.10]``: the test's mean difference (a - b) and its CI."""
    unit = " pts" if percent else ""
    if not test.diff_ci.defined:
        return f"Δ {_delta(test.diff, percent)}{unit}"
    low, high = _delta(test.diff_ci.low, percent), _delta(test.diff_ci.high, percent)
    return f"Δ {_delta(test.diff, percent)}{unit} [95% CI {low}, {high}]"


def _noise_text(test: PairTest, each: str = " each") -> str:
    """``p = 0.31, Holm; about 14 seeds each would detect the observed Δ``."""
    if test.needed is not None:
        return f"p = {format_p(test.p_holm)}, Holm; about {test.needed:,} seeds{each} would detect the observed Δ"
    return f"p = {format_p(test.p_holm)}, Holm; no difference observed at all"


def _significant(head: str, test: PairTest, percent: bool) -> str:
    """``<head> (significant, p = 0.004, Holm): Δ -0.16 pts [95% CI -0.22, -0.10]``."""
    return f"{head} (significant, p = {format_p(test.p_holm)}, Holm): {_delta_text(test, percent)}"


def _within_noise(head: str, test: PairTest, percent: bool, each: str = " each") -> str:
    """``<head>: Δ +0.02 pts [95% CI ...], within noise (p = 0.92, Holm; about 452 seeds each would ...)``."""
    return f"{head}: {_delta_text(test, percent)}, within noise ({_noise_text(test, each)})"


def _rung(row: Any, where: str) -> str:
    return f"Rung {row.rung_index} ({_core.md_text(row.rung)}){where}"


def _one_seed_line(where: str) -> str:
    return (
        f"One seed per rung{where}: no ordering claim can be made (one seed: deltas are shown but not tested; "
        f"a paired test needs at least {smallest_testable(ALPHA, paired=True)} seeds to reach p < {ALPHA:g})."
    )


def _reference_lines(report: LadderReport, rows: pd.DataFrame, tests: LadderTests, where: str) -> list[str]:
    """Rungs more than the tolerance short of their reference, each with its one-sample test."""
    t = rows.dropna(subset=["reference", "best_mean"])
    scale, unit = (100.0, " points") if report.percent() else (1.0, "")
    short = t[t["vs_reference"] < -TOLERANCE]
    lines = []
    if short.empty and not t.empty:
        lines.append(f"Every rung{where} is within {scale * TOLERANCE:.1f}{unit} of its reference or better.")
    side = "below" if report.higher_is_better() else "above"
    for row in short.itertuples():
        test = tests.ref.get(_key(row))
        head = f"{_rung(row, where)} is {scale * -row.vs_reference:.2f}{unit} {side} its reference"
        if test is None or test.verdict == "not testable":
            n = 0 if test is None else test.n_a
            lines.append(f"{head} ({n} seed{'' if n == 1 else 's'}: not tested).")
        elif test.verdict == "worse":
            lines.append(_significant(head, test, report.percent()) + ".")
        else:
            lines.append(_within_noise(head, test, report.percent(), each="") + ".")
    return lines


def _ordering_lines(report: LadderReport, rows: pd.DataFrame, tests: LadderTests, where: str) -> list[str]:
    """The talk's ordering: reversed only where a rung is significantly worse than the rung before it while
    the reference improves (ties in the reference impose nothing); mean reversals alone are no finding."""
    t = rows.dropna(subset=["reference", "best_mean"])
    if t.empty:
        return []  # no reference numbers (the talk's words are in the table): nothing to order
    if len(t) == 1:
        return [f"Only 1 rung{where} has a reference: there is no ordering to compare."]
    sign = 1 if report.higher_is_better() else -1
    ordered = list(t.itertuples())
    by_mean = [
        f"{a.rung_index}->{b.rung_index}"
        for i, a in enumerate(ordered)
        for b in ordered[i + 1 :]
        if (sign * a.reference < sign * b.reference) and not (sign * a.best_mean < sign * b.best_mean)
    ]
    before = {b: a for b, a in _consecutive(rows)}
    reference = {_key(r): float(r.reference) for r in t.itertuples()}
    significant = [
        f"{before[key][1]}->{key[1]} (p = {format_p(tests.prev[key].p_holm)}, Holm)"
        for key in (_key(r) for r in ordered)
        if key in before
        and before[key] in reference
        and sign * reference[before[key]] < sign * reference[key]
        and tests.prev[key].verdict == "worse"
    ]
    if significant:
        return [
            f"Ordering{where} differs from the talk's where the reference improves but ours is significantly "
            f"worse than the rung before: {', '.join(significant)}."
        ]
    if by_mean:
        return [
            f"Ordering by {report.best_label}{where}: no significant reversal of the talk's between consecutive "
            f"rungs (by the means alone: {', '.join(by_mean)}; not a finding)."
        ]
    return [f"Ordering by {report.best_label}{where} matches the talk's."]


def _previous_lines(report: LadderReport, rows: pd.DataFrame, tests: LadderTests, where: str) -> list[str]:
    """Each rung against the rung before: significantly worse, within noise, not tested; the significantly
    better ones in one line."""
    pct = report.percent()
    unit = " pts" if pct else ""
    lines, better = [], []
    for row in rows.sort_values("rung_index", kind="stable").itertuples():
        test = tests.prev.get(_key(row))
        if test is None:
            continue  # the first rung
        if test.verdict == "worse":
            lines.append(_significant(f"{_rung(row, where)} is worse than the rung before", test, pct) + ".")
        elif test.verdict == "better":
            better.append(
                f"{row.rung_index} ({_core.md_text(row.rung)}, {_delta(test.diff, pct)}{unit}, "
                f"p = {format_p(test.p_holm)})"
            )
        elif test.verdict == NO_DIFFERENCE:
            lines.append(_within_noise(f"{_rung(row, where)} vs the rung before", test, pct) + ".")
        else:
            lines.append(f"{_rung(row, where)} vs the rung before: {_delta_text(test, pct)}, not tested ({test.note}).")
    if better:
        lines.append(f"Rungs{where} better than the rung before (significant, Holm): {', '.join(better)}.")
    return lines


def _variant_phrase(test: PairTest, percent: bool) -> str:
    a, b = _core.md_text(test.a), _core.md_text(test.b)  # variant labels: --vary values
    if test.verdict == "not testable":
        return f"{a} vs {b} not tested ({test.note})"
    if test.significant:
        return _significant(f"{a} {test.verdict} than {b}", test, percent)
    return _within_noise(f"{a} vs {b}", test, percent)


def _variant_lines(report: LadderReport, t: pd.DataFrame, tests: LadderTests) -> list[str]:
    """One line per rung with variants: every pair of its variants, Holm across the table's variant pairs."""
    lines = []
    for row in t.drop_duplicates(["source", "rung_index"]).itertuples():
        pairs = tests.variants.get(_key(row)[:2], [])
        if pairs:
            phrases = "; ".join(_variant_phrase(p, report.percent()) for p in pairs)
            lines.append(f"Rung {row.rung_index} ({_core.md_text(row.rung)}), variants: {phrases}.")
    return lines


def verdict(report: LadderReport) -> list[str]:
    """Which rungs fall short of the reference, the talk's ordering, which rungs bought nothing, and how
    the variants of each rung compare: a claim only where a test over seeds makes it (:func:`ladder_tests`).

    At smoke scale (a few steps on a data subset, to check that everything runs) the numbers are
    not comparable with the talk's: one line says so instead of a verdict per rung.
    """
    if report.meta.get("scale") == "smoke":
        return [
            "Smoke scale: a few steps on a data subset, to check that every rung runs; these numbers are not "
            "comparable with the talk's references (run the standard scale for that)."
        ]
    tests = ladder_tests(report)
    table = _rows(report)
    lines = []
    for variant, rows in table.groupby("variant", sort=False):
        where = f" [{_core.md_text(variant)}]" if variant else ""
        lines.extend(_reference_lines(report, rows, tests, where))
        if max((tests.n_seeds.get(_key(r), 0) for r in rows.itertuples()), default=0) <= 1:
            if len(rows) > 1:
                lines.append(_one_seed_line(where))
            continue
        lines.extend(_ordering_lines(report, rows, tests, where))
        lines.extend(_previous_lines(report, rows, tests, where))
    if max(tests.n_seeds.values(), default=0) > 1:
        lines.extend(_variant_lines(report, table, tests))
    return lines


def _title(report: LadderReport) -> str:
    m = {k: _core.md_text(v) for k, v in report.meta.items()}
    return f"Ladder {_core.md_code(report.meta['ladder'])}: {m['scale']} scale, {m['seeds']} seed(s)"


def _lead(report: LadderReport) -> list[str]:
    """The provenance lines under the title (text from the store through md_text)."""
    m = {k: _core.md_text(v) for k, v in report.meta.items()}
    code = {k: _core.md_code(v) for k, v in report.meta.items()}
    return [
        f"Ladder run: {code['command']}" if m["command"] else "Ladder run: (command not recorded)",
        f"MLflow parent run {code['parent_run_id']} ({m['parent_status']}), started {m['started']}",
        f"Device: {m['device']} on host {code['host']}; {m['versions']}; "
        f"harness commit {_core.md_commit(m['git_commit'])}",
        f"Data checksum (sha256): {code['data_checksum']}",
        f"Cost = wall time x {m['price_per_hour']} $/h (harness/hardware/prices.yaml)",
        *(report.meta["also"].split("\n") if report.meta.get("also") else []),  # md_text'd where built
        f"Task {report.task}; on the test set: *final* at the last step, *{report.best_label}* = best seen at "
        "an evaluation step (what the talk quotes); mean ± sd over seeds. Train time includes warm-up, "
        "excludes evaluation.",
        _STATISTICS,
        "Times and examples/s are wall-clock as measured in this run, on whatever else shared the machine; "
        "controlled throughput numbers come from `nox -s bench` (results/bench/).",
    ]


_STATISTICS = (
    "Tests over seeds, α = 0.05: Δ vs prev is a rung's mean minus the rung before's, with a seeded bootstrap "
    "(BCa) 95% CI, tested by Wilcoxon signed-rank on matching seeds, else Mann-Whitney U, Holm-corrected "
    "across the table's consecutive pairs; the variants of a rung likewise, Holm across the table's variant "
    "pairs; vs ref is the mean minus the talk's number, with the bootstrap 95% CI of the mean and a "
    "one-sample Wilcoxon signed-rank test, Holm across the table's rungs. *Within noise* = not significant "
    "after Holm; an ordering, shortfall or difference is claimed only where significant; one seed is not tested."
)

_NOTES_HEADING = "Where this ladder differs from its reference, on purpose"


def _notes(report: LadderReport) -> list[str]:
    """The ladder file's notes, one line each, as text (Markdown and HTML alike)."""
    return [_core.md_text(line) for line in report.meta.get("notes", "").split("\n") if line]


def to_markdown(report: LadderReport, report_command: str) -> str:
    return render_markdown(ladder_document(report, report_command))


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


def _baselines(report: LadderReport) -> list[tuple[str, float]]:
    """(name, mean over the table's rows) of each of the task's baseline columns of the ladder's metric
    (census: the majority-class accuracy), for the bar chart."""
    task = get_task(report.task)
    if report.metric != f"test_{task.primary}":
        return []
    out = []
    for col in task.report_columns():
        values = report.table.get(f"{col.metric}_mean")
        if col.baseline and values is not None and values.notna().any():
            out.append((col.baseline, float(values.mean())))
    return out


def _break_marks(top: Any, bottom: Any) -> None:
    """The two diagonal strokes on each side that say an axis is broken between two panels."""
    mark: dict[str, Any] = {"marker": [(-1, -0.5), (1, 0.5)], "markersize": 10, "linestyle": "none"}
    mark.update(color="k", mec="k", mew=1, clip_on=False)
    top.plot([0, 1], [0, 0], transform=top.transAxes, **mark)
    bottom.plot([0, 1], [1, 1], transform=bottom.transAxes, **mark)


@_html.default_style
def best_figure(report: LadderReport) -> Any:
    """A bar per rung (grouped per variant) of the best metric, error bars = sd over seeds, the talk's
    reference marked on each rung's bars and the task's baselines (census: majority class) drawn across;
    ``None`` when no rung has a value.

    Bars start at zero: where the values sit far above it (accuracies of 85-99%), the axis is broken,
    drawn as a short panel from 0 under a zoomed one, with the break marked, so that a 0.5-point spread is
    readable and no bar pretends to start at 83.5%."""
    t = report.table
    if t.empty or not t["best_mean"].notna().any():
        return None
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    scale = 100.0 if report.percent() else 1.0
    rungs = t.drop_duplicates("rung_index").sort_values("rung_index")
    where = {int(i): k for k, i in enumerate(rungs["rung_index"])}
    variants = list(dict.fromkeys(t["variant"]))
    width = 0.8 / len(variants)
    baselines = [(name, value * scale) for name, value in _baselines(report)]
    values = [v * scale for v in [*t["best_mean"].dropna(), *t["reference"].dropna()]] + [v for _, v in baselines]
    lo, hi = min(values), max(values)
    zoom = max(0.0, lo - 0.6 * (hi - lo) - 0.02 * hi)  # where the zoomed panel starts
    top_hi = hi + 0.15 * (hi - lo) + 0.01 * hi
    broken = lo > 0 and zoom > 0.2 * top_hi  # a zero-based axis would hide the differences between rungs
    size = (max(6.0, 1.1 * len(rungs) * max(1, len(variants) / 1.5) + 2), 4.6)
    # panels of a broken axis close together: the break marks stand between them
    fig = Figure(figsize=size, layout=ConstrainedLayoutEngine(h_pad=0.02, hspace=0.0) if broken else "constrained")
    if broken:
        ax, floor = fig.subplots(2, 1, sharex=True, height_ratios=[7, 1])
    else:
        ax, floor = fig.subplots(), None
    marked = False
    for k, variant in enumerate(variants):
        rows = t[t["variant"] == variant]
        xs = [where[int(i)] - 0.4 + width * (k + 0.5) for i in rows["rung_index"]]
        sd = rows["best_sd"] * scale
        for panel in (ax, floor):
            if panel is None:
                continue
            panel.bar(
                xs,
                rows["best_mean"] * scale,
                width * 0.92,
                yerr=sd if sd.notna().any() and panel is ax else None,
                capsize=3,
                color=f"C{k % 10}",
                label=(variant or "this run") if panel is ax else "_nolegend_",
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
    for i, (name, value) in enumerate(baselines):
        shown = f"{value:.2f}%" if scale != 1 else f"{value:.4g}"
        ax.axhline(value, color="dimgrey", ls=("--", ":", "-.")[i % 3], lw=1.4, label=f"{name} ({shown})")
    if floor is not None:
        ax.set_ylim(zoom, top_hi)
        floor.set_ylim(0, (top_hi - zoom) / 7)  # the scale of the panel above: the bars' feet at 0
        floor.set_yticks([0])
        ax.spines["bottom"].set_visible(False)
        floor.spines["top"].set_visible(False)
        ax.tick_params(axis="x", which="both", bottom=False)
        _break_marks(ax, floor)
    elif lo <= 0:
        ax.axhline(0, color="black", lw=0.8)
    below = floor if floor is not None else ax
    below.set_xticks(range(len(rungs)), [f"{i} {r}" for i, r in zip(rungs["rung_index"], rungs["rung"], strict=True)])
    below.tick_params(axis="x", labelrotation=25, labelsize=8)
    for label in below.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_ylabel(report.best_label + (" (%)" if scale != 1 else "") + (" (axis broken)" if broken else ""))
    ax.grid(axis="y", alpha=0.3)
    if len(variants) > 1 or marked or baselines:
        handles, labels = ax.get_legend_handles_labels()  # the zoomed panel's: the floor's bars are repeats
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)  # beside the bars
    errors = " ± sd over seeds" if t["best_sd"].notna().any() else ""
    ax.set_title(f"{report.best_label} per rung{errors}")
    return fig


def captions(report: LadderReport) -> tuple[str, str]:
    """Under the bars and under the curves: the reference marks and dashes only where there are some."""
    table = report.table
    marks = "; black marks: the talk's reference" if "reference" in table and table["reference"].notna().any() else ""
    dashes = ", dashes = variant" if "variant" in table and table["variant"].nunique() > 1 else ""
    lines = "".join(f"; grey line: the {name} (mean over the rungs)" for name, _ in _baselines(report))
    return (
        f"Bars: {report.best_label} (mean over the seeds' FINISHED runs){marks}{lines}.",
        f"Test metrics at each evaluation step, every rung on shared axes; colour = rung{dashes}.",
    )


def ladder_document(report: LadderReport, report_command: str) -> Document:
    """The report: the table with its tests, the verdict, the bars and curves (HTML only), the ladder's notes."""
    best, curves = best_figure(report), curves_figure(report)
    bars_caption, curves_caption = captions(report)
    sections = [
        Section("Rungs", table=display_table(report, stats=True)),
        Section("Verdict", notes=verdict(report)),
    ]
    if best is not None:
        sections.append(Section(f"{report.best_label.capitalize()} per rung", figures=[best], caption=bars_caption))
    if curves is not None:
        sections.append(Section("Learning curves", figures=[curves], caption=curves_caption))
    notes = _notes(report)
    if notes:
        sections.append(Section(_NOTES_HEADING, notes=notes))
    return Document(_title(report), _lead(report), sections, generated=_core.generated_by(report_command))


def write_report(
    report: LadderReport, out_dir: Path, report_command: str, name: str | None = None
) -> tuple[Path, Path, Path]:
    """``<ladder>_ladder.md``, ``.csv`` and ``.html`` (suffixed ``_<scale>`` unless standard scale), or
    ``<name>``; the HTML is also logged to the ladder's parent run."""
    scale = report.meta["scale"]
    stem = name or f"{report.meta['ladder']}_ladder" + ("" if scale == "standard" else f"_{scale}")
    doc = ladder_document(report, report_command)
    files = publish(doc, out_dir, stem, csv_table(report), tracker=report.store, run_id=report.meta["parent_run_id"])
    return files.md, files.csv, files.html
