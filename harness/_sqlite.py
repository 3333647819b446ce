"""SQLite files that several processes of one machine share: the MLflow store and Optuna's RDB storage."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from harness.errors import HarnessError, UserError

T = TypeVar("T")
# How long a command waits, in all, for another process's lock on a SQLite store before it gives up
LOCK_TIMEOUT_ENV = "HARNESS_SQLITE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 60.0
_BUSY, _LOCKED = 5, 6  # SQLITE_BUSY ("database is locked"), SQLITE_LOCKED ("database table is locked")


class StoreLocked(HarnessError):
    """Another process held a lock on a SQLite store for longer than ``lock_timeout()``: not bad input."""


def lock_timeout() -> float:
    """Seconds to wait for a lock: ``$HARNESS_SQLITE_LOCK_TIMEOUT``, else 60."""
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"${LOCK_TIMEOUT_ENV}: expected a number of seconds above 0, but got {text!r}")
    return value


def is_lock_error(exc: BaseException) -> bool:
    """Whether SQLite refused because another connection holds a lock (SQLITE_BUSY or SQLITE_LOCKED),
    anywhere in the chain: sqlite3's own error, SQLAlchemy's wrapper of it (``.orig``), MLflow's or
    Optuna's exception raised from either."""
    todo: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, sqlite3.OperationalError):
            code = getattr(err, "sqlite_errorcode", None)
            if (code is not None and code & 0xFF in (_BUSY, _LOCKED)) or " is locked" in str(err):
                return True
        orig = getattr(err, "orig", None)
        todo += [err.__cause__, err.__context__, orig if isinstance(orig, BaseException) else None]
    return False


def locked_message(path: Path | str, waited: float) -> str:
    return (
        f"{path}: another process holds a lock on this SQLite store and kept it for over {waited:g} s; "
        f"try again when it is done (${LOCK_TIMEOUT_ENV} sets how long to wait)"
    )


def retry_locked(path: Path | str, attempt: Callable[[float], T]) -> T:
    """``attempt(seconds_left)`` until it returns; a lock (another process writing, converting the file to
    WAL, or closing it last and cleaning up its log, when SQLite answers "database is locked" without
    waiting) is retried with growing pauses until ``lock_timeout()`` has passed, then ``StoreLocked``.
    Any other error is raised as it is."""
    bound = lock_timeout()
    deadline = time.monotonic() + bound
    pause = 0.05
    while True:
        try:
            return attempt(max(deadline - time.monotonic(), 0.1))
        except Exception as exc:
            if not is_lock_error(exc):
                raise
        left = deadline - time.monotonic()
        if left <= 0:
            raise StoreLocked(locked_message(path, bound)) from None
        # jittered: processes that met on one lock do not all come back at the same instant
        time.sleep(min(pause * random.uniform(0.5, 1.0), left))
        pause = min(pause * 2, 2.0)


def use_wal(path: Path) -> None:
    """Put the SQLite file at ``path`` (created if missing) in WAL mode, which the file keeps: a commit
    appends to one log instead of writing and deleting a rollback journal, and readers (``harness ui``,
    other workers) never block the writer. Keep such a file on a local disk, not a network file system."""

    def attempt(seconds_left: float) -> None:
        # sqlite3's busy timeout waits out an ordinary lock; retry_locked the ones SQLite does not wait on
        with contextlib.closing(sqlite3.connect(path, timeout=seconds_left)) as conn:
            conn.execute("pragma journal_mode=wal")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        retry_locked(path, attempt)
    except (OSError, sqlite3.Error) as exc:  # a read-only folder, a full disk, not a database; a lock is not one
        raise UserError(f"{path}: cannot open it as a SQLite database ({exc})") from None


def check_opens(path: str) -> None:
    """Open the SQLite file ``path`` through SQLAlchemy and read its table names, as MLflow's store does
    first, once. MLflow retries that step for about 100 s (made for a database server still starting); a
    local file that fails it now (a full disk, a damaged file) fails it then too, so the error comes at
    once. A lock raises here like anywhere else, for ``retry_locked`` to wait out."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()


_FAST: set[str] = set()  # the SQLite files whose connections commit without an fsync (fast_commits)


def fast_commits(path: Path | str) -> None:
    """Every SQLAlchemy connection this process opens to the SQLite file ``path`` from now on runs
    ``synchronous=NORMAL``: in WAL mode a commit then costs no fsync. A killed process loses nothing
    it committed; a power cut may lose the last commits, never the file. Used for the MLflow store
    and Optuna's SQLite storage, whose engines the libraries create themselves: the listener sits on
    SQLAlchemy's ``Engine`` class (public event API), installed once, and touches only these files."""
    import sqlalchemy

    if not _FAST:
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", _on_connect)
    _FAST.add(str(Path(path).resolve()))


def _on_connect(dbapi_connection: object, record: object) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # (seq, name, file) per attached database: "main" is the file this connection opened
    rows = dbapi_connection.execute("pragma database_list").fetchall()
    if any(row[1] == "main" and row[2] and str(Path(row[2]).resolve()) in _FAST for row in rows):
        dbapi_connection.execute("pragma synchronous=normal")


def create_once(path: Path, build: Callable[[Path], None]) -> None:
    """Create the SQLite file ``path`` with ``build(tmp)``, in WAL mode, unless it exists; put an existing
    file in WAL mode (one MLflow made itself).

    The file is built under a lock on its folder, in a temporary file beside it that is renamed
    into place only when complete: two processes starting at once build it once, and a full disk,
    a read-only folder or Ctrl-C never leave a half-built file that breaks every later command.
    """
    lock_timeout()  # a bad $HARNESS_SQLITE_LOCK_TIMEOUT is refused before anything is made
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
                    # in WAL mode before anyone sees it: no process has to convert the shared file, which
                    # takes an exclusive lock that every other reader and writer then waits on
                    with contextlib.closing(sqlite3.connect(tmp)) as conn:
                        conn.execute("pragma journal_mode=wal")
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
