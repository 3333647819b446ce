"""MLflow: experiments, parent/child runs that always end in a final state, and a sink.

Uses ``MlflowClient`` with an explicit tracking URI rather than MLflow's global
"active run", so nothing here depends on or changes process-wide state.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from harness._dburl import with_installed_driver
from harness._secrets import redact_text, redact_uri
from harness._sqlite import StoreLocked, check_opens, create_once, fast_commits, retry_locked
from harness.errors import UserError
from harness.tracking._sweep import Orphan, owner_tags, sweep

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# the stores MLflow's client can open (a +driver suffix, e.g. postgresql+psycopg2, is allowed)
TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "file", "databricks")
_BATCH = 1000  # MLflow's log_batch limit on metrics per call


def resolve_tracking_uri(uri: str | None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` here.

    A relative SQLite path is made absolute so that child processes and a later
    ``harness report`` from the same directory find the same store.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    scheme, sep, _ = uri.partition("://")
    if sep and scheme.split("+")[0].lower() not in TRACKING_SCHEMES:
        raise UserError(
            f"tracking URI {redact_uri(uri)!r}: unknown scheme {scheme!r}; expected one of "
            f"{', '.join(TRACKING_SCHEMES)} (e.g. sqlite:///mlflow.db or http://127.0.0.1:5000)"
        )
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return with_installed_driver(uri)  # postgresql:// works as it does for --storage


def local_artifact_root(uri: str) -> str | None:
    """For a local SQLite store, artifacts live beside it in ``mlartifacts/``; else the server decides."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


# MLflow 3 opens an experiment without this tag on its GenAI view; this is its traditional-ML value
_KIND_TAG = "mlflow.experimentKind"
_KIND = {_KIND_TAG: "custom_model_development"}


def store_reason(exc: BaseException) -> str:
    """The root cause in one line: SQLAlchemy wraps sqlite3's 'disk I/O error', 'malformed', 'already exists'."""
    cause: BaseException = exc
    for _ in range(20):  # a chain, not a cycle
        nxt = cause.__cause__ or cause.__context__
        if nxt is None:
            break
        cause = nxt
    text = str(getattr(cause, "orig", None) or cause).strip()
    return text.splitlines()[0][:300] if text else type(cause).__name__


class Tracker:
    """One tracking store. Creates experiments and runs; runs end FINISHED, FAILED or KILLED."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        self.uri = resolve_tracking_uri(tracking_uri)
        self._client: MlflowClient | None = None

    @property
    def display_uri(self) -> str:
        """The URI to show in output, tags and files: any password masked (the real one connects)."""
        return redact_uri(self.uri)

    @property
    def client(self) -> MlflowClient:
        """Created on first use, so that a command refused for bad input leaves no store behind."""
        if self._client is None:
            # MLflow sets its loggers up when first imported: after that, keep its INFO lines ("Creating
            # initial MLflow database tables") out of the output, and its store errors, which it logs
            # with a traceback and then raises: harness reports them in one line
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
            if self.uri.startswith("sqlite:///"):
                create_once(Path(self.uri.removeprefix("sqlite:///")), self._build_sqlite)
                fast_commits(self.uri.removeprefix("sqlite:///"))
                uri = self.uri

                def open_client(_: float) -> MlflowClient:
                    check_opens(uri.removeprefix("sqlite:///"))
                    return MlflowClient(uri)

                try:  # the client opens (and migrates) the store now; another process's lock is waited out
                    self._client = retry_locked(uri.removeprefix("sqlite:///"), open_client)
                except StoreLocked:
                    raise
                except Exception as exc:
                    # a file another client half-built (on a full disk, killed): its schema cannot be completed;
                    # MLflow's own refusals (an old schema to upgrade) say what to do themselves
                    hint = "" if isinstance(exc, MlflowException) else " (half-built or damaged; move it away)"
                    path = self.uri.removeprefix("sqlite:///")
                    raise UserError(f"cannot use {path} as an MLflow store: {store_reason(exc)}{hint}") from None
            else:
                self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _build_sqlite(self, path: Path) -> None:
        """MLflow's schema in a new SQLite file (``create_once`` renames it into place when complete)."""
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(f"sqlite:///{path}", local_artifact_root(self.uri))
        store.engine.dispose()  # no connection left open on the temporary name

    def end_orphans(self) -> list[Orphan]:
        """End KILLED this host's RUNNING runs whose process is gone (killed with -9, out of memory)."""
        return [orphan for orphan in sweep(self.client) if orphan.ended]

    def experiment_id(self, name: str) -> str:
        """The experiment ``name``, created if missing; it opens on MLflow's model-training view."""
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            root = local_artifact_root(self.uri)
            location = f"{root}/{name.replace('/', '-')}" if root else None
            try:
                exp_id = str(self.client.create_experiment(name, artifact_location=location, tags=_KIND))
            except MlflowException:
                exp = self.client.get_experiment_by_name(name)  # another process created it meanwhile
                if exp is None:
                    raise
            else:
                return exp_id
        if exp.tags.get(_KIND_TAG) is None:  # made before harness set it
            self.client.set_experiment_tag(exp.experiment_id, _KIND_TAG, _KIND[_KIND_TAG])
        return str(exp.experiment_id)

    def delete_if_empty(self, run_id: str) -> bool:
        """Delete ``run_id`` if nothing was recorded under it (no metric, no child run): what a command
        interrupted while it started leaves. Returns whether it was deleted."""
        from mlflow.entities import ViewType

        run = self.client.get_run(run_id)
        if run.data.metrics:
            return False
        children = self.client.search_runs(
            [run.info.experiment_id],
            f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{run_id}'",
            run_view_type=ViewType.ALL,
            max_results=1,
        )
        if children:
            return False
        self.client.delete_run(run_id)
        return True

    @contextlib.contextmanager
    def run(
        self,
        experiment_id: str,
        name: str,
        tags: Mapping[str, str] | None = None,
        parent: RunHandle | None = None,
        delete_if_interrupted_empty: bool = False,
    ) -> Iterator[RunHandle]:
        """A run that ends FINISHED on success, KILLED on Ctrl-C/SIGTERM/pruning, FAILED on error.
        ``delete_if_interrupted_empty``: a run interrupted before it recorded a metric or a child run is
        deleted instead (a parent run interrupted while its command started)."""
        all_tags = {
            MLFLOW_RUN_NAME: name,
            **owner_tags(),  # who can end it: `harness runs clean` ends it KILLED if this process dies unseen
            **{k: redact_text(str(v)) for k, v in (tags or {}).items()},
        }
        if parent is not None:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent.run_id
        run = self.client.create_run(experiment_id, run_name=name, tags=all_tags)
        handle = RunHandle(self.client, run.info.run_id)
        status = RunStatus.to_string(RunStatus.FAILED)
        interrupted = False
        try:
            yield handle
            status = RunStatus.to_string(RunStatus.FINISHED)
        except (KeyboardInterrupt, SystemExit, RunKilled) as exc:
            status = RunStatus.to_string(RunStatus.KILLED)
            interrupted = not isinstance(exc, RunKilled)
            raise
        except BaseException as exc:
            # the store itself may be what failed (a full disk): the original error is the one to see
            with contextlib.suppress(Exception):
                handle.set_tags({"error": f"{type(exc).__name__}: {exc}"[:5000]})  # set_tags redacts it
            raise
        finally:
            try:
                try:
                    handle.flush()  # staged params and tags: a failed write still ends the run
                finally:
                    self.client.set_terminated(handle.run_id, status=status)
            except Exception:
                # left RUNNING; the next `harness runs clean` (or ladder/study start) on this host ends it
                if status == RunStatus.to_string(RunStatus.FINISHED):
                    raise
            if interrupted and delete_if_interrupted_empty:
                with contextlib.suppress(Exception):  # the interrupt is what the user must see
                    self.delete_if_empty(handle.run_id)


def _params(params: Mapping[str, Any]) -> list[Param]:
    # a URI with a password (a data source, an override) is logged with the password masked
    return [Param(str(k), redact_text(str(v))) for k, v in params.items()]


def _tags(tags: Mapping[str, Any]) -> list[RunTag]:
    return [RunTag(str(k), redact_text(str(v))) for k, v in tags.items()]


class RunKilled(Exception):
    """Raise inside :meth:`Tracker.run` to end the run KILLED (e.g. a pruned trial)."""


class RunHandle:
    """One MLflow run: params, tags, metrics (it is a :class:`MetricSink`) and artifacts."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._params: list[Param] = []  # staged: sent with the next write
        self._tags: list[RunTag] = []

    def stage(self, params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None) -> None:
        """Hold ``params`` and ``tags`` for this run's next write, which sends them in the same MLflow
        call: each ``log_batch`` is a transaction of a few milliseconds on a local store, and a study
        trial would otherwise make one more per group. Whatever is still held when the run ends (or
        this sink closes) is written then."""
        self._params += _params(params or {})
        self._tags += _tags(tags or {})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._send(params=_params(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._send(tags=_tags(tags))

    def log_metrics(self, step: int, metrics: Mapping[str, float], model_id: str | None = None) -> None:
        """``model_id``: the run's LoggedModel gets the same values (the Models view compares them)."""
        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step, model_id=model_id) for k, v in metrics.items() if math.isfinite(float(v))
        ]
        self._send(metrics=items)

    def flush(self) -> None:
        """Write what :meth:`stage` holds, if anything."""
        if self._params or self._tags:
            self._send()

    def close(self) -> None:
        """As a metric sink: every write above is synchronous; only staged params and tags wait."""
        self.flush()

    def _send(self, params: Sequence[Param] = (), tags: Sequence[RunTag] = (), metrics: Sequence[Metric] = ()) -> None:
        params, tags, metrics = [*self._params, *params], [*self._tags, *tags], list(metrics)
        self._params, self._tags = [], []
        while params or tags or metrics:
            # MLflow's limits per call: 100 params, 100 tags, 1,000 metrics, 1,000 entities in all
            p, params = params[:100], params[100:]
            t, tags = tags[:100], tags[100:]
            room = _BATCH - len(p) - len(t)
            m, metrics = metrics[:room], metrics[room:]
            self.client.log_batch(self.run_id, metrics=m, params=p, tags=t)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dataset(
        self,
        name: str,
        checksum: str,
        source: str,
        context: str = "training",
        schema: str | None = None,
        profile: str | None = None,
    ) -> None:
        """The run's data as an MLflow dataset input: the UI's Dataset column and the dataset panel.

        MLflow keeps a digest of at most 36 characters: the checksum's first 32 hex digits (the full
        sha256 stays in the ``data.checksum`` tag). ``schema`` and ``profile``: MLflow's JSON of them
        (``mlflow.data.Dataset.to_json``), shown in the dataset panel."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        digest = checksum.rpartition(":")[2][:32]
        kind = "local" if source.startswith("/") or "://" not in source else source.split("://", 1)[0]
        dataset = Dataset(
            name=name,
            digest=digest,
            source_type=kind[:36],
            source=redact_text(source),
            schema=schema,
            profile=profile,
        )
        tags = [InputTag("mlflow.data.context", context)]
        for attempt in range(3):
            try:
                self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset, tags)])
                return
            except Exception as exc:
                # two processes logging one new dataset at once (a study's parallel workers): MLflow looks
                # for it, then inserts it, and the later insert breaks the unique key; the dataset is there
                # now, so logging again links it
                if attempt == 2 or (
                    "UNIQUE constraint failed: datasets" not in str(exc) and "datasets_pk" not in str(exc)
                ):
                    raise

    def log_text(self, text: str, filename: str) -> None:
        self.client.log_text(self.run_id, text, filename)

    def log_figure(self, figure: Any, filename: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(filename).name
            figure.savefig(path, dpi=110, bbox_inches="tight")
            parent = str(Path(filename).parent)
            self.log_artifact(path, None if parent == "." else parent)
