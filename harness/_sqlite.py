"""SQLite files that several processes of one machine share: the MLflow store and Optuna's RDB storage."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.errors import HarnessError, UserError


def use_wal(path: Path) -> None:
    """Put the SQLite file at ``path`` (created if missing) in WAL mode, which the file keeps: a commit
    appends to one log instead of writing and deleting a rollback journal, and readers (``harness ui``,
    other workers) never block the writer. Keep such a file on a local disk, not a network file system."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path, timeout=60)) as conn:
            conn.execute("pragma journal_mode=wal")
    except (OSError, sqlite3.Error) as exc:  # a read-only folder, a full disk, not a database
        raise UserError(f"{path}: cannot open it as a SQLite database ({exc})") from None


def create_once(path: Path, build: Callable[[Path], None]) -> None:
    """Create the SQLite file ``path`` with ``build(tmp)`` unless it exists, then put it in WAL mode.

    The file is built under a lock on its folder, in a temporary file beside it that is renamed
    into place only when complete: two processes starting at once build it once, and a full disk,
    a read-only folder or Ctrl-C never leave a half-built file that breaks every later command.
    """
    if not path.exists():
        with _folder_lock(path.parent):
            if not path.exists():  # the process that held the lock before us may have built it
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                try:
                    # fail fast on a folder we cannot write (the driver would retry its connection for minutes)
                    tmp.open("wb").close()
                except OSError as exc:
                    raise UserError(f"{path}: cannot create it ({exc.strerror})") from None
                try:
                    build(tmp)
                    os.replace(tmp, path)
                except BaseException as exc:
                    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
                        leftover.unlink(missing_ok=True)
                    if isinstance(exc, Exception) and not isinstance(exc, HarnessError):
                        reason = _reason(exc)
                        raise HarnessError(f"{path}: could not create it ({reason}); nothing was left behind") from None
                    raise
    use_wal(path)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder itself: no lock file is left beside the store."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise UserError(f"{folder}: cannot create or open this folder ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _reason(exc: BaseException) -> str:
    """The root cause in one line: SQLAlchemy wraps sqlite3's 'database or disk is full'."""
    cause: BaseException = exc
    for _ in range(20):  # a chain, not a cycle
        nxt = cause.__cause__ or cause.__context__
        if nxt is None:
            break
        cause = nxt
    text = str(getattr(cause, "orig", None) or cause).splitlines()[0] if str(cause) else type(cause).__name__
    return text[:300]
