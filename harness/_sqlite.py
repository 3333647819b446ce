"""SQLite files that several processes of one machine share: the MLflow store and Optuna's RDB storage."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def use_wal(path: Path) -> None:
    """Put the SQLite file at ``path`` (created if missing) in WAL mode, which the file keeps: a commit
    appends to one log instead of writing and deleting a rollback journal, and readers (``harness ui``,
    other workers) never block the writer. Keep such a file on a local disk, not a network file system."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=60)) as conn:
        conn.execute("pragma journal_mode=wal")
