"""The one way harness starts and stops child processes: study workers, multi-worker runs, test servers.

Every child is started the same way:
- in a session of its own, so that a terminal's Ctrl-C reaches harness only, which decides what
  each child gets (a study forwards it once; a multi-worker run stops its workers);
- with ``lifeline.supervised_env``, so that it ends with this process however this one dies
  (``kill -9`` included), without anyone calling ``stop``;
- optionally with its output in a log file (stdin closed), else sharing this process's terminal.

Stopping is the same everywhere: a signal to each live child's process group, a grace period
(a second Ctrl-C meanwhile sends the signal again, which harness's own children take as "now"),
then SIGKILL for what is left. Leaving the ``with`` block stops what still runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from harness import interrupts, lifeline

POLL_S = 0.2


@dataclasses.dataclass
class Child:
    label: str
    proc: subprocess.Popen[bytes]
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def signal(self, sig: int) -> None:
        """``sig`` to the child's process group (its session: what it started itself too), if it still runs."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)


class Supervisor:
    """The children of one job; a context manager that stops them on the way out (``sig``, ``grace_s``, SIGKILL)."""

    def __init__(self, sig: int = signal.SIGTERM, grace_s: float = 5.0) -> None:
        self.sig, self.grace_s = sig, grace_s
        self.children: list[Child] = []
        self._logs: list[IO[bytes]] = []

    def start(
        self,
        label: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start ``argv`` as a supervised child (``env`` defaults to this process's environment)."""
        child_env = lifeline.supervised_env(os.environ if env is None else env)
        handle = open(log, "wb") if log is not None else None  # noqa: SIM115 (closed by close())
        if handle is not None:
            self._logs.append(handle)
        proc = subprocess.Popen(
            list(argv),
            env=child_env,
            stdout=handle,
            stderr=subprocess.STDOUT if handle is not None else None,
            stdin=subprocess.DEVNULL if handle is not None else None,
            start_new_session=True,
            cwd=cwd,
        )
        child = Child(label, proc, log)
        self.children.append(child)
        return child

    def codes(self) -> list[int | None]:
        return [c.poll() for c in self.children]

    def running(self) -> bool:
        return any(code is None for code in self.codes())

    def wait(self, tick: Callable[[], None] | None = None) -> dict[str, int]:
        """Until every child has ended (``tick`` runs meanwhile; Ctrl-C and SIGTERM raise here): exit codes by label."""
        while self.running():
            interrupts.check()
            if tick is not None:
                tick()
            time.sleep(POLL_S)
        return {c.label: c.proc.wait() for c in self.children}

    def stop(self, sig: int | None = None, grace_s: float | None = None) -> dict[str, int]:
        """``sig`` to every live child, up to ``grace_s`` for them to end, then SIGKILL: exit codes by label."""
        sig = self.sig if sig is None else sig
        grace_s = self.grace_s if grace_s is None else grace_s
        for child in self.children:
            child.signal(sig)
        deadline = time.monotonic() + grace_s
        while self.running() and time.monotonic() < deadline:
            try:
                time.sleep(POLL_S)
            except KeyboardInterrupt:  # a second Ctrl-C: the children's second signal ends them at once
                for child in self.children:
                    child.signal(sig)
        for child in self.children:
            child.signal(signal.SIGKILL)
        return {c.label: c.proc.wait() for c in self.children}

    def close(self) -> None:
        """Stop what still runs and close the log files."""
        try:
            if self.running():
                self.stop()
        finally:
            for handle in self._logs:
                handle.close()
            self._logs.clear()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
