"""Optuna storage: Optuna's journal file beside the MLflow store, or any SQLAlchemy URL.

The embedded default is ``optuna.journal`` next to ``mlflow.db``: Optuna's
``JournalStorage`` on a ``JournalFileBackend`` (an append-only log of operations,
fsynced per write; every process replays what it has not read yet). Per trial it
costs less than SQLite through ``RDBStorage`` (0.63× at 1,000 trials in
``results/bench/bench.md``, section (d)), the processes of one machine share it under a file lock, and a write
is one append of whole lines, so a killed worker leaves no half-written record.
``--storage`` also takes ``journal:PATH`` or a path ending in ``.journal``.

Any SQLAlchemy URL works through ``RDBStorage`` (``sqlite:///optuna.db``, the
default before the journal, is still read), and PostgreSQL
(``postgresql://host/db``) is the multi-machine setup. A local SQLite file runs in
WAL mode with ``synchronous=NORMAL``: a commit costs no fsync (a power cut may
lose the last trials, not corrupt the file).

Heartbeats (a killed worker's trial becomes FAIL and is retried) come with
``RDBStorage``; Optuna 5.0's ``JournalStorage`` has none, so ``HeartbeatJournalStorage``
implements Optuna's own ``BaseHeartbeat`` interface on it: a heartbeat is a trial
system attribute with the time, and ``optuna.storages.fail_stale_trials`` and the
heartbeat thread of ``study.optimize`` work on it unchanged. Its clock is each
worker's own: across machines use PostgreSQL.

``budget_lock`` serialises "count the trials, then create one" across every
worker of a study (a file lock for a journal or SQLite file, an advisory lock on
PostgreSQL and MySQL), so a budget is never overrun and the grid sampler's trial
number -> grid point assignment never repeats a point.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness._dburl import with_installed_driver
from harness._secrets import redact_text, redact_uri
from harness._sqlite import create_once, fast_commits, lock_timeout, retry_locked
from harness.errors import UserError

DEFAULT_FILE = "optuna.journal"
LEGACY_DEFAULT_FILE = "optuna.db"  # the default until the journal: kept where it already holds studies
JOURNAL = "journal"
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
# What `--parallel K` hands its `harness worker` processes through the environment, not argv (`ps` shows
# argv to every user); a worker on another machine may set them too, instead of --storage/--tracking-uri.
STORAGE_ENV = "HARNESS_STORAGE"
TRACKING_ENV = "HARNESS_TRACKING_URI"
_local_locks: dict[str, threading.Lock] = {}


def default_storage_url(tracking_uri: str) -> str:
    """``journal:<dir of mlflow.db>/optuna.journal`` (for a tracking server, in the working directory);
    ``sqlite:///.../optuna.db`` instead where that older default exists and the journal does not."""
    if tracking_uri.startswith("sqlite:///"):
        folder = Path(tracking_uri.removeprefix("sqlite:///")).parent
    else:
        folder = Path.cwd()
    folder = folder.resolve()
    if (folder / LEGACY_DEFAULT_FILE).exists() and not (folder / DEFAULT_FILE).exists():
        return f"sqlite:///{folder / LEGACY_DEFAULT_FILE}"
    return f"{JOURNAL}:{folder / DEFAULT_FILE}"


def journal_path(url: str) -> Path | None:
    """The file of a journal storage (``journal:PATH``, ``journal:///PATH`` or ``PATH.journal``), else None."""
    if url.startswith(f"{JOURNAL}:"):
        rest = url.removeprefix(f"{JOURNAL}:")
        rest = "/" + rest.removeprefix("///") if rest.startswith("///") else rest
        if not rest:
            raise UserError(f"--storage: {url!r} names no journal file (e.g. journal:optuna.journal)")
        return Path(rest)
    if "://" not in url and url.endswith(".journal"):
        return Path(url)
    return None


def normalise_url(url: str) -> str:
    """Relative journal and SQLite paths made absolute, so every worker process finds the same file;
    ``postgresql://`` given the installed driver (SQLAlchemy 2.1 defaults to psycopg 3,
    harness installs psycopg2)."""
    journal = journal_path(url)
    if journal is not None:
        return f"{JOURNAL}:{journal.resolve()}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        return "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
    _parsed(url)  # a malformed URL is refused here, by name
    return with_installed_driver(url)


def _parsed(url: str) -> Any:
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UserError(
            f"--storage: {redact_uri(url)!r} is neither a journal file (journal:PATH, PATH.journal) nor a "
            "SQLAlchemy URL (e.g. sqlite:///optuna.db, postgresql://host/db)"
        ) from None


def storage_kind(url: str) -> str:
    """journal, or the database: sqlite, postgresql, mysql, ..."""
    if journal_path(url) is not None:
        return JOURNAL
    return str(_parsed(url).get_backend_name())


def is_local_file(url: str) -> bool:
    """A journal or SQLite file: shared by the processes of one machine, not across machines."""
    return storage_kind(url) in (JOURNAL, "sqlite")


def redact(url: str) -> str:
    """The URL with any password masked (also ``?password=``), for logs, tags and files."""
    if journal_path(url) is None:
        _parsed(url)  # not a URL at all: refused, as everywhere else (with the password masked)
    return redact_uri(url)


def _sqlite_path(url: str) -> Path | None:
    database = _parsed(url).database
    return None if not database or database == ":memory:" else Path(database)


def local_file(url: str) -> Path | None:
    """The file of a journal or SQLite storage; None for a database server or an in-memory one."""
    kind = storage_kind(url)
    return journal_path(url) if kind == JOURNAL else _sqlite_path(url) if kind == "sqlite" else None


def open_storage(
    url: str,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
    on_stale: Callable[[Any, Any], None] | None = None,
) -> Any:
    """Optuna storage with heartbeats (``HeartbeatJournalStorage`` or ``RDBStorage``);
    ``on_stale(study, trial)`` runs for each trial it fails."""
    import optuna
    import sqlalchemy

    journal = journal_path(url)
    if journal is not None:
        from harness.studies._journal import HeartbeatJournalStorage

        return HeartbeatJournalStorage(journal, heartbeat_interval, grace_period, on_stale)
    kind = storage_kind(url)
    engine_kwargs: dict[str, Any] = {}
    path = _sqlite_path(url) if kind == "sqlite" else None
    if kind == "sqlite":
        if path is not None:  # two commands at once on a new file: one of them creates Optuna's tables
            create_once(path, _build_sqlite)
            fast_commits(path)
        engine_kwargs["connect_args"] = {"timeout": lock_timeout()}  # each statement waits out a writer

    def attempt(_: float) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=on_stale,
            )

    try:
        # opening reads the schema's version: a lock SQLite does not wait on is retried, not a bad storage
        storage = retry_locked(path, attempt) if path is not None else attempt(0)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ModuleNotFoundError) as exc:
        why = redact_text(f"{type(exc).__name__}: {exc}")  # a driver's message may quote the URL
        raise UserError(f"--storage {redact(url)}: cannot open it ({why})"[:2000]) from None
    return storage


def _build_sqlite(path: Path) -> None:
    """Optuna's tables in a new SQLite file (``create_once`` renames it into place when complete)."""
    import optuna

    optuna.storages.RDBStorage(f"sqlite:///{path}").engine.dispose()


def _lock_key(study_name: str) -> int:
    return int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def budget_lock(storage: Any, url: str, study_name: str) -> Iterator[None]:
    """Held while a worker counts trials and creates the next one; one holder per study."""
    import sqlalchemy

    kind = storage_kind(url)
    if kind in (JOURNAL, "sqlite"):
        path = journal_path(url) if kind == JOURNAL else _sqlite_path(url)
        if path is None:  # in-memory: one process
            lock = _local_locks.setdefault(study_name, threading.Lock())
            with lock:
                yield
            return
        import fcntl

        lock_path = path.with_name(f"{path.name}.budget-lock")  # one per file: held for milliseconds
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    if kind == "postgresql":
        key = _lock_key(study_name)
        with storage.engine.connect() as conn:
            conn.execute(sqlalchemy.text("select pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("select pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    if kind in ("mysql", "mariadb"):
        name = f"harness-{study_name}"[:64]
        with storage.engine.connect() as conn:
            conn.execute(sqlalchemy.text("select get_lock(:n, 600)"), {"n": name})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("select release_lock(:n)"), {"n": name})
        return
    warnings.warn(
        f"no cross-process lock for {kind} storage: parallel workers may overrun the budget by a few trials",
        stacklevel=2,
    )
    yield
