"""One worker of a ``multiworker:N`` run, or the one process of a run whose framework is not its
supervisor's: ``python -m harness.executor._worker JOB.json``.

Started by ``_multiworker.run_workers`` with ``KERAS_BACKEND`` set, and ``TF_CONFIG`` for a
multi-worker run, whose strategy comes from it (``hardware.make_strategy``). The chief trains and logs into the run the
supervisor opened (the same code as a one-process run: ``Executor.train_and_log``);
the other workers train and log nothing. Any error ends the process non-zero with
its message on stderr, which the supervisor puts in the run's error. A worker whose
supervisor is gone (killed with -9) ends the run KILLED if it is the chief, removes
the run's temporary folder and exits (``harness.lifeline``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import lifeline
from harness.executor._multiworker import WorkerJob
from harness.tracking import SWEPT_TAG, Tracker

GONE_EXIT = 3  # nobody waits for an orphan's exit code; distinct from an error's 1, for logs


def _config(d: dict[str, dict[str, Any]]) -> Any:
    from harness.config import config_from_sections

    return config_from_sections(d, "worker job")


def _on_supervisor_gone(job: WorkerJob, tracker: Tracker, chief: bool) -> Callable[[int], None]:
    def end(supervisor: int) -> None:
        try:
            if chief:  # the run is open in the store: only its chief answers for it now
                client = tracker.client
                if client.get_run(job.run_id).info.status == "RUNNING":
                    why = f"its supervisor (pid {supervisor}) was gone; the chief worker ended it KILLED"
                    client.set_tag(job.run_id, SWEPT_TAG, why)
                    client.set_terminated(job.run_id, status="KILLED")
        finally:
            shutil.rmtree(job.ready_dir, ignore_errors=True)  # the harness-workers-* folder: job, logs, markers
            os._exit(GONE_EXIT)  # now: the main thread may be stuck in a collective op with a dead peer

    return end


def main(argv: list[str]) -> int:
    from harness.hardware import is_chief, tf_config

    job = WorkerJob.read(Path(argv[0]))
    cluster = tf_config()  # None: the one process of a run on another framework than its supervisor's
    tracker = Tracker(os.environ.get("MLFLOW_TRACKING_URI"))
    # armed before TensorFlow loads (seconds): a supervisor that dies meanwhile is noticed too
    line = lifeline.watch_supervisor(_on_supervisor_gone(job, tracker, cluster is None or is_chief(cluster)))
    try:
        return _train(job, cluster, tracker)
    finally:
        if line is not None:
            line.hold_if_gone()  # an error from the folder vanishing: the lifeline is ending this process


def _train(job: WorkerJob, cluster: dict[str, Any] | None, tracker: Tracker) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from harness.executor._executor import Executor
    from harness.hardware import is_chief
    from harness.tracking import RunHandle
    from harness.train import train

    index = 0 if cluster is None else int(cluster["task"]["index"])
    if cluster is None:
        cfg = _config(job.config)
    else:
        cfg = _config({**job.config, "run": {**job.config["run"], "backend": "multiworker"}})  # TF_CONFIG's cluster
    executor = Executor(tracker, job.data_dir, job.prices, Path(job.tensorboard_dir))

    class Ready(keras.callbacks.Callback):
        """Touch ready-<index> after the first training execution: the cluster is connected."""

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            marker = Path(job.ready_dir) / f"ready-{index}"
            if not marker.exists():
                with contextlib.suppress(FileNotFoundError):  # the folder is gone with the supervisor
                    marker.touch()

    if cluster is None or is_chief(cluster):
        handle = RunHandle(tracker.client, job.run_id)
        executor.train_and_log(handle, job.experiment_id, job.name, cfg, job.group, callbacks=[Ready()])
    else:
        place = executor.placement(cfg.run.backend, cfg.run.framework)
        train(cfg, executor.data(cfg), [], strategy=place.strategy, extra_callbacks=[Ready()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
