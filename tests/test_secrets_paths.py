"""Secrets and paths (issue 12): a password in --storage/--tracking-uri never reaches output, MLflow,
files or worker argv; names that become paths (ladder, rung, run) never lead out of their root."""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness._paths import check_name, encode_name, safe_child
from harness._secrets import hides_secret, redact_argv, redact_text, redact_uri
from harness.cli import main
from harness.errors import ConfigError, UserError

PG_SERVER = os.environ.get("HARNESS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
STORAGE_SECRET = "st0rage-S3CRET"
TRACKING_SECRET = "track1ng-S3CRET"


def _cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue() + err.getvalue()


# --- the redaction helper ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
        ("postgresql+psycopg2://user:secret@host:5432/db", "postgresql+psycopg2://user:***@host:5432/db"),
        ("postgresql://user:se@cr/et?x@host/db", "postgresql://user:***@host/db"),  # '@', '/', '?' in it
        ("postgresql://user:p%40ss@host/db", "postgresql://user:***@host/db"),
        ("postgresql://host/db?user=u&password=secret", "postgresql://host/db?user=u&password=***"),
        ("postgresql://u@host/db?password=p@ss", "postgresql://u@host/db?password=***"),
        ("postgresql://u:a@h/db?sslpassword=b;token=c#f", "postgresql://u:***@h/db?sslpassword=***;token=***#f"),
        ("https://h/x?X-Amz-Signature=abc&a=b", "https://h/x?X-Amz-Signature=***&a=b"),
        ("http://user:secret@mlflow:5000", "http://user:***@mlflow:5000"),
        ("https://ghp_T0KEN@mlflow.example/", "https://***@mlflow.example/"),  # a token as the user
        ("HTTP://tok@h:5000", "HTTP://***@h:5000"),
        ("--storage=mysql://root:secret@db/optuna", "--storage=mysql://root:***@db/optuna"),
        # nothing secret: unchanged
        ("postgresql://user@host/db", "postgresql://user@host/db"),  # a database's user is a name
        ("https://h/x@y", "https://h/x@y"),
        ("postgresql://user:@host/db", "postgresql://user:@host/db"),
        ("journal:/tmp/optuna.journal", "journal:/tmp/optuna.journal"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("mnist:cnn", "mnist:cnn"),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    assert hides_secret(shown) == (shown != uri)
    assert redact_uri(shown) == shown  # idempotent


# printable ASCII without spaces: the userinfo password may hold '@', '/', '?', ':' or '#' unencoded
_PASSWORDS = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)
_USERS = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_HOSTS = st.sampled_from(["127.0.0.1", "db.example.org:5432", "[::1]:5433"])
_PROPS = settings(max_examples=300, deadline=None, database=None)


@_PROPS
@given(pw=_PASSWORDS, user=_USERS, host=_HOSTS)
def test_redaction_hides_any_password(pw: str, user: str, host: str) -> None:
    assert redact_uri(f"postgresql://{user}:{pw}@{host}/db") == f"postgresql://{user}:***@{host}/db"
    in_query = f"postgresql+psycopg2://{user}@{host}/db?sslmode=require&password={quote(pw, safe='')}"
    assert redact_uri(in_query) == f"postgresql+psycopg2://{user}@{host}/db?sslmode=require&password=***"
    argv = ["study", "s.yaml", "--storage", f"mysql://{user}:{pw} {pw}@{host}/db", f"--tracking-uri={in_query}"]
    assert redact_argv(argv) == [
        "study",
        "s.yaml",
        "--storage",
        f"mysql://{user}:***@{host}/db",
        f"--tracking-uri={redact_uri(in_query)}",
    ]


@_PROPS
@given(pw=_PASSWORDS.filter(lambda p: not set(p) & set("'\"`<>")), user=_USERS, host=_HOSTS)
def test_redaction_finds_the_password_in_free_text(pw: str, user: str, host: str) -> None:
    text = f"--storage postgresql://{user}:{pw}@{host}/db: cannot open it (OperationalError: refused)"
    shown = f"--storage postgresql://{user}:***@{host}/db: cannot open it (OperationalError: refused)"
    assert redact_text(text) == shown


def test_redact_text_finds_uris_in_messages() -> None:
    text = "error: cannot connect to 'postgresql://u:secret@h/db' (refused); MLflow at http://a:b@c:5000/ ok"
    shown = "error: cannot connect to 'postgresql://u:***@h/db' (refused); MLflow at http://a:***@c:5000/ ok"
    assert redact_text(text) == shown


# --- names that become paths ------------------------------------------------------------------

BAD_NAMES = ["", ".", "..", "../x", "../../../ESCAPE", "a/b", "/abs", "a\\b", "a\x00b", "a\nb", "tab\t", "x" * 256]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_check_name_refuses_what_is_not_one_file_name(name: str) -> None:
    with pytest.raises(UserError, match=r"ladder name must be a single file name .* but got "):
        check_name(name, "ladder name")
    with pytest.raises(ConfigError):
        check_name(name, "rung 1 name", ConfigError)


@pytest.mark.parametrize("name", ["mnist", "cnn-batchnorm", "01-cnn-split=scene,random-s0", "a.b", "...", "ünï"])
def test_check_name_keeps_plain_names(name: str) -> None:
    assert check_name(name, "name") == name


@pytest.mark.parametrize("name", [*BAD_NAMES, "%2F", "a%b", "01-cnn-backend=multiworker:2-s0"])
def test_encode_name_is_always_one_safe_component(name: str, tmp_path: Path) -> None:
    encoded = encode_name(name)
    assert check_name(encoded, "encoded") == encoded
    assert safe_child(tmp_path, encoded).parent == tmp_path


def test_encode_name_keeps_plain_names_and_distinct_names_apart() -> None:
    assert encode_name("cnn-batchnorm") == "cnn-batchnorm"
    names = [*BAD_NAMES, "%2F", "a%b", "%00", "%2E%2E", "x" * 300]
    assert len({encode_name(n) for n in names}) == len(names)


def test_safe_child_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "results", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert safe_child(root, "report.md") == root / "report.md"
    with pytest.raises(UserError, match="must stay inside"):
        safe_child(root, "link", "report.md")
    with pytest.raises(UserError, match="single file name"):
        safe_child(root, "../report.md")


def test_report_writer_refuses_a_name_that_leads_out(tmp_path: Path) -> None:
    import pandas as pd

    from harness.report._core import write

    out = tmp_path / "a" / "b" / "results"
    with pytest.raises(UserError, match="report file must be a single file name"):
        write(out, "../../../ESCAPE_ladder", "# x\n", pd.DataFrame({"x": [1]}))
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    md, csv = write(out, "mnist_ladder", "# x\n", pd.DataFrame({"x": [1]}))
    assert md.parent == out and csv.parent == out


def test_tensorboard_and_detect_folders_stay_under_their_roots(tmp_path: Path) -> None:
    from harness.cli._commands import run_dir as _run_dir
    from harness.executor import Executor

    executor = Executor(tracker=None, tensorboard_dir=tmp_path / "tensorboard")  # type: ignore[arg-type]
    logdir = executor.tensorboard_logdir("../../../ESCAPE", "0123456789abcdef", "../01-../../x-s0")
    assert logdir.resolve().is_relative_to((tmp_path / "tensorboard").resolve())
    parts = logdir.relative_to(tmp_path / "tensorboard").parts  # a group's "/" nests folders (studies/<name>)
    assert parts == ("%2E%2E", "%2E%2E", "%2E%2E", "ESCAPE", "01234567", "..%2F01-..%2F..%2Fx-s0")
    assert executor.tensorboard_logdir("studies/mnist-cnn-tpe", "0123456789abcdef", "trial-003") == (
        tmp_path / "tensorboard" / "studies" / "mnist-cnn-tpe" / "01234567" / "trial-003"
    )
    assert executor.tensorboard_logdir("mnist", "0123456789abcdef", "01-softmax-s0") == (
        tmp_path / "tensorboard" / "mnist" / "01234567" / "01-softmax-s0"
    )
    assert executor.tensorboard_logdir("", "0123456789abcdef", "trial-000") == (
        tmp_path / "tensorboard" / "01234567" / "trial-000"
    )
    out = tmp_path / "detect_scan"
    for name in ("../../../ESCAPE", "..", "a/b", "/etc"):
        assert _run_dir(out, name).parent == out
    assert _run_dir(out, "07-cnn-s0") == out / "07-cnn-s0"


@pytest.mark.parametrize(
    ("ladder", "rung"),
    [("../../../ESCAPE", "a"), ("tiny", "../../x"), ("tiny", "a/b")],
)
def test_ladder_with_a_path_for_a_name_is_refused_before_it_runs(
    workdir: Path, tiny_data_dir: Path, ladder: str, rung: str
) -> None:
    spec = workdir / "in" / "escape.yaml"
    spec.parent.mkdir()
    spec.write_text(
        textwrap.dedent(
            f"""\
            name: {json.dumps(ladder)}
            base: {{dataset: mnist, iterations: 20, eval_every: 10, train_subset: 600, test_subset: 200}}
            rungs:
              - name: {json.dumps(rung)}
                changes: softmax
                set: {{model: mlp}}
            """
        ),
        encoding="utf-8",
    )
    before = set(workdir.parent.iterdir())
    rc, out = _cli(
        "ladder", str(spec), "--data-dir", str(tiny_data_dir),
        "--out", str(workdir / "in" / "results"), "--tensorboard-dir", str(workdir / "in" / "tb"),
    )  # fmt: skip
    assert rc == 2, out
    assert "name" in out and "Traceback" not in out
    assert set(workdir.parent.iterdir()) == before  # nothing written beside the working directory
    assert not (workdir / "ESCAPE_ladder.md").exists() and not (workdir / "in" / "tb").exists()


# --- a real study with passwords in both URIs ---------------------------------------------------


def _with_password(url: str, password: str, database: str, driver: str | None = None) -> str:
    import sqlalchemy

    parsed = sqlalchemy.engine.make_url(url).set(password=password, database=database)
    if driver:
        parsed = parsed.set(drivername=driver)
    return str(parsed.render_as_string(hide_password=False))


@pytest.fixture
def pg_urls() -> Iterator[tuple[str, str]]:
    """(Optuna storage, MLflow tracking URI): two fresh PostgreSQL databases, each URL with a password,
    both plain ``postgresql://`` (harness picks the installed driver for each)."""
    psycopg2 = pytest.importorskip("psycopg2")
    names = [f"harness_secret_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        conn = psycopg2.connect(_with_password(PG_SERVER, STORAGE_SECRET, "postgres"), connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_SERVER} that takes a password in the URL (trust auth): {exc}")
    conn.autocommit = True
    for name in names:
        conn.cursor().execute(f'create database "{name}"')
    try:
        yield (
            _with_password(PG_SERVER, STORAGE_SECRET, names[0]),
            _with_password(PG_SERVER, TRACKING_SECRET, names[1]),
        )
    finally:
        for name in names:
            conn.cursor().execute(f'drop database if exists "{name}" with (force)')
        conn.close()


def _database_rows(url: str) -> list[str]:
    """Every row of every table of a PostgreSQL database, as text."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sqlalchemy.inspect(conn).get_table_names()
            return [
                row[0] for t in tables for row in conn.execute(sqlalchemy.text(f'select cast(t as text) from "{t}" t'))
            ]
    finally:
        engine.dispose()


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, pp in parents.items() if pp == pid]
        found += children
        frontier += children
    return found


def _run_watching_argv(args: list[str], cwd: Path, log: Path, timeout: float = 900) -> tuple[int, dict[int, str]]:
    """Run ``harness ARGS``; return its exit code and the argv of every process it started."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_OFFLINE": "1"}
    for key in ("MLFLOW_TRACKING_URI", "HARNESS_STORAGE", "HARNESS_TRACKING_URI"):
        env.pop(key, None)
    argvs: dict[int, str] = {}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"timed out:\n{log.read_text()[-3000:]}")
            for pid in _descendants(proc.pid):
                with contextlib.suppress(OSError):
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    if cmdline:
                        argvs[pid] = cmdline
            time.sleep(0.1)
    return proc.returncode, argvs


@pytest.mark.slow
def test_passwords_in_storage_and_tracking_uri_appear_nowhere(
    tmp_path: Path, tiny_data_dir: Path, pg_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from harness.studies._storage import normalise_url, open_storage
    from harness.tracking import resolve_tracking_uri

    storage, tracking = pg_urls
    secrets = (STORAGE_SECRET, TRACKING_SECRET)
    space = tmp_path / "sec.yaml"
    fixed = {"iterations": 20, "eval_every": 10, "steps_per_execution": 10, "train_subset": 600, "test_subset": 200}
    space.write_text(
        textwrap.dedent(
            f"""\
            name: sec
            experiment: {{ladder: mnist, rung: softmax, scale: smoke}}
            fixed: {json.dumps({**fixed, "eval_batch_size": 200})}
            objective: {{metric: accuracy}}
            budget: {{max_trials: 2}}
            sampler: grid
            params:
              lr0: {{type: float, low: 0.001, high: 0.1, log: true, grid: [0.003, 0.03]}}
            """
        ),
        encoding="utf-8",
    )
    log = tmp_path / "study.log"
    args = ["study", str(space), "--storage", storage, "--tracking-uri", tracking, "--parallel", "2"]
    rc, argvs = _run_watching_argv([*args, "--data-dir", str(tiny_data_dir), "--out", "results"], tmp_path, log)
    output = log.read_text()
    assert rc == 0, output[-4000:]

    # worker processes: started, and their argv (what `ps` shows everyone) holds no password
    workers = {pid: a for pid, a in argvs.items() if " worker sec-grid " in a}
    # the two workers started (a process they fork shows the same argv under another pid)
    assert {re.search(r"--label (\S+)", a)[1] for a in workers.values()} == {"w1/2", "w2/2"}, argvs
    for argv in argvs.values():
        assert not any(s in argv for s in secrets), argv
    # output of the study and of its workers (they share its stdout): masked, not missing
    assert not any(s in output for s in secrets), output
    assert "postgres:***@" in output and "2 worker processes" in output

    # MLflow: every tag and param of every run, and the experiments' own tags
    client = MlflowClient(resolve_tracking_uri(tracking))
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 3  # the study's parent run and two trials
    for run in runs:
        logged = json.dumps([run.data.tags, run.data.params, run.info.run_name])
        assert not any(s in logged for s in secrets), logged
    parent = next(r for r in runs if r.data.tags.get("harness.kind") == "study")
    for flag, url in (("--storage", storage), ("--tracking-uri", tracking)):
        assert shlex.join([flag, redact_uri(url)]) in parent.data.tags["harness.command"]
    assert parent.data.tags["optuna.storage"].count("***") == 1

    # everything stored in both databases: Optuna's study (settings for workers) and MLflow's store
    study = optuna.load_study(study_name="sec-grid", storage=open_storage(normalise_url(storage)))
    assert len(study.trials) == 2 and {t.state.name for t in study.trials} == {"COMPLETE"}
    assert sorted(t.params["lr0"] for t in study.trials) == [0.003, 0.03]  # two workers at once: each point once
    assert study.user_attrs["harness"]["tracking_uri"] == redact_uri(resolve_tracking_uri(tracking))
    for url in (storage, tracking):
        rows = _database_rows(normalise_url(url))
        assert len(rows) > 10 and not any(s in row for row in rows for s in secrets)

    # every file written: the report, MLflow artifacts, TensorBoard events
    report = tmp_path / "results" / "study_sec-grid.md"
    assert report.exists() and "postgres:***@" in html.unescape(report.read_text())  # Markdown shows "*" as &#42;
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "resolved.yaml" for p in written) and any("tfevents" in p.name for p in written)
    for path in written:
        data = path.read_bytes()
        assert not any(s.encode() in data for s in secrets), path

    # a worker elsewhere cannot take the tracking password from the study: it must be given
    monkeypatch.delenv("HARNESS_TRACKING_URI", raising=False)
    monkeypatch.delenv("HARNESS_STORAGE", raising=False)
    rc, out = _cli("worker", "sec-grid", "--storage", storage)
    assert rc == 2 and "password is not stored" in out and "HARNESS_TRACKING_URI" in out, out
    assert not any(s in out for s in secrets), out


def test_connection_errors_do_not_echo_the_password(workdir: Path, tiny_data_dir: Path) -> None:
    secret = "n0-such-S3CRET"
    space = workdir / "s.yaml"
    space.write_text(
        "name: s\nexperiment: {ladder: mnist, rung: softmax, scale: smoke}\nobjective: {metric: accuracy}\n"
        "budget: {max_trials: 1}\nparams:\n  lr0: {type: float, low: 0.001, high: 0.1}\n",
        encoding="utf-8",
    )
    for bad in (
        f"postgresql://postgres:{secret}@127.0.0.1:1/nodb",  # nothing listens on port 1
        f"postgresql://postgres:{secret}@127.0.0.1:notaport/nodb",  # not a URL at all
        f"postgresql://postgres:{secret}@[::1/nodb",
        f"nosuchdialect://postgres:{secret}@127.0.0.1/nodb",
    ):
        rc, out = _cli("study", str(space), "--storage", bad, "--parallel", "2", "--data-dir", str(tiny_data_dir))
        assert rc == 2 and out.startswith("error: ") and "***" in out, out
        assert secret not in out, out
