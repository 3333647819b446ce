"""Process supervision: ``--parallel K`` worker processes (one GPU each), and waiting for remote workers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from harness import interrupts
from harness._secrets import hides_secret
from harness.errors import UserError
from harness.procs import Supervisor
from harness.studies._context import StudyContext
from harness.studies._storage import STORAGE_ENV, TRACKING_ENV, redact
from harness.studies._trials import fail_orphans, fail_stale, tally

Progress = Callable[[str], None]


def gpu_ids() -> list[str]:
    """GPUs to pin workers to: ``$CUDA_VISIBLE_DEVICES``, else what ``nvidia-smi`` lists (no TensorFlow)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in (x.strip() for x in visible.split(",")) if g and g != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def worker_command(ctx: StudyContext, label: str, finalize_study: bool = False) -> list[str]:
    """The argv of a worker process: no storage or tracking URI (they may hold a password; see worker_env)."""
    cmd = [sys.executable, "-m", "harness", "worker", ctx.name, "--label", label]
    if not finalize_study:
        cmd.append("--no-finalize")
    return cmd


def worker_env(ctx: StudyContext) -> dict[str, str]:
    """The study's storage and tracking URIs, unredacted, for a worker process's environment."""
    return {STORAGE_ENV: ctx.url, TRACKING_ENV: ctx.tracker.uri}


def run_processes(
    ctx: StudyContext,
    k: int,
    progress: Progress,
    data_dir: str | None,
    prices: str | None,
    tick: Callable[[], None] | None = None,
) -> None:
    """K ``harness worker`` processes, one GPU each when there are GPUs; Ctrl-C is forwarded once.
    ``tick`` runs while they work (the study's display reads the study)."""
    gpus = gpu_ids()
    with Supervisor() as workers:
        for i in range(k):
            label = f"w{i + 1}/{k}"
            env = {**os.environ, **worker_env(ctx)}
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
            elif "TF_NUM_INTRAOP_THREADS" not in env:  # CPU only: share the cores instead of oversubscribing them
                env["TF_NUM_INTRAOP_THREADS"] = str(max(1, (os.cpu_count() or 1) // k))
            cmd = worker_command(ctx, label)
            if data_dir:
                cmd += ["--data-dir", data_dir]
            if prices:
                cmd += ["--prices", prices]
            workers.start(label, cmd, env)  # Ctrl-C reaches this process only, which forwards it exactly once
        progress(
            f"{k} worker processes"
            + (f", GPUs {', '.join(gpus[i % len(gpus)] for i in range(k))}" if gpus else "")
            + f": {' '.join(worker_command(ctx, 'wK/K'))} (storage and tracking URI in ${STORAGE_ENV}, ${TRACKING_ENV})"
        )
        stopped: BaseException | None = None
        try:
            codes = workers.wait(tick)
        except BaseException as exc:  # Ctrl-C, or ``tick`` failed: the workers end their trials KILLED first
            stopped = exc
            codes = workers.stop(signal.SIGINT, grace_s=300)
    if stopped is not None and not isinstance(stopped, KeyboardInterrupt):
        raise stopped
    if stopped is not None or 130 in codes.values():
        raise KeyboardInterrupt("worker interrupted")
    bad = {label: c for label, c in codes.items() if c not in (0, 1)}
    if bad:
        raise UserError(f"worker(s) {', '.join(f'{lb} (exit {c})' for lb, c in bad.items())} stopped; see above")


def wait_for_workers(ctx: StudyContext, progress: Progress, tick: Callable[[], None] | None = None) -> None:
    """``--parallel 0``: no local worker; wait for workers elsewhere to spend the budget (``tick`` each second)."""
    if hides_secret(ctx.url):  # the real URL has a password: tell the user where to put it, not what it is
        progress(f"waiting for workers: {STORAGE_ENV}=<the storage URL> harness worker {ctx.name}")
    else:
        progress(f"waiting for workers: harness worker {ctx.name} --storage {redact(ctx.url)}")
    while True:
        interrupts.check()
        fail_stale(ctx.study)
        budget = ctx.current_budget()
        if fail_orphans(ctx, ctx.study.get_trials(deepcopy=False)):
            continue
        t = tally(ctx.study.get_trials(deepcopy=False))
        if (budget.max_failed is not None and t.failed >= budget.max_failed) or (
            t.used >= budget.max_trials and t.running == 0 and t.waiting == 0
        ):
            return
        if tick is not None:
            tick()
        time.sleep(1.0)
