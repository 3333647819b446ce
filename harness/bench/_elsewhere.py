"""The measurements of ``harness bench hardware`` on one framework other than its own process's:
``python -m harness.bench._elsewhere JOB.json``, started by ``_hardware.run_hardware`` with
``KERAS_BACKEND`` set (Keras has one framework per process) and the tracking URI in
``MLFLOW_TRACKING_URI``. It measures into the parent run the supervisor opened, with the same code
(``_hardware.measure``), and prints the same progress lines. Ctrl-C or SIGTERM from the supervisor ends
the run being measured KILLED; a supervisor that dies unseen (``kill -9``) stops it the same way
(``harness.lifeline``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from harness import _framework, interrupts, lifeline
from harness._secrets import redact_text
from harness.errors import HarnessError


def main(argv: list[str]) -> int:
    line = lifeline.watch_supervisor(lambda supervisor: lifeline.interrupt_self())
    _framework.start()  # KERAS_BACKEND: the framework this process measures
    from harness.bench._hardware import Bench, ElsewhereJob, HardwareRequest, measure, plan
    from harness.executor import Executor
    from harness.tracking import RunHandle, Tracker

    job = ElsewhereJob(**json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    request = HardwareRequest.from_json(job.request)
    tracker = Tracker(os.environ.get("MLFLOW_TRACKING_URI"))
    executor = Executor(tracker, request.data_dir, request.prices, log_models=False)
    bench = Bench(executor, job.experiment_id, RunHandle(tracker.client, job.parent_run_id), request)
    try:
        with interrupts.graceful():
            measure(bench, plan(request), job.done, job.total)
    except KeyboardInterrupt:
        return 130  # the run being measured ended KILLED; the supervisor says why
    except HarnessError as exc:  # a run that failed, or input: the message, never a traceback
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    finally:
        if line is not None:
            line.hold_if_gone()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
