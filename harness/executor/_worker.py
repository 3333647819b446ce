"""One worker of a ``multiworker:N`` run: ``python -m harness.executor._worker JOB.json``.

Started by ``_multiworker.run_workers`` with ``TF_CONFIG`` set; the strategy comes
from it (``hardware.make_strategy``). The chief trains and logs into the run the
supervisor opened (the same code as a one-process run: ``Executor.train_and_log``);
the other workers train and log nothing. Any error ends the process non-zero with
its message on stderr, which the supervisor puts in the run's error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from harness.executor._multiworker import WorkerJob


def _config(d: dict[str, dict[str, Any]]) -> Any:
    from harness.config import config_from

    overrides: dict[str, Any] = {"task": d["task"]["name"], "dataset": d["data"]["name"], "model": d["model"]["name"]}
    for section, fields in d.items():
        overrides.update({f"{section}.{k}": v for k, v in fields.items() if k != "name"})
    return config_from(overrides, "worker job")


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from harness.executor._executor import Executor
    from harness.hardware import is_chief, tf_config
    from harness.tracking import RunHandle, Tracker
    from harness.train import train

    job = WorkerJob.read(Path(argv[0]))
    cluster = tf_config()
    assert cluster is not None, "a worker runs with TF_CONFIG set"
    index = int(cluster["task"]["index"])
    cfg = _config({**job.config, "run": {**job.config["run"], "backend": "multiworker"}})  # TF_CONFIG's cluster
    tracker = Tracker(os.environ.get("MLFLOW_TRACKING_URI"))
    executor = Executor(tracker, job.data_dir, job.prices, Path(job.tensorboard_dir))

    class Ready(keras.callbacks.Callback):
        """Touch ready-<index> after the first training execution: the cluster is connected."""

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            marker = Path(job.ready_dir) / f"ready-{index}"
            if not marker.exists():
                marker.touch()

    if is_chief(cluster):
        handle = RunHandle(tracker.client, job.run_id)
        executor.train_and_log(handle, job.experiment_id, job.name, cfg, job.group, callbacks=[Ready()])
    else:
        place = executor.placement(cfg.run.backend)
        train(cfg, executor.data(cfg), [], strategy=place.strategy, extra_callbacks=[Ready()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
