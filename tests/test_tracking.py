"""MLflow tracking: store resolution, and runs that always end in a final state."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from harness.tracking import JsonlSink, RunKilled, TensorBoardSink, Tracker, resolve_tracking_uri


def test_default_store_is_sqlite_in_the_working_dir(workdir: Path) -> None:
    assert resolve_tracking_uri(None) == f"sqlite:///{workdir / 'mlflow.db'}"


def test_env_and_option_override_the_default(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5999"
    assert resolve_tracking_uri("sqlite:///other.db") == f"sqlite:///{workdir / 'other.db'}"


@pytest.fixture
def tracker(workdir: Path) -> Tracker:
    return Tracker()


def _status(tracker: Tracker, run_id: str) -> str:
    return str(tracker.client.get_run(run_id).info.status)


def test_artifacts_live_beside_the_sqlite_store(tracker: Tracker, workdir: Path) -> None:
    exp = tracker.client.get_experiment(tracker.experiment_id("ladder/x"))
    assert exp.artifact_location == (workdir / "mlartifacts" / "ladder-x").as_uri()
    assert tracker.experiment_id("ladder/x") == exp.experiment_id  # found, not created twice


def test_sqlite_store_runs_in_wal_mode_and_is_created_only_when_used(workdir: Path) -> None:
    tracker = Tracker()
    assert not (workdir / "mlflow.db").exists()  # nothing written before the first call
    tracker.experiment_id("wal")
    with contextlib.closing(sqlite3.connect(workdir / "mlflow.db")) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert Tracker().experiment_id("wal") == tracker.experiment_id("wal")  # reopened as it is


def test_run_ends_finished_with_params_metrics_artifacts(tracker: Tracker) -> None:
    exp = tracker.experiment_id("t")
    with tracker.run(exp, "ok", {"k": "v"}) as run:
        run.log_params({"lr0": 0.1})
        run.log_metrics(10, {"test_accuracy": 0.5, "nan_is_dropped": float("nan")})
        run.log_text("hello", "notes/hello.txt")
    got = tracker.client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"lr0": "0.1"} and got.data.tags["k"] == "v"
    assert got.data.metrics == {"test_accuracy": 0.5}
    assert [a.path for a in tracker.client.list_artifacts(run.run_id, "notes")] == ["notes/hello.txt"]


def test_staged_params_and_tags_go_with_the_next_write_and_are_written_when_the_run_ends(tracker: Tracker) -> None:
    exp = tracker.experiment_id("t")
    with tracker.run(exp, "staged") as run:
        run.stage(params={"tuned.lr0": 0.1}, tags={"state": "x", "url": "postgresql://u:secret@h/db"})
        assert tracker.client.get_run(run.run_id).data.params == {}  # held
        # past MLflow's per-call limits (100 params, 100 tags, 1,000 entities): split, nothing lost
        run.log_params({f"p{i}": i for i in range(120)})
        run.stage(tags={f"t{i}": i for i in range(110)})
        run.log_metrics(3, {f"m{i}": float(i) for i in range(1001)})
        got = tracker.client.get_run(run.run_id).data
        assert len(got.params) == 121 and got.params["tuned.lr0"] == "0.1"
        assert got.tags["state"] == "x" and "secret" not in got.tags["url"] and got.tags["t109"] == "109"
        assert len(got.metrics) == 1001
        run.stage(params={"late": "yes"})
    assert tracker.client.get_run(run.run_id).data.params["late"] == "yes"  # the run's end wrote it
    with pytest.raises(ValueError), tracker.run(exp, "failed") as failed:
        failed.stage(tags={"optuna.state": "FAIL"})
        raise ValueError("boom")
    got_failed = tracker.client.get_run(failed.run_id)
    assert got_failed.info.status == "FAILED" and got_failed.data.tags["optuna.state"] == "FAIL"


@pytest.mark.parametrize(
    ("exc", "status"),
    [(ValueError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED"), (RunKilled("pruned"), "KILLED")],
)
def test_run_never_stays_running(tracker: Tracker, exc: BaseException, status: str) -> None:
    exp = tracker.experiment_id("t")
    with (
        pytest.raises(type(exc)),
        tracker.run(exp, "parent") as parent,
        tracker.run(exp, "child", parent=parent) as child,
    ):
        raise exc
    assert _status(tracker, parent.run_id) == status
    assert _status(tracker, child.run_id) == status
    assert tracker.client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent.run_id
    if status == "FAILED":
        assert tracker.client.get_run(child.run_id).data.tags["error"] == "ValueError: boom"


def test_file_sinks_write_jsonl_and_tensorboard_events(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    jsonl, tb = JsonlSink(tmp_path / "m.jsonl"), TensorBoardSink(tmp_path / "tb")
    for step in (10, 20):
        for sink in (jsonl, tb):
            sink.log_metrics(step, {"train_accuracy": step / 100, "test_accuracy": step / 50, "lr": 0.1})
    jsonl.close()
    tb.close()
    assert (tmp_path / "m.jsonl").read_text().count("\n") == 2
    test = EventAccumulator(str(tmp_path / "tb" / "test"), size_guidance={"tensors": 0}).Reload()
    values = [(e.step, float(_scalar(e))) for e in test.Tensors("accuracy")]
    assert values == [(10, pytest.approx(0.2)), (20, pytest.approx(0.4))]
    train = EventAccumulator(str(tmp_path / "tb" / "train"), size_guidance={"tensors": 0}).Reload()
    assert {"accuracy", "lr"} <= set(train.Tags()["tensors"])


def _scalar(event: object) -> float:
    import tensorflow as tf

    return float(tf.make_ndarray(event.tensor_proto))  # type: ignore[attr-defined]


def test_progress_sink_prints_plain_lines_off_a_terminal_at_most_every_interval() -> None:
    import io

    from harness.tracking import ProgressSink

    out = io.StringIO()
    sink = ProgressSink("[2/8] 02-dense-s0", 400, "test_accuracy", out=out, every_s=3600)
    for step in (100, 200, 300, 400):
        sink.log_metrics(step, {"test_accuracy": 0.5 + step / 1000, "wall_s": step / 100})
    sink.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the first evaluation, then the last one: none in between within the interval
    assert "[2/8] 02-dense-s0: step 100/400  accuracy 60.00% (best 60.00%)  1 s, about 3 s left" in lines[0]
    assert "step 400/400  accuracy 90.00% (best 90.00%)  4 s" in lines[1] and "left" not in lines[1]


def test_progress_sink_live_bar_keeps_the_best_of_a_minimised_metric() -> None:
    import io

    from harness.tracking import ProgressSink

    sink = ProgressSink("trial 3", 30, "test_loss", maximize=False, percent=False, out=io.StringIO(), live=True)
    for step, loss in ((10, 0.5), (20, 0.3), (30, 0.4)):
        sink.log_metrics(step, {"test_loss": loss, "wall_s": float(step)})
    assert sink.best == 0.3
    sink.close()
    sink.close()  # closing twice is harmless (the executor closes every sink, also after a failure)


def test_trial_progress_prints_one_line_per_ended_trial_off_a_terminal() -> None:
    import io

    from harness.tracking import TrialProgress

    out = io.StringIO()
    shown = TrialProgress("study s", 5, done=1, best=(0, 0.9), out=out)  # resumed: trial 0 ended before
    shown.update(2, [(1, "COMPLETE", 0.95)], (1, 0.95))
    shown.update(4, [(2, "PRUNED", 0.1), (3, "FAIL", None)], (1, 0.95))  # two ended between two looks
    shown.update(5, [(4, "COMPLETE", 0.5)], (1, 0.95))
    shown.close()
    lines = out.getvalue().splitlines()
    heads = [
        "trials 2/5: #1 COMPLETE 0.9500",
        "trials 3/5: #2 PRUNED 0.1000",
        "trials 4/5: #3 FAIL",
        "trials 5/5: #4 COMPLETE 0.5000",
    ]
    assert [line.split("  ")[0] for line in lines] == heads
    assert all("  best 0.9500 (#1)  " in line for line in lines)
    assert all(line.endswith(" s left") for line in lines[:3]) and lines[3].endswith(" s")  # none left at 5/5
    with pytest.raises(ValueError, match="total=0"):
        TrialProgress("study s", 0)


@pytest.mark.slow
def test_trial_progress_on_a_pseudo_terminal_draws_both_bars_and_keeps_the_final_state() -> None:
    import os
    import subprocess
    import sys
    import textwrap

    # three trials: each a step bar joining the study's display, the worker's line printed through rich
    script = textwrap.dedent(
        """
        import time
        from harness.tracking import TrialProgress
        shown = TrialProgress("study demo", 3)
        for n, value in enumerate((0.5, 0.8, 0.7)):
            bar = shown.step_sink(f"trial-{n:03d}", 20, "test_accuracy")
            for step in (10, 20):
                bar.log_metrics(step, {"test_accuracy": value, "wall_s": step / 10})
                time.sleep(0.25)  # rich redraws 10 times a second
            bar.close()
            print(f"worker line {n}")
            shown.update(n + 1, [(n, "COMPLETE", value)], (1, 0.8) if n else (0, 0.5))
        shown.close()
        """
    )
    leader, follower = os.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert text.startswith("\x1b[?25l") and text.endswith("\x1b[?25h")  # cursor hidden while live, then back
    assert "\x1b[1A\x1b[2K" in text  # redrawn in place: cursor up, erase line
    assert "trial-001" in text and "accuracy 80.00% (best 80.00%)" in text  # the step bar, inside the display
    assert "worker line 2" in text and "Traceback" not in text
    final = text.rsplit("\x1b[2K", 1)[1]  # the last frame: the study at 3/3, the step bar gone
    plain = final.replace("\x1b[0m", "")
    assert "study demo" in plain and "3/3" in plain and "best 0.8000 (#1)" in plain and "trial-002" not in plain
