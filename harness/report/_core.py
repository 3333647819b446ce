"""What every report shares: finding runs in the store, their provenance, and the writers.

Runs are read with the explicit ``MlflowClient`` of a :class:`~harness.tracking.Tracker`
(never MLflow's process-wide tracking URI) and flattened into the same columns
``mlflow.search_runs`` gives (``run_id``, ``status``, ``tags.*``, ``params.*``,
``metrics.*``), so every report is a pandas computation over one frame.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness._paths import safe_child
from harness._secrets import redact_text
from harness.errors import UserError
from harness.tracking import Tracker


def require_store(tracker: Tracker, first: str) -> None:
    """A local store that does not exist yet is an error saying what to run first."""
    if tracker.uri.startswith("sqlite:///") and not Path(tracker.uri.removeprefix("sqlite:///")).exists():
        raise UserError(
            f"no tracking store at {tracker.display_uri.removeprefix('sqlite:///')}; run `{first}` here first, "
            "or pass --tracking-uri"
        )


def search(
    tracker: Tracker, experiment_ids: Sequence[str], filter_string: str, order_by: Sequence[str] = ()
) -> list[Any]:
    """Every run matching ``filter_string`` (all pages)."""
    out: list[Any] = []
    token = None
    while True:
        page = tracker.client.search_runs(
            list(experiment_ids), filter_string, order_by=list(order_by) or None, max_results=1000, page_token=token
        )
        out.extend(page)
        token = page.token
        if not token:
            return out


def runs_frame(runs: Iterable[Any]) -> pd.DataFrame:
    """Runs as rows: ``run_id``, ``status``, ``start_time`` and ``tags.*``/``params.*``/``metrics.*``."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "status": run.info.status,
            "start_time": run.info.start_time,
        }
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def children(tracker: Tracker, parent: Any) -> pd.DataFrame:
    """The child runs of ``parent`` as a frame."""
    return runs_frame(search(tracker, [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"))


def provenance(tracker: Tracker, parent: Any, versions: Sequence[str]) -> dict[str, str]:
    """Where a report's numbers came from: the parent run, store, command, host, commit and versions."""
    tags = parent.data.tags
    return {
        "parent_run_id": parent.info.run_id,
        "parent_status": parent.info.status,
        "tracking_uri": tracker.display_uri,
        "command": redact_text(tags.get("harness.command", "")),  # runs logged before redaction existed
        "host": tags.get("host", "?"),
        "git_commit": tags.get("mlflow.source.git.commit", "?"),
        "versions": ", ".join(f"{k} {tags[f'{k}.version']}" for k in versions if f"{k}.version" in tags),
        "started": datetime.fromtimestamp(parent.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def generated_by(command: str) -> str:
    return f"Generated from the MLflow tracking store by `{redact_text(command)}`; do not edit by hand."


def markdown_table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True)


def write_file(path: Path, content: str | bytes) -> Path:
    """Replace ``path`` atomically: a crash or a full disk leaves the old file or none, never half a file."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a report is for everyone who reads results/
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_csv(path: Path, table: pd.DataFrame) -> Path:
    return write_file(path, table.to_csv(index=False))


def write_figure(path: Path, figure: Any, **savefig: Any) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig)
    return write_file(path, buffer.getvalue())


def write(out_dir: Path, stem: str, markdown: str, table: pd.DataFrame) -> tuple[Path, Path]:
    """``<stem>.md`` and ``<stem>.csv`` in ``out_dir``; a stem that is not one file name is refused."""
    md, csv = (safe_child(out_dir, f"{stem}{ext}", what="report file") for ext in (".md", ".csv"))
    return write_file(md, markdown), write_csv(csv, table)
