"""What every report shares: finding runs in the store, their provenance, and the writers.

Runs are read with the explicit ``MlflowClient`` of a :class:`~harness.tracking.Tracker`
(never MLflow's process-wide tracking URI) and flattened into the same columns
``mlflow.search_runs`` gives (``run_id``, ``status``, ``tags.*``, ``params.*``,
``metrics.*``), so every report is a pandas computation over one frame.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness._paths import check_folder, safe_child
from harness._secrets import redact_text
from harness.errors import UserError
from harness.tracking import COMMAND_TAG, CWD_TAG, FRAMEWORK_TAG, Tracker


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


# Keras and the frameworks under it, as a report's versions line names them (each only where the run logged it)
KERAS_VERSIONS = ("tensorflow", "jax", "torch", "keras")


def provenance(tracker: Tracker, parent: Any, versions: Sequence[str]) -> dict[str, str]:
    """Where a report's numbers came from: the parent run, store, command, host, commit and versions."""
    tags = parent.data.tags
    return {
        "parent_run_id": parent.info.run_id,
        "parent_status": parent.info.status,
        "tracking_uri": tracker.display_uri,
        # runs logged before redaction existed; paths as seen from the folder the command ran in
        "command": run_command(tags),
        "host": tags.get("host", "?"),
        "git_commit": tags.get("mlflow.source.git.commit", "?"),
        "versions": ", ".join(f"{k} {tags[f'{k}.version']}" for k in versions if f"{k}.version" in tags),
        "started": datetime.fromtimestamp(parent.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def frameworks(runs: pd.DataFrame) -> str:
    """ "Keras on jax, tensorflow": the frameworks ``runs`` trained on (their ``harness.framework`` tag; a run
    from before the tag trained on TensorFlow), for a report's Device line."""
    column = f"tags.{FRAMEWORK_TAG}"
    names = runs[column].fillna("tensorflow") if column in runs else pd.Series(["tensorflow"] * len(runs))
    return "Keras on " + ", ".join(sorted(set(names))) if len(runs) else ""


def number(value: Any, spec: str, missing: str = "n/a") -> str:
    """``value`` formatted with ``spec``, or ``missing`` where it is no number (NaN, None): a table never
    shows Python's ``nan``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return missing
    return missing if math.isnan(x) else format(x, spec)


def plus_minus(mean: Any, spread: Any, spec: str, spread_spec: str, missing: str = "n/a") -> str:
    """``mean ± spread`` (an sd, a standard error), the mean alone where the spread is no number, ``missing``
    where the mean is none: every "±" cell of every report."""
    shown = number(mean, spec, "")
    if not shown:
        return missing
    spread_shown = number(spread, spread_spec, "")
    return shown + (f" ± {spread_shown}" if spread_shown else "")


def generated_by(command: str) -> str:
    """The line under a report's title: the command that wrote it, its paths relative to where it ran."""
    shown = md_code(local_paths(redact_text(command), os.getcwd()))
    return f"Generated from the MLflow tracking store by {shown}; do not edit by hand."


# an absolute path in a command line: a word (or the value of --opt=) starting with '/', or a SQLite URI's
_ABSOLUTE = re.compile(r"(?<![^\s=])(sqlite:///)?(/[^\s'\"]*)")


def local_paths(command: str, cwd: str | None) -> str:
    """``command`` with each absolute path written relative to ``cwd``, the folder it ran in
    (``sqlite:////work/main/mlflow.db`` -> ``sqlite:///mlflow.db``, ``/work/shared/data`` ->
    ``../shared/data``), so that a committed report does not carry the layout of the machine that wrote
    it; a path that shares no folder with ``cwd`` but the root stays as it is. No ``cwd``: unchanged."""
    if not cwd or not os.path.isabs(cwd):
        return command

    def relative(match: re.Match[str]) -> str:
        scheme, path = match.group(1) or "", match.group(2)
        parts, here = Path(os.path.normpath(path)).parts, Path(os.path.normpath(cwd)).parts
        if len(parts) < 2 or len(here) < 2 or parts[1] != here[1]:
            return match.group(0)  # only the root in common: a relative path would be longer and no truer
        return scheme + os.path.relpath(path, cwd)

    return _ABSOLUTE.sub(relative, command)


def run_command(tags: Mapping[str, str]) -> str:
    """A run's ``harness.command`` (redacted: runs logged before redaction existed), its paths relative
    to the folder it ran in (``harness.cwd``; for runs made before that tag, the report's own folder)."""
    return local_paths(redact_text(tags.get(COMMAND_TAG, "")), tags.get(CWD_TAG) or os.getcwd())


def md_commit(commit: str) -> str:
    """A run's git commit for a report header: the hash as a code span, and a ``-dirty`` tree said in words
    (the run's code had changes that no commit holds), not hidden."""
    sha, dirty, _ = str(commit).partition("-dirty")
    return md_code(sha) + (" (uncommitted changes)" if dirty else "")


# -- text from users, made safe to open -----------------------------------------------------------------
# Rung, variant, study, sampler and run names, notes and commands are typed by users (or read back from a
# store anyone can write to). Every .md and .csv harness writes passes them through md_text / write_csv.

# HTML entities, not backslashes: an entity is inert in every Markdown flavour and inside a GFM table, and
# the HTML pages (_html.inline) keep exactly these as they are. ``|`` splits a table cell; ``<``/``>`` open
# HTML (<script>, <img onerror=...>) and autolinks (<javascript:...>); ``[``/``]`` links and images; a
# backtick a code span; ``*`` emphasis (harness's own **bold** around a name); ``\\`` escapes the next mark;
# U+0001 is tabulate's separating-line marker: a cell of it alone turned its whole row into a rule.
MD_ESCAPES = {
    "<": "&lt;",
    ">": "&gt;",
    "|": "&#124;",
    "`": "&#96;",
    "[": "&#91;",
    "]": "&#93;",
    "*": "&#42;",
    "\\": "&#92;",
    "\x01": "&#1;",
}
_MD_TABLE = str.maketrans(MD_ESCAPES)
# brackets make a link only as "[..](", "[..][" or "[..]:": elsewhere ("median [min, max]") they stay readable
_MD_PLAIN = str.maketrans({k: v for k, v in MD_ESCAPES.items() if k not in "[]"})
_LINK = re.compile(r"\]\s*[(\[:]")
_ENTITY_START = re.compile(r"&(?=#?[0-9A-Za-z]+;)")  # a user's "&lt;" shows as typed, not as "<"
# one line: what CommonMark breaks lines at, plus what str.splitlines() does (a row must stay one row)
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def md_text(value: object) -> str:
    """``value`` as inert Markdown text on one line, shown as typed: the characters in :data:`MD_ESCAPES`
    (and an ``&`` that would start an entity) as entities, line breaks as spaces. For every table cell and
    every user-supplied part of a heading or line; wrap harness's own marks (``**``, links) around it."""
    text = _LINE_BREAKS.sub(" ", _ENTITY_START.sub("&amp;", str(value)))
    return text.translate(_MD_TABLE if _LINK.search(text) else _MD_PLAIN)


def md_code(value: object) -> str:
    """``value`` as a code span (an id, a command, a name), or as :func:`md_text` where a code span could
    not hold it as typed (entities do not decode inside code spans)."""
    text = str(value)
    return f"`{text}`" if text and md_text(text) == text else md_text(text)


def md_link(text: object, target: str) -> str:
    """A link harness builds to one of its own files: the shown text escaped, the target percent-encoded
    (no scheme such as ``javascript:`` survives it: ``:`` is encoded)."""
    return f"[{md_text(text)}]({urllib.parse.quote(target)})"


def _texts(frame: pd.DataFrame, escape: Callable[[Any], Any]) -> pd.DataFrame:
    """A copy of ``frame`` with ``escape`` on the headers and on every cell of the columns that can hold text
    (numbers, booleans and times are left as they are, and are written as before)."""
    safe = frame.copy()
    for i, dtype in enumerate(safe.dtypes):
        if pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            safe.isetitem(i, safe.iloc[:, i].map(escape))
    safe.columns = [escape(c) for c in safe.columns]
    return safe


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a GFM table; every text cell and header through :func:`md_text`."""
    table = _texts(frame, lambda v: md_text(v) if isinstance(v, str) else v)
    return table.to_markdown(index=False, disable_numparse=True)


# OWASP's CSV injection list (a spreadsheet reads a cell starting with one as a formula), and NUL (ASVS 1.2.10)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def csv_cell(value: Any) -> Any:
    """A string that a spreadsheet would read as a formula, prefixed with ``'`` (OWASP); anything else as it is
    (a float -0.5 stays a number: only strings are formulas)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with :func:`csv_cell` on every text cell and header."""
    return _texts(table, csv_cell)


def csv_text(table: pd.DataFrame) -> str:
    """The CSV of ``table``, safe to open: formulas neutralised (:func:`csv_safe`) and every text cell quoted
    (OWASP; and Python's csv quotes a lone carriage return only so, which would otherwise split a row)."""
    return csv_safe(table).to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC)


def write_file(path: Path, content: str | bytes) -> Path:
    """Replace ``path`` atomically: a crash or a full disk leaves the old file or none, never half a file."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        check_folder(path.parent, "output folder")  # a file in the way: say which, as bad input (exit 2)
        raise
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
    """Every CSV harness writes goes through here (:func:`csv_text`)."""
    return write_file(path, csv_text(table))


def write_figure(path: Path, figure: Any, **savefig: Any) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig)
    return write_file(path, buffer.getvalue())


def write(out_dir: Path, stem: str, markdown: str, table: pd.DataFrame) -> tuple[Path, Path]:
    """``<stem>.md`` and ``<stem>.csv`` in ``out_dir``; a stem that is not one file name is refused."""
    md, csv = (safe_child(out_dir, f"{stem}{ext}", what="report file") for ext in (".md", ".csv"))
    return write_file(md, markdown), write_csv(csv, table)
