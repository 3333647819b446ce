"""Command line: ladders, studies, reports, detection scans, UIs and benchmarks.

Exit codes: 0 success, 1 a run failed, 2 bad input (the message says which
file, key or value), 130 interrupted (Ctrl-C or SIGTERM).

``_parser``: every command's arguments; ``_main``: the environment, the exit codes and the dispatch;
``_commands``: the commands that run something, ``_studies`` the study commands (their requests check
the input); ``_servers``: ``ui`` and ``tensorboard``, which hand the process over to a server.
"""

from harness.cli._main import main
from harness.cli._parser import build_parser

__all__ = ["build_parser", "main"]
