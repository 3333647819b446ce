"""No orphans: workers die with their supervisor however it dies, `runs clean` ends what a kill -9 left
RUNNING (MLflow runs and Optuna trials), a stop during start-up leaves nothing, and a killed worker is
named as such (not by TensorFlow's last log line)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import run_cli
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from harness import interrupts, lifeline
from harness.studies._settings import REQUEUE_ATTR

CLI = [sys.executable, "-m", "harness"]
PG_SERVER = os.environ.get("HARNESS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


# --- helpers: processes seen through /proc ------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(parent: int, marker: bytes) -> list[int]:
    """Live child processes of ``parent`` whose command line holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and marker in (proc / "cmdline").read_bytes() and _alive(int(proc.name)):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_OFFLINE": "1", "TMPDIR": str(tmp_path / "tmp")}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop(lifeline.SUPERVISOR_ENV, None)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return env


def _all_runs(root: Path) -> list[Any]:
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return list(client.search_runs(ids, run_view_type=ViewType.ALL)) if ids else []


# --- the lifeline itself ----------------------------------------------------------------------------

_CHILD = """\
import os, sys, time, pathlib
from harness import lifeline
marker = pathlib.Path(sys.argv[1])
def gone(pid):  # may run before watch_supervisor returns (a supervisor already gone)
    marker.write_text(str(pid))
    os._exit(0)
line = lifeline.watch_supervisor(gone, use_signal=None if sys.argv[2] == "signal" else False)
marker.with_name("armed").write_text(line.method if line else "none")
time.sleep(600)  # the main thread never acts: the lifeline's thread must
"""

_SUPERVISOR = """\
import os, subprocess, sys, time
from harness import lifeline
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]],
                         env=lifeline.supervised_env(os.environ), start_new_session=True)
time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["signal", "poll"])
def test_a_child_ends_when_its_supervisor_is_killed(tmp_path: Path, method: str) -> None:
    marker = tmp_path / "gone"
    sup = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, _CHILD, str(marker), method], env=_env(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "armed").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        expected = method if sys.platform.startswith("linux") else "poll"
        assert (tmp_path / "armed").read_text() == expected
        [child] = _children(sup.pid, b"lifeline.watch_supervisor")
        sup.kill()
        sup.wait()
        assert _wait_gone([child], 10) == []
        assert marker.read_text() == str(sup.pid)  # on_gone ran, and named the supervisor
    finally:
        sup.kill()
        sup.wait()


@pytest.mark.slow
def test_a_supervisor_dead_before_the_child_armed_is_noticed(tmp_path: Path) -> None:
    """The race PR_SET_PDEATHSIG leaves open: the parent died before prctl. The child compares its
    parent with the one it was told of, and acts at once."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    marker = tmp_path / "gone"
    env = {**_env(tmp_path), lifeline.SUPERVISOR_ENV: str(dead.pid)}
    child = subprocess.run([sys.executable, "-c", _CHILD, str(marker), "signal"], env=env, timeout=60)
    assert child.returncode == 0 and marker.read_text() == str(dead.pid)


def test_a_process_not_started_by_a_supervisor_watches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lifeline.SUPERVISOR_ENV, raising=False)
    assert lifeline.watch_supervisor(lambda pid: None) is None


# --- multiworker:N: the supervisor killed with -9 ---------------------------------------------------


@pytest.mark.slow
def test_killed_ladder_takes_its_multiworker_workers_along(tmp_path: Path) -> None:
    args = ["ladder", "census", "--scale", "smoke", "--rungs", "dnn", "--no-report"]
    args += ["--set", "backend=multiworker:2", "--set", "iterations=60000", "--set", "eval_every=600"]
    log = tmp_path / "ladder.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, *args], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=_env(tmp_path))
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        ready: list[Path] = []
        while len(ready) < 2 and time.monotonic() < deadline:  # both workers exist and train
            assert proc.poll() is None, log.read_text()[-3000:]
            ready = list((tmp_path / "tmp").glob("harness-workers-*/ready-*"))
            time.sleep(0.2)
        workers = _children(proc.pid, b"harness.executor._worker")
        assert len(ready) == 2 and len(workers) == 2, log.read_text()[-3000:]
        proc.kill()
        proc.wait()
        assert _wait_gone(workers, 10) == [], "workers outlived their supervisor"
    finally:
        proc.kill()
        proc.wait()
        _kill_all(workers)
    [rung] = [r for r in _all_runs(tmp_path) if r.data.tags.get("harness.kind") == "rung"]
    assert rung.info.status == "KILLED"  # the chief ended it, before any `runs clean`
    assert "the chief worker ended it KILLED" in rung.data.tags["harness.swept"]
    assert list((tmp_path / "tmp").glob("harness-workers-*")) == []
    rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert rc == 0 and "1 run(s) ended KILLED" in out, out  # the ladder's parent run
    assert {r.info.status for r in _all_runs(tmp_path)} == {"KILLED"}


def _log(body: str, killed: bool) -> list[str]:
    """A worker's log as TensorFlow writes it (start-up noise), ending killed or with a Python error."""
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796526577.921222   14314 port.cc:153] oneDNN custom operations are on.",
        "2024-05-01 12:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:210] This TensorFlow binary",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.",
    ]
    cuda = "E0000 00:00:1796526586.313546   14314 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)"
    error = [] if killed else ["Traceback (most recent call last):", '  File "x.py", line 1', body]
    return [*noise, *error, cuda]


@pytest.mark.slow
def test_a_killed_chief_is_named_as_such_and_no_tensorflow_noise_is_shown(tmp_path: Path) -> None:
    from harness.executor._multiworker import _failure

    script = textwrap.dedent(
        """\
        import os, signal, sys
        sys.stdout.write(open(sys.argv[1]).read())
        sys.stdout.flush()
        if sys.argv[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.exit(1)
        """
    )
    procs = []
    for i, how in enumerate(["kill", "exit"]):
        path = tmp_path / f"worker-{i}.log"
        path.write_text("\n".join(_log("ValueError: lost the cluster", killed=how == "kill")) + "\n")
        with (tmp_path / f"out-{i}.log").open("wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-c", script, str(path), how], stdout=out))
    codes = [p.wait() for p in procs]
    assert codes == [-signal.SIGKILL, 1]
    why = _failure(procs, codes, tmp_path)
    assert why == f"the chief worker (pid {procs[0].pid}) was killed by SIGKILL"  # not its log's last line
    why = _failure(procs, [None, 1], tmp_path)  # a worker that raised: its error, not TensorFlow's chatter
    assert why == f"worker 1 of 2 (pid {procs[1].pid}) exited with code 1: ValueError: lost the cluster"
    assert _failure(procs, [None, 0], tmp_path) is None


# --- --parallel K study workers: the study process killed with -9 -------------------------------------


def _space(folder: Path, name: str, params: str, iterations: int, budget: str) -> Path:
    fixed = {"steps_per_execution": 10, "train_subset": 600, "test_subset": 200, "eval_batch_size": 200}
    fixed.update({"eval_every": 10, "iterations": iterations})
    text = textwrap.dedent(
        f"""\
        name: {name}
        experiment: {{ladder: mnist, rung: softmax, scale: smoke}}
        fixed: {json.dumps(fixed)}
        objective: {{metric: accuracy}}
        budget: {budget}
        sampler: grid
        params:
        """
    ) + textwrap.indent(textwrap.dedent(params), "  ")
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _open(url: str) -> Any:
    from harness.studies._storage import normalise_url, open_storage

    return open_storage(normalise_url(url))


def _trials(url: str, name: str, storage: Any = None) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=storage or _open(url)).trials
    except KeyError:  # not created yet
        return []


def _training(url: str, name: str, proc: subprocess.Popen[bytes], log: Path, n: int) -> list[int]:
    """Wait until ``n`` trials are RUNNING mid-training (an evaluation reported); their numbers."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        running = [t.number for t in _trials(url, name) if t.state.name == "RUNNING" and t.intermediate_values]
        if len(running) >= n:
            return running
        time.sleep(0.3)
    raise AssertionError(log.read_text()[-3000:])


_BENCH_PARENT = """\
from harness.bench._yolo import _config, yolo_settings
from harness.bench._yolo_candidates import measure_candidates
from harness.config import apply_overrides

cfg = apply_overrides(_config(yolo_settings(True)), {"iterations": 100000, "eval_every": 100000}, "test")
measure_candidates(cfg, None, 1, True, print)  # trains for minutes: the test kills this process first
"""


@pytest.mark.slow
def test_killed_bench_takes_its_yolo_candidate_child_along(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _BENCH_PARENT], env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not children and time.monotonic() < deadline and parent.poll() is None:
            children = _children(parent.pid, b"harness.bench._yolo_candidates")
            time.sleep(0.2)
        assert children, f"no candidate child started (parent exit {parent.poll()})"
        time.sleep(2)  # past the child's first lines, so that it watches its supervisor
        parent.kill()
        parent.wait()
        assert _wait_gone(children, 30) == []
    finally:
        _kill_all([parent.pid, *children])


@pytest.mark.slow
def test_killed_study_stops_its_parallel_workers(tmp_path: Path, tiny_data_dir: Path) -> None:
    space = _space(tmp_path, "orph", "lr0: {type: float, grid: [0.003, 0.01]}\n", 100000, "{max_trials: 2}")
    log = tmp_path / "study.log"
    args = ["study", str(space), "--parallel", "2", "--data-dir", str(tiny_data_dir), "--no-report"]
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, *args], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=_env(tmp_path))
    url = f"journal:{tmp_path / 'optuna.journal'}"
    workers: list[int] = []
    try:
        running = _training(url, "orph-grid", proc, log, 2)
        workers = _children(proc.pid, b"worker")
        assert len(workers) == 2
        proc.kill()
        proc.wait()
        # they stop as Ctrl-C stops them: the step in flight ends, the run ends KILLED, the trial is queued again
        assert _wait_gone(workers, 120) == [], log.read_text()[-3000:]
    finally:
        proc.kill()
        proc.wait()
        _kill_all(workers)
    assert "the study process (pid" in log.read_text()
    trials = _trials(url, "orph-grid")
    assert {t.number: t.state.name for t in trials if t.number in running} == dict.fromkeys(running, "FAIL")
    assert sorted(n for t in trials for n in t.system_attrs.get(REQUEUE_ATTR, ())) == sorted(running)
    runs = [r for r in _all_runs(tmp_path) if r.data.tags.get("harness.kind") == "trial"]
    assert len(runs) == 2 and {r.info.status for r in runs} == {"KILLED"}
    rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert rc == 0, out
    assert "RUNNING" not in {r.info.status for r in _all_runs(tmp_path)}


# --- runs clean: Optuna trials of killed workers end FAIL (journal, SQLite, PostgreSQL) --------------------


from test_studies_slow import pg_url  # noqa: E402,F401  (one fresh-database fixture, not two)


def _exists(url: str) -> bool:
    """Whether the storage is there to read: a server, or a file that a study created."""
    from harness.studies._storage import local_file, normalise_url

    path = local_file(normalise_url(url))
    return path is None or path.exists()


def _kill_when_training(
    procs: dict[str, subprocess.Popen[bytes]], urls: dict[str, str], logs: dict[str, Path], storages: dict[str, Any]
) -> dict[str, int]:
    """Kill each study process with -9 as soon as its trial trains (an evaluation reported); the trials' numbers."""
    killed: dict[str, int] = {}
    deadline = time.monotonic() + 300
    while len(killed) < len(procs):
        for kind, proc in procs.items():
            if kind in killed:
                continue
            assert proc.poll() is None and time.monotonic() < deadline, logs[kind].read_text()[-3000:]
            if kind not in storages and _exists(urls[kind]):  # opened once the study made it, not per poll
                storages[kind] = _open(urls[kind])
            trials = _trials(urls[kind], f"lost-{kind}-grid", storages[kind]) if kind in storages else []
            running = [t.number for t in trials if t.state.name == "RUNNING" and t.intermediate_values]
            if running:
                proc.kill()
                proc.wait()
                [killed[kind]] = running
        time.sleep(0.3)
    return killed


@pytest.mark.slow
def test_runs_clean_fails_the_trials_of_killed_workers(
    tmp_path: Path, tiny_data_dir: Path, request: pytest.FixtureRequest
) -> None:
    """Three studies at once, one per kind of storage, each killed with -9 mid-trial; one `runs clean` finds
    them: journal, the default beside mlflow.db; SQLite, found through the study's parent run; PostgreSQL, given
    (without a server, the other two)."""
    urls = {"journal": f"journal:{tmp_path / 'optuna.journal'}", "sqlite": f"sqlite:///{tmp_path / 'el' / 's.db'}"}
    with contextlib.suppress(pytest.skip.Exception):  # no server: the file storages all the same
        urls["postgresql"] = request.getfixturevalue("pg_url")
    storages: dict[str, Any] = {}
    (tmp_path / "el").mkdir()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {kind: tmp_path / f"study-{kind}.log" for kind in urls}
    for kind, url in urls.items():
        space = _space(tmp_path, f"lost-{kind}", "lr0: {type: float, grid: [0.003, 0.01]}\n", 100000, "{max_trials: 2}")
        args = ["study", str(space), "--data-dir", str(tiny_data_dir), "--no-report"]
        args += [] if kind == "journal" else ["--storage", url]
        with logs[kind].open("wb") as out:
            procs[kind] = subprocess.Popen(
                [*CLI, *args], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=_env(tmp_path)
            )
    try:
        killed = _kill_when_training(procs, urls, logs, storages)
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
    from harness.studies._storage import normalise_url

    shown = {kind: normalise_url(url) for kind, url in urls.items()}  # as harness names them: absolute, driver
    clean = ["runs", "clean", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    rc, out = run_cli(*clean, "--dry-run")
    assert rc == 0 and "dry run: nothing changed" in out, out
    for kind in ("journal", "sqlite"):
        assert f"would end FAIL: trial {killed[kind]} of study lost-{kind}-grid in {shown[kind]}," in out, out
    if "postgresql" in urls:  # a server is opened only when given
        assert f"not checked: Optuna storage {shown['postgresql']} (a database server); give it with --storage" in out
        assert "of study lost-postgresql-grid" not in out, out
        clean += ["--storage", urls["postgresql"]]
    for kind, url in urls.items():
        assert [t.state.name for t in _trials(url, f"lost-{kind}-grid", storages.get(kind))] == ["RUNNING"]

    rc, out = run_cli(*clean)
    assert rc == 0 and "not checked" not in out, out
    for kind, url in urls.items():
        assert f"ended FAIL, queued again: trial {killed[kind]} of study lost-{kind}-grid in {shown[kind]}, " in out
        assert f"is gone\n1 Optuna trial(s) ended FAIL in {shown[kind]}" in out, out
        trials = _trials(url, f"lost-{kind}-grid", storages.get(kind))
        assert [t.state.name for t in trials] == ["FAIL", "WAITING"]  # queued again once, as a heartbeat expiry does
        assert trials[1].system_attrs["failed_trial"] == killed[kind] and trials[1].params == trials[0].params
    assert "RUNNING" not in {r.info.status for r in _all_runs(tmp_path)}
    rc, out = run_cli(*clean)  # nothing left to do
    assert rc == 0 and "0 run(s) ended KILLED" in out and "ended FAIL," not in out, out


@pytest.mark.parametrize(
    ("storage", "says"),
    [
        ("nosuch://host/db", "cannot open it"),
        ("journal:", "names no journal file"),
        ("{tmp}/gone.journal", "no such file"),
    ],
)
def test_runs_clean_refuses_a_bad_storage_in_one_line(tmp_path: Path, storage: str, says: str) -> None:
    storage = storage.format(tmp=tmp_path)
    rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage", storage)
    assert rc == 2 and out.startswith("error: --storage") and says in out and len(out.splitlines()) == 1, out
    assert not (tmp_path / "gone.journal").exists()


# --- stopped during start-up: nothing is left ------------------------------------------------------


def _sigterm_on(prefix: str, lines: list[str]) -> Any:
    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith(prefix):
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from elsewhere, at exactly this point

    return progress


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before the parent run", "after the parent run"])
def test_sigterm_while_a_ladder_starts_leaves_no_parent_run(workdir: Path, when: str) -> None:
    from harness.ladders import load_ladder
    from harness.ladders._runner import LadderRequest, run_ladder
    from harness.tracking import Tracker

    tracker = Tracker(f"sqlite:///{workdir / 'mlflow.db'}")
    request = LadderRequest(load_ladder("census").select("linear"), scale="smoke")
    lines: list[str] = []
    with interrupts.graceful(), pytest.raises(KeyboardInterrupt):
        if when == "before the parent run":
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the data load
        run_ladder(request, tracker, _sigterm_on("MLflow parent run", lines))
    runs = _all_runs(workdir)
    if when == "before the parent run":
        assert runs == [] and lines == []
    else:
        [parent] = runs  # no rung started: the empty parent is deleted, not left KILLED
        assert parent.info.lifecycle_stage == "deleted" and parent.info.status == "KILLED"
    assert MlflowClient(tracker.uri).search_runs([e.experiment_id for e in tracker.client.search_experiments()]) == []


@pytest.mark.slow
def test_sigterm_while_a_study_starts_leaves_no_study_and_no_parent_run(workdir: Path) -> None:
    from harness.studies import StudyRequest, TrivialRunner
    from harness.studies._study import run_study

    space = _space(workdir, "early", "lr0: {type: float, grid: [0.003, 0.01]}\n", 20, "{max_trials: 2}")
    lines: list[str] = []
    with interrupts.graceful(), pytest.raises(KeyboardInterrupt):
        run_study(StudyRequest(space_file=str(space)), _sigterm_on("study early-grid (new)", lines), TrivialRunner())
    assert "interrupted before its first trial; the study and its parent run were deleted" in lines[-1]
    assert optuna.get_all_study_names(_open(f"journal:{workdir / 'optuna.journal'}")) == []
    [parent] = _all_runs(workdir)
    assert parent.info.lifecycle_stage == "deleted"
    # and the next start is a new study, not a resume of a deleted one
    run_study(StudyRequest(space_file=str(space)), lambda line: None, TrivialRunner())
    [study] = optuna.get_all_study_summaries(_open(f"journal:{workdir / 'optuna.journal'}"))
    assert study.n_trials == 2
