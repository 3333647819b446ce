"""CLI of the study commands: ``study``, ``worker``, ``compare-samplers`` and ``report study``.

Kept apart from ``harness.cli`` so the study machinery owns its arguments.
Importing this module must stay cheap (no TensorFlow, no Optuna at import).
"""

from __future__ import annotations

import argparse

COMMANDS = ("study", "worker", "compare-samplers")


def add_commands(sub: argparse._SubParsersAction, report_sub: argparse._SubParsersAction) -> None:
    """Register the study subcommands on the main parser and ``report study`` on the report parser."""


def dispatch(args: argparse.Namespace, command_line: str) -> int:
    """Run a study command; ``args.command`` is one of COMMANDS or ``report`` with ``args.kind == 'study'``."""
    raise NotImplementedError(args.command)
