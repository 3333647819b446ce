"""Study tables, rebuilt from the tracking store (never from memory).

``study_report``: one row per trial of a study's MLflow parent run (trial number,
state, parameters, objective, time, cost) and the best trial. Where the objective
has a reference scale (the reference trainers logged the cross-entropy x 100), the
table shows it beside harness's value so the numbers compare.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UserError
from harness.report import _core, _html
from harness.report._document import Document, Section, render_markdown
from harness.report._publish import publish
from harness.tracking import (
    FRAMEWORK_TAG,
    RETRY_OF_TAG,
    STUDY_TAG,
    StudyBudget,
    StudyRecord,
    StudyResumed,
    Tracker,
    kind_filter,
    tag_filter,
)

_STATE_FROM_STATUS = {"FINISHED": "COMPLETE", "KILLED": "PRUNED", "FAILED": "FAIL", "RUNNING": "RUNNING"}


@dataclasses.dataclass
class StudyReport:
    table: pd.DataFrame  # one row per trial, numeric
    params: list[str]
    best: dict[str, Any] | None
    meta: dict[str, str]
    store: Tracker | None = dataclasses.field(default=None, repr=False, compare=False)  # its HTML is logged there


def find_study_run(tracker: Tracker, name: str) -> Any:
    """The MLflow parent run of study ``name`` (the latest, if a name was reused in another store)."""
    _core.require_store(tracker, "harness study SPACE")
    exps = [e.experiment_id for e in tracker.client.search_experiments(filter_string="name LIKE 'study/%'")]
    runs = (
        _core.search(
            tracker,
            exps,
            f"{kind_filter(StudyRecord.KIND)} and {tag_filter(STUDY_TAG, name)}",
            ["attributes.start_time DESC"],
        )
        if exps
        else []
    )
    if not runs:
        raise UserError(
            f"no study {name!r} in {tracker.display_uri}; run `harness study SPACE` (or --name {name}) first"
        )
    return runs[0]


TUNED = "tuned"  # MLflow param prefix of a trial's values as its space writes them: tuned.lr2 = 16440, tuned.size = S


def _tuned(runs: pd.DataFrame, name: str, key: str) -> pd.Series:
    """The space's own value (tuned.NAME) where the run logged it, else the config key's (older runs)."""
    old = runs[f"params.{key}"] if f"params.{key}" in runs else pd.Series("", index=runs.index)
    new = f"params.{TUNED}.{name}"
    return runs[new].where(runs[new].notna(), old) if new in runs else old


# the trial table's own columns, and the display's: a tuned parameter may be named like one of them
_OWN_COLUMNS = frozenset(
    {"trial", "state", "status", "objective", "time_s", "cost_usd", "retry_of", "run_id", "MLflow run"}
    | {"time (s)", "cost ($)", "re-run of"}
)


def _param_columns(names: list[str]) -> list[str]:
    """A column label per tuned parameter: its name, or ``NAME (parameter)`` where that is taken."""
    taken, labels = set(_OWN_COLUMNS), []
    for name in names:
        label = name
        while label in taken or label.startswith("objective x "):
            label = f"{label} (parameter)"
        taken.add(label)
        labels.append(label)
    return labels


def _trial_rows(tracker: Tracker, parent: Any) -> tuple[pd.DataFrame, list[str]]:
    runs = _core.children(tracker, parent)
    record = study_record(parent)
    names, keys = list(record.params), list(record.keys)
    params = _param_columns(names)
    if runs.empty:
        columns = ["trial", "state", "status", *params, "objective", "time_s", "cost_usd", "retry_of", "run_id"]
        return pd.DataFrame(columns=columns), params

    def column(name: str, default: Any = math.nan) -> pd.Series:
        return runs[name] if name in runs else pd.Series(default, index=runs.index)

    state = column("tags.optuna.state", None)
    state = state.where(state.notna() & (state != ""), runs["status"].map(_STATE_FROM_STATUS))
    table = pd.DataFrame(
        {
            "trial": column("tags.optuna.trial_number", "-1").astype(int),
            "state": state,
            "status": runs["status"],
            **{p: _tuned(runs, n, k) for p, n, k in zip(params, names, keys, strict=True)},
            "objective": column("metrics.objective").astype(float),
            "time_s": column("metrics.trial_wall_s").astype(float),
            "cost_usd": column("metrics.cost_usd").astype(float),
            "retry_of": column(f"tags.{RETRY_OF_TAG}", "").fillna(""),
            "run_id": runs["run_id"],
        }
    )
    return table.sort_values("trial", kind="stable").reset_index(drop=True), params


def counted(table: pd.DataFrame) -> pd.DataFrame:
    """Trials the budget counts: a failed trial that was run again is replaced by its re-run."""
    rerun = {int(v) for v in table["retry_of"] if re.fullmatch(r"-?[0-9]+", str(v).strip())}
    return table[~(table["trial"].isin(rerun) & (table["state"] == "FAIL"))]


def study_record(parent: Any) -> StudyRecord:
    """A study parent run's tags, typed (:class:`TagError` names what an old or foreign run lacks)."""
    return StudyRecord.from_tags(parent.data.tags, f"study parent run {parent.info.run_id}")


def study_report(tracker: Tracker, name: str) -> StudyReport:
    parent = find_study_run(tracker, name)
    table, params = _trial_rows(tracker, parent)
    tags = parent.data.tags
    record, budget = study_record(parent), StudyBudget.from_tags(tags)
    direction = record.direction
    done = table[table["state"] == "COMPLETE"].dropna(subset=["objective"])
    best = None
    if not done.empty:
        row = done.loc[done["objective"].idxmax() if direction == "maximize" else done["objective"].idxmin()]
        best = {
            "trial": int(row["trial"]),
            "objective": float(row["objective"]),
            **{p: short_value(row[p]) for p in params},
        }
    live = counted(table)
    complete = live[live["state"] == "COMPLETE"]["objective"]
    meta = {
        "study": name,
        **_core.provenance(tracker, parent, ("optuna", "mlflow", *_core.KERAS_VERSIONS)),
        "resumed": str(StudyResumed.from_tags(tags).resumed),
        "space": record.space,
        "space_source": record.space_source,
        "space_format": record.space_format or "?",  # "?": a study from before the tag
        "experiment": record.experiment,
        "objective": record.objective,
        "direction": direction,
        "sampler": record.sampler,
        "sampler_class": parent.data.params.get("sampler.class", "?"),
        "sampler_seed": str(record.sampler_seed),
        "pruner": record.pruner,
        "storage_kind": tags.get("optuna.storage_kind", "?"),
        "max_trials": "?" if budget.max_trials is None else str(budget.max_trials),
        "max_parallel": "no limit" if budget.max_parallel is None else str(budget.max_parallel),
        "max_failed": "no limit" if budget.max_failed is None else str(budget.max_failed),
        "counts": (
            f"{len(live)} counted ({(live['state'] == 'COMPLETE').sum()} complete, "
            f"{(live['state'] == 'PRUNED').sum()} pruned, {(live['state'] == 'FAIL').sum()} failed, "
            f"{(live['state'] == 'RUNNING').sum()} running); {len(table) - len(live)} failed and re-run"
        ),
        "devices": "; ".join(
            filter(None, [", ".join(sorted(_unique(tracker, table, "device"))) or "?", _frameworks(tracker, table)])
        ),
        "prices": ", ".join(sorted(_unique(tracker, table, "price_per_hour"))) or "unknown",
        # "": none recorded (a study from before the tag), shown as harness logs it
        "reference_scale": "" if record.objective_reference_scale is None else str(record.objective_reference_scale),
        "cmle": (
            f"{tags['cmle.tier']} = {tags.get('cmle.description', '')}, list price "
            f"{tags.get('cmle.price_per_hour', 'unknown')} $/h"
            if "cmle.tier" in tags
            else ""
        ),
        "flat": flat_objective(list(complete), record.experiment, record.objective),
        "scale_notes": record.scale_notes or "",
        "total_time_s": f"{table['time_s'].sum():.1f}",
        "total_cost_usd": "n/a" if table["cost_usd"].isna().all() else f"{table['cost_usd'].sum():.4f}",
    }
    return StudyReport(table, params, best, meta, tracker)


# the next scale up, whose longer training and larger data give trials room to differ (harness/ladders SCALES)
_MORE_SIGNAL = {"smoke": "standard", "standard": "full"}


def flat_objective(values: Sequence[float], experiment: str, objective: str) -> str:
    """A sentence when two or more complete trials all scored the same objective, else "".

    A sampler ranks trials by their objective; when every one ties (a smoke-scale detector's IoU of 0 on
    every trial) TPE has nothing to model and the "best" trial is merely the first. ``experiment`` is the
    study's label (``yolo:layers17@smoke``): the advice names the scale above it.
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(finite) < 2 or max(finite) != min(finite):
        return ""
    scale = experiment.rpartition("@")[2] if "@" in experiment else ""
    more = _MORE_SIGNAL.get(scale)
    advice = (
        f"run it at --scale {more} (longer training on more data), where trials can score differently"
        if more
        else "train longer (--set iterations=N) or widen the space's ranges, so that trials can score differently"
    )
    return (
        f"every one of the {len(finite)} complete trials scored {objective} = {finite[0]:.4g}: the sampler had "
        f"nothing to learn (it ranks trials by their objective, and they all tie; the best trial is only the "
        f"first); {advice}"
    )


def _frameworks(tracker: Tracker, table: pd.DataFrame) -> str:
    """ "Keras on ...": the frameworks of the trials' runs (those from before the tag: TensorFlow)."""
    if table.empty:
        return ""
    return "Keras on " + ", ".join(sorted(_unique(tracker, table, FRAMEWORK_TAG) or {"tensorflow"}))


def _unique(tracker: Tracker, table: pd.DataFrame, tag: str) -> set[str]:
    out = set()
    for run_id in table["run_id"].head(20):
        value = tracker.client.get_run(run_id).data.tags.get(tag)
        if value:
            out.add(value)
    return out


def _obj(value: float) -> str:
    """An objective: five significant digits (accuracies near 1 and losses near 0 both stay readable)."""
    return _core.number(value, ".5g", "")


def short_value(value: Any) -> str:
    """A parameter for a table: long floats shortened (0.011781448719376511 -> 0.01178), whole numbers
    written whole (16440.0 -> 16440, not 1.644e+04), a tuple as its items (4,3,2)."""
    if isinstance(value, tuple | list):
        return ",".join(map(short_value, value))
    text = str(value)
    if "." in text or "e" in text.lower():
        try:
            number = float(text)
        except ValueError:
            return text
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.4g}"
    return text


def reference_scale(report: StudyReport) -> float:
    """The reference trainers' scale of the objective (1 when they logged it as harness does, or none is recorded)."""
    try:
        return float(report.meta.get("reference_scale", "1.0"))
    except ValueError:
        return 1.0


def display_study(report: StudyReport) -> pd.DataFrame:
    t = report.table
    scale = reference_scale(report)
    shown = (
        {f"objective x {scale:g} (reference scale)": [_obj(v * scale) for v in t["objective"]]} if scale != 1 else {}
    )
    return pd.DataFrame(
        {
            "trial": t["trial"],
            "state": t["state"],
            "MLflow run": t["status"],
            **{p: [short_value(v) for v in t[p]] for p in report.params},
            "objective": [_obj(v) for v in t["objective"]],
            **shown,
            "time (s)": [_core.number(v, ".1f", "") for v in t["time_s"]],
            "cost ($)": [_core.number(v, ".4f") for v in t["cost_usd"]],
            "re-run of": t["retry_of"],
        }
    )


def _lead(report: StudyReport) -> list[str]:
    """The provenance lines and the best trial (text from the store through md_text)."""
    m = {k: _core.md_text(v) for k, v in report.meta.items()}
    code = {k: _core.md_code(v) for k, v in report.meta.items()}
    best = report.best
    best_line = (
        f"**Best: trial {best['trial']}, {m['objective']} = {_obj(best['objective'])}** ("
        + ", ".join(f"{_core.md_text(p)}={_core.md_text(best[p])}" for p in report.params)
        + ")"
        if best
        else "Best: no trial completed"
    )
    scale = reference_scale(report)
    if best and scale != 1:
        best_line += (
            f"; {_obj(best['objective'] * scale)} on the reference trainers' scale (their {code['objective']} is "
            f"harness's x {scale:g}: the mean cross-entropy x 100)"
        )
    lines = [
        f"Study run: {code['command']}" + (f" (resumed {m['resumed']} times)" if m["resumed"] != "0" else ""),
        f"Search space {code['space']} ({m['space_source']}, {m['space_format']} format), experiment {m['experiment']}",
        f"Objective {m['objective']} ({m['direction']}); sampler {m['sampler']} seed {m['sampler_seed']} "
        f"({m['sampler_class']}), pruner {m['pruner']}, Optuna storage {m['storage_kind']}",
        f"Budget: max_trials {m['max_trials']}, max_parallel {m['max_parallel']}, max_failed {m['max_failed']}; "
        f"trials: {m['counts']}",
        f"MLflow parent run {code['parent_run_id']} ({m['parent_status']}), started {m['started']}",
        f"Device: {m['devices']} on host {code['host']}; {m['versions']}; "
        f"harness commit {_core.md_commit(m['git_commit'])}",
        f"Total trial time {m['total_time_s']} s, cost ${m['total_cost_usd']} (wall time x {m['prices']} $/h, "
        "harness/hardware/prices.yaml)",
    ]
    if m["cmle"]:
        lines.append(f"Cloud ML Engine scale tier {m['cmle']} (for reference; trials ran on the device above)")
    if m.get("scale_notes"):
        lines.append(f"Scale: {m['scale_notes']}")
    if m.get("flat"):
        best_line += f". **Nothing to learn:** {m['flat']}"
    return [*lines, best_line]


def _title(report: StudyReport) -> str:
    return f"Study {_core.md_code(report.meta['study'])}"


def study_document(report: StudyReport, report_command: str) -> Document:
    """The report: the objective per trial and the best so far (HTML only), then every trial."""
    figure = study_figure(report)
    sections = [
        *([Section("Best so far", figures=[figure])] if figure is not None else []),
        Section("Trials", table=display_study(report)),
    ]
    return Document(_title(report), _lead(report), sections, generated=_core.generated_by(report_command))


def study_markdown(report: StudyReport, report_command: str) -> str:
    return render_markdown(study_document(report, report_command))


@_html.default_style
def study_figure(report: StudyReport) -> Any:
    """The objective of each trial (points) and the best so far over the counted trials (a step line);
    ``None`` when no trial has an objective yet."""
    t = counted(report.table).dropna(subset=["objective"])
    if t.empty:
        return None
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    maximize = report.meta.get("direction", "maximize") == "maximize"
    done = t[t["state"] == "COMPLETE"]
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.subplots()
    if len(done):
        best = done["objective"].cummax() if maximize else done["objective"].cummin()
        ax.step(done["trial"], best, where="post", color="C3", lw=2, label="best so far")
        ax.scatter(done["trial"], done["objective"], color="C0", s=22, zorder=3, label="complete trial")
    other = t[t["state"] != "COMPLETE"]
    if len(other):
        ax.scatter(
            other["trial"], other["objective"], facecolors="none", edgecolors="grey", s=22, label="pruned/failed"
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{report.meta.get('objective', 'objective')} ({report.meta.get('direction', 'maximize')})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"study {report.meta.get('study', '')}: objective per trial and best so far")
    return fig


def write_study_report(report: StudyReport, out_dir: Path, report_command: str) -> tuple[Path, Path, Path]:
    """``study_<name>.md``, ``.csv`` and ``.html``; the HTML is also logged to the study's parent run."""
    stem = f"study_{report.meta['study']}"
    table = report.table.assign(study=report.meta["study"], parent_run_id=report.meta["parent_run_id"])
    doc = study_document(report, report_command)
    files = publish(doc, out_dir, stem, table, tracker=report.store, run_id=report.meta["parent_run_id"])
    return files.md, files.csv, files.html


def study_fingerprint(tracker: Tracker, parent: Any) -> str:
    """The fingerprint of what a study tunes: its parent run's tag, or, for a study made before the tag
    existed, recomputed from the resolved space it logged (``search_space/resolved.yaml``)."""
    import yaml

    from harness.tracking import space_fingerprint

    tagged = study_record(parent).fingerprint
    if tagged:
        return tagged
    try:
        text = tracker.client.download_artifacts(parent.info.run_id, "search_space/resolved.yaml")
        described = yaml.safe_load(Path(text).read_text(encoding="utf-8"))
        return space_fingerprint(described)
    except Exception:  # no such artifact, or not the layout of a study's parent run
        return "unknown"
