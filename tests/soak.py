"""Soak: a study of N trials on PostgreSQL, run by W `harness worker` processes that are killed
(SIGKILL) at random and restarted, then every invariant checked from the stores and written to
``results/soak.md`` and ``soak.html``. Run with ``nox -s soak`` (or ``python tests/soak.py --data-dir ../shared/data``).

What must hold at the end, whatever was killed when: the study spent exactly its budget; no Optuna
trial and no MLflow run is left RUNNING; every COMPLETE trial has exactly one FINISHED MLflow run
with its objective; every trial a kill interrupted is FAIL in Optuna, FAILED in MLflow, and was
queued again once (a retry that is killed too stays FAIL); no trial number appears twice.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SERVER = os.environ.get("HARNESS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
SPACE = """\
name: soak
experiment: {{ladder: mnist, rung: cnn, scale: smoke}}
fixed: {{iterations: 40, eval_every: 20}}
objective: {{metric: accuracy}}
budget: {{max_trials: {trials}, max_parallel: {workers}, max_failed: {trials}}}
sampler: random
params:
  lr0: {{type: float, low: 1.0e-4, high: 0.05, log: true}}
  dense: {{type: int, low: 16, high: 256}}
"""


def _database(name: str, drop: bool = False) -> str:
    import psycopg2

    conn = psycopg2.connect(f"{SERVER}/postgres", connect_timeout=5)
    conn.autocommit = True
    conn.cursor().execute(f'drop database if exists "{name}" with (force)' if drop else f'create database "{name}"')
    conn.close()
    return f"{SERVER}/{name}"


def _harness(*args: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=out, stderr=subprocess.STDOUT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--kill-every", type=float, nargs=2, default=(4.0, 12.0), metavar=("MIN_S", "MAX_S"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=os.environ.get("HARNESS_DATA_DIR", "../shared/data"))
    ap.add_argument("--work", default="", help="scratch folder (space file, worker logs); default a new temporary one")
    ap.add_argument("--out", default="results/soak.md")
    ap.add_argument("--timeout", type=float, default=1800)
    a = ap.parse_args()
    command = "python tests/soak.py " + shlex.join(sys.argv[1:])
    rng = random.Random(a.seed)
    work = Path(a.work or tempfile.mkdtemp(prefix="harness-soak-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    storage, tracking = _database(f"soak_optuna_{tag}"), _database(f"soak_mlflow_{tag}")
    space = work / "soak.yaml"
    space.write_text(SPACE.format(trials=a.trials, workers=a.workers), encoding="utf-8")
    log = work / "workers.log"
    common = ["--storage", storage, "--tracking-uri", tracking, "--data-dir", str(Path(a.data_dir).resolve())]
    started = time.monotonic()
    try:
        # --parallel 0: this command creates the study, waits for the workers, then finishes the parent run
        create = ["study", str(space), "--parallel", "0", "--heartbeat-interval", "2", "--grace-period", "8"]
        create += ["--no-report"]  # the soak writes its own report
        coordinator = _harness(*create, *common, log=log)
        name = "soak-random"
        while not _exists(storage, name):
            if coordinator.poll() is not None:
                raise RuntimeError(f"the study command exited {coordinator.returncode}; see {log}")
            time.sleep(0.5)
        workers = [_harness("worker", name, *common, log=log) for _ in range(a.workers)]
        kills: list[dict[str, float]] = []
        next_kill = time.monotonic() + rng.uniform(*a.kill_every)
        while any(w.poll() is None for w in workers):
            if time.monotonic() - started > a.timeout:
                raise TimeoutError(f"soak still running after {a.timeout} s; see {log}")
            done = _finished(storage, name)
            if time.monotonic() >= next_kill and done < 0.9 * a.trials:
                alive = [i for i, w in enumerate(workers) if w.poll() is None]
                victim = rng.choice(alive)
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                kills.append({"at_s": time.monotonic() - started, "finished_trials": done})
                workers[victim] = _harness("worker", name, *common, log=log)  # a replacement joins
                next_kill = time.monotonic() + rng.uniform(*a.kill_every)
            time.sleep(0.5)
        if coordinator.wait(timeout=max(60.0, a.timeout - (time.monotonic() - started))) != 0:
            print(f"the study command exited {coordinator.returncode}; see {log}", file=sys.stderr)
        wall = time.monotonic() - started
        subprocess.run([sys.executable, "-m", "harness", "runs", "clean", "--tracking-uri", tracking], check=False)
        rows, ok = _check(storage, tracking, name, a.trials, kills)
        _write(Path(a.out), command, a, rows, ok, kills, wall)
        print(f"wrote {a.out}: {'all invariants hold' if ok else 'INVARIANTS BROKEN'}")
        return 0 if ok else 1
    finally:
        for w in [*locals().get("workers", []), *([coordinator] if "coordinator" in locals() else [])]:
            if w.poll() is None:
                w.kill()
        for db in (storage, tracking):
            _database(db.rsplit("/", 1)[1], drop=True)


def _exists(storage: str, name: str) -> bool:
    import optuna

    from harness.studies import open_storage
    from harness.studies._storage import normalise_url

    try:
        study = optuna.load_study(study_name=name, storage=open_storage(normalise_url(storage)))
    except Exception:  # not created yet
        return False
    return "harness" in study.user_attrs  # its settings written: workers can join


def _finished(storage: str, name: str) -> int:
    import optuna

    from harness.studies import open_storage
    from harness.studies._storage import normalise_url

    try:
        study = optuna.load_study(study_name=name, storage=open_storage(normalise_url(storage)))
    except Exception:  # the storage is busy or the study not written yet: ask again next time
        return 0
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _check(
    storage: str, tracking: str, name: str, budget: int, kills: list[dict[str, float]]
) -> tuple[list[tuple[str, str, bool]], bool]:
    import optuna
    from mlflow.tracking import MlflowClient

    from harness.studies import open_storage
    from harness.studies._storage import normalise_url
    from harness.studies._trials import tally
    from harness.tracking import resolve_tracking_uri

    trials = optuna.load_study(study_name=name, storage=open_storage(normalise_url(storage))).trials
    t = tally(trials)
    states = collections.Counter(tr.state.name for tr in trials)
    client = MlflowClient(resolve_tracking_uri(tracking))
    exp = client.get_experiment_by_name("study/soak")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    run_states = collections.Counter(r.info.status for r in runs)
    by_id = {r.info.run_id: r for r in runs}

    def run_of(trial: optuna.trial.FrozenTrial) -> object | None:
        return by_id.get((trial.user_attrs.get("harness") or {}).get("mlflow_run_id", ""))

    complete = [tr for tr in trials if tr.state.name == "COMPLETE"]
    failed = [tr for tr in trials if tr.state.name == "FAIL"]
    one_run = all(
        (r := run_of(tr)) is not None
        and r.info.status == "FINISHED"  # type: ignore[attr-defined]
        and "final_test_accuracy" in r.data.metrics  # type: ignore[attr-defined]
        for tr in complete
    )
    kept = {(tr.user_attrs.get("harness") or {}).get("mlflow_run_id") for tr in complete}
    # a FAIL trial's run ended FAILED/KILLED, or it had finished and its result is kept by a COMPLETE copy
    fail_runs = all(
        (r := run_of(tr)) is None
        or r.info.status in ("FAILED", "KILLED")  # type: ignore[attr-defined]
        or (tr.number in t.superseded and r.info.run_id in kept)  # type: ignore[attr-defined]
        for tr in failed
    )
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    numbers = [tr.number for tr in trials]
    idle = states.get("RUNNING", 0) + states.get("WAITING", 0)
    rows = [
        ("Optuna trials by state", ", ".join(f"{k} {v}" for k, v in sorted(states.items())), True),
        ("no Optuna trial RUNNING or WAITING", str(idle), idle == 0),
        (
            f"trials the budget counts = {budget} (every trial but a FAIL queued again)",
            f"{t.used} ({t.complete} COMPLETE, {t.failed} FAIL for good, {len(t.superseded)} FAIL retried)",
            t.used == budget,
        ),
        ("MLflow runs by status", ", ".join(f"{k} {v}" for k, v in sorted(run_states.items())), True),
        ("no MLflow run RUNNING", str(run_states.get("RUNNING", 0)), run_states.get("RUNNING", 0) == 0),
        ("every COMPLETE trial: a FINISHED run with its objective", str(one_run), one_run),
        ("every FAIL trial: its run FAILED or KILLED, or finished and kept", str(fail_runs), fail_runs),
        ("one trial run per trial", f"{len(kids)} runs, {len(trials)} trials", len(kids) <= len(trials)),
        (
            "FAIL trials ≤ kills (nothing else fails)",
            f"{len(failed)} FAIL, {len(kills)} kills",
            len(failed) <= len(kills),
        ),
        ("trial numbers unique", str(len(numbers) == len(set(numbers))), len(numbers) == len(set(numbers))),
    ]
    return rows, all(ok for _, _, ok in rows)


def _write(
    out: Path,
    command: str,
    a: argparse.Namespace,
    rows: list[tuple[str, str, bool]],
    ok: bool,
    kills: list[dict[str, float]],
    wall: float,
) -> None:
    """The report as Markdown at ``out`` and as an HTML page beside it, one harness report document."""
    from harness.report import Document, Section, Table, md_text, render_markdown, write_html

    lead = [
        f"{a.trials} trials (MNIST cnn rung, smoke scale, random sampler) on PostgreSQL (Optuna storage and "
        f"MLflow tracking store, two fresh databases), {a.workers} `harness worker` processes; every "
        f"{a.kill_every[0]:g}-{a.kill_every[1]:g} s one of them, at random, was killed with SIGKILL and a new "
        "worker started in its place, until 90% of the budget was done. Heartbeat every 2 s, grace 8 s.",
        f"{len(kills)} kills; wall time {wall:.0f} s; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        f"Result: **{'every invariant holds' if ok else 'INVARIANTS BROKEN'}**.",
    ]
    table = Table(
        ["check", "found", "holds"],
        [[md_text(name), md_text(found), "yes" if good else "**no**"] for name, found, good in rows],
    )
    doc = Document(
        title="Soak: a study under random SIGKILLs",
        generated=f"Generated from the Optuna storage and the MLflow tracking store by `{command}`; "
        "do not edit by hand.",
        lead=lead,
        sections=[Section("Invariants", table=table)],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(doc), encoding="utf-8")
    write_html(out.with_suffix(".html"), doc)


if __name__ == "__main__":
    sys.exit(main())
