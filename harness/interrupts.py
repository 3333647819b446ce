"""Ctrl-C and SIGTERM, handled cooperatively.

Raising from a signal handler can land inside a weakref callback or ``__del__``
where Python ignores it, and the signal is lost. So the first signal only sets
a flag; training checks it after every step execution (and drivers between
runs) and raises ``KeyboardInterrupt`` from ordinary code, which ends the MLflow
runs KILLED. A second signal raises at once, for a user who will not wait.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

_requested: int | None = None


def _handler(signum: int, frame: FrameType | None) -> None:
    global _requested
    if _requested is not None:
        raise KeyboardInterrupt(f"signal {signum} (second)")
    _requested = signum


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a stop was requested."""
    if _requested is not None:
        raise KeyboardInterrupt(f"signal {_requested}")


@contextlib.contextmanager
def graceful() -> Iterator[None]:
    """Install the handlers for SIGINT and SIGTERM for the duration of a command."""
    global _requested
    _requested = None
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _requested = None
