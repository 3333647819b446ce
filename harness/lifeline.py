"""Child processes that end with their supervisor, however it dies.

A supervisor killed with ``kill -9`` (or by the out-of-memory killer) cannot stop the
processes it started, and they run in sessions of their own (so that a terminal's Ctrl-C
reaches the supervisor only), so a process-group kill misses them too. So every spawner
(``multiworker:N`` workers, ``--parallel K`` study workers) starts its children with
``supervised_env``, which names it in ``$HARNESS_SUPERVISOR_PID``, and each child calls
``watch_supervisor(on_gone)`` first thing, from its main thread:

- on Linux the kernel signals the child when its parent dies (``prctl(PR_SET_PDEATHSIG)``,
  armed right after start; a parent that died before that is caught by comparing
  ``os.getppid()`` with the expected pid once armed);
- elsewhere a daemon thread polls ``os.getppid()``.

Either way ``on_gone(supervisor_pid)`` runs once, on a thread of its own: the main thread may be
blocked in TensorFlow (a collective op waiting for a peer that died too) and never come back to
Python. The signal reaches that thread through ``signal.set_wakeup_fd``, which CPython's C-level
handler writes to at once, whichever thread the kernel interrupted.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping

SUPERVISOR_ENV = "HARNESS_SUPERVISOR_PID"
POLL_S = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_DEATH_SIGNAL = getattr(signal, "SIGUSR2", None)  # unused by harness, TensorFlow and MLflow: it means only this


def supervised_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a child that must end with this process."""
    return {**env, SUPERVISOR_ENV: str(os.getpid())}


@dataclasses.dataclass
class Lifeline:
    """What ``watch_supervisor`` armed: ``gone`` is set before ``on_gone`` runs, ``done`` after it returns."""

    supervisor: int
    method: str  # "signal" (PR_SET_PDEATHSIG) or "poll"
    gone: threading.Event = dataclasses.field(default_factory=threading.Event)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)

    def hold_if_gone(self, timeout_s: float = 60.0) -> None:
        """For a main thread about to end: while ``on_gone`` cleans up (or is about to), wait for it
        rather than end the process under it."""
        if self.gone.is_set() or os.getppid() != self.supervisor:
            self.done.wait(timeout_s)


def watch_supervisor(on_gone: Callable[[int], None], use_signal: bool | None = None) -> Lifeline | None:
    """Run ``on_gone(pid)`` once when the supervisor named in the environment is gone; None when not
    started by one (a ``harness worker`` started by hand). ``use_signal``: None uses the parent-death
    signal where the OS has one; False polls (what other systems do)."""
    raw = os.environ.pop(SUPERVISOR_ENV, "")  # not inherited by this process's own children
    if not raw.isdigit():
        return None
    line = Lifeline(int(raw), "poll")
    fired = threading.Lock()

    def fire() -> None:
        if not fired.acquire(blocking=False):
            return
        line.gone.set()
        try:
            on_gone(line.supervisor)
        finally:
            line.done.set()

    wakeup = _arm_death_signal() if use_signal is not False else None
    if wakeup is not None:
        line.method = "signal"
        thread = threading.Thread(target=_wait_for_signal, args=(wakeup, line.supervisor, fire))
    else:
        thread = threading.Thread(target=_poll, args=(line.supervisor, fire))
    thread.name, thread.daemon = "harness-lifeline", True
    thread.start()
    return line


def _arm_death_signal() -> int | None:
    """PR_SET_PDEATHSIG with a Python handler and a wakeup pipe; the pipe's read end, or None where
    that is not possible (not Linux, not the main thread, the wakeup fd already taken)."""
    if not sys.platform.startswith("linux") or _DEATH_SIGNAL is None:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)  # set_wakeup_fd requires it
        signal.signal(_DEATH_SIGNAL, lambda signum, frame: None)  # replaces the default action (terminate)
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except (OSError, AttributeError, ValueError):  # ValueError: not the main thread
        return None
    if previous != -1:  # someone else's (an event loop): leave it theirs and poll instead
        signal.set_wakeup_fd(previous)
        return None
    if libc.prctl(_PR_SET_PDEATHSIG, int(_DEATH_SIGNAL), 0, 0, 0) != 0:
        signal.set_wakeup_fd(-1)
        return None
    return read_end


def _wait_for_signal(read_end: int, supervisor: int, fire: Callable[[], None]) -> None:
    while os.getppid() == supervisor:  # the parent died before prctl: no signal will ever come
        try:
            data = os.read(read_end, 64)  # one byte per signal caught, whichever thread caught it
        except OSError:  # the pipe is unusable: fall back to watching the parent pid
            _poll(supervisor, fire)
            return
        # the signal also comes when the supervisor's thread that started us ends (the process may live)
        if int(_DEATH_SIGNAL or 0) in data and os.getppid() != supervisor:
            break
    fire()


def _poll(supervisor: int, fire: Callable[[], None]) -> None:
    while os.getppid() == supervisor:  # an orphan is adopted by init (or a subreaper): its parent pid changes
        time.sleep(POLL_S)
    fire()


def interrupt_self(grace_s: float = 60.0) -> None:
    """For ``on_gone`` of a process that stops cooperatively (``harness.interrupts``): SIGTERM it, then a
    second SIGTERM (which raises at once) after ``grace_s``, then exit after as long again."""
    for _ in range(2):
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
    os._exit(128 + int(signal.SIGTERM))
