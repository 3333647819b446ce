"""``harness``: the environment every command runs in, the exit codes, and which function runs a command."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import _framework, interrupts
from harness._paths import check_folder
from harness._secrets import redact_argv, redact_text
from harness._sqlite import LOCK_TIMEOUT_ENV, is_lock_error
from harness.cli import _commands, _servers
from harness.cli._parser import build_parser
from harness.errors import HarnessError, RunFailed, UserError


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if args.verbose else "3")  # before TensorFlow is imported
    # No usage data sent in the background (it would also share the CPU with measured runs);
    # MLFLOW_DISABLE_TELEMETRY=false opts back in.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs and tables
    # A tracking server that is down fails in bounded time (about 90 s: 4 tries of at most 20 s, 1+2+4 s
    # apart) instead of MLflow's 7 retries of 120 s with doubling back-off; the variables still override.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    # one model per rung retraces by design; TensorFlow's retracing warning is noise here
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not "Creating initial database tables"
    # recorded in tags and reports: a password in --storage or --tracking-uri is masked
    command_line = "harness " + shlex.join(redact_argv(sys.argv[1:] if argv is None else argv))
    try:
        # SIGTERM ends runs KILLED, like Ctrl-C, instead of leaving them RUNNING
        with interrupts.graceful():
            # each command starts TensorFlow itself (harness._framework), once its input is checked
            return _dispatch(args, command_line)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the current run and its parent are marked KILLED (a parent run that had nothing "
            "in it yet is deleted); finished runs are kept",
            file=sys.stderr,
        )
        return 130
    except UserError as exc:  # messages may quote a URI or a driver's error about one
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"run failed: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except HarnessError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # the system refused: no space, no permission, a lost connection
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{redact_text(exc.strerror or str(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if is_lock_error(exc):  # MLflow or Optuna waited on one statement and gave up: not a bug, not bad input
            print(
                "error: a SQLite store stayed locked by another process for longer than this command waits "
                f"(${LOCK_TIMEOUT_ENV}); try again when it is done",
                file=sys.stderr,
            )
            return 1
        if not isinstance(exc, MlflowException):
            raise  # a bug in harness: its traceback is what a report needs
        # the store failed under us (server down, disk full): runs already ended stay as they are
        first = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
        print(f"error: the tracking store failed: {redact_text(first)}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, command_line: str) -> int:
    if isinstance(getattr(args, "out", None), str):  # every --out is a folder: refuse a file before any work
        check_folder(args.out, "--out")
    if args.command == "ladders":
        from harness.ladders import builtin_ladders

        for name, title in builtin_ladders().items():
            print(f"{name:<12} {title}")
        return 0
    if args.command == "backends":
        from harness.hardware import load_prices, probe, render

        prices = load_prices(args.prices)
        _framework.start(args.verbose)
        print(render(probe(prices)))
        return 0
    if args.command == "ladder":
        return _commands.ladder(args, command_line)
    if args.command == "runs":
        return _commands.runs_clean(args)
    from harness.cli import _studies

    if args.command in _studies.COMMANDS or (args.command == "report" and args.kind in _studies.REPORTS):
        return _studies.dispatch(args, command_line)
    if args.command == "report" and args.kind == "bench":
        return _commands.report_bench(args)
    if args.command == "report" and args.kind == "bench-hardware":
        return _commands.report_hardware(args.run, args.out, args.tracking_uri, command_line)
    if args.command == "report":
        return _commands.report_ladder(
            args.ladder,
            args.run,
            args.scale,
            args.out,
            args.tracking_uri,
            command_line,
            tuple(args.also),
            args.rungs,
            args.name,
        )
    if args.command == "detect-scan":
        return _commands.detect_scan(args, command_line)
    if args.command == "detect-boxes":
        return _commands.detect_boxes(args, command_line)
    if args.command == "ui":
        _servers.ui(args.tracking_uri, args.host, args.port, args.workers)
    if args.command == "tensorboard":
        _servers.tensorboard(args.logdir, args.host, args.port)
    if args.command == "bench":  # its compile column times a cold compile on every framework alike
        os.environ[_framework.JAX_CACHE_ENV] = "off"
    if args.command == "bench" and args.suite == "hardware":
        return _commands.bench_hardware(args, command_line)
    if args.command == "bench":
        from harness.bench import parse_sections, parse_study_trials

        only = parse_sections(args.only) if args.only else None
        study_trials = parse_study_trials(args.study_trials)
        _framework.start(args.verbose)
        from harness.bench import run_benchmarks

        out = Path(args.out)
        run_benchmarks(data_dir=args.data_dir, out_dir=out, quick=args.quick, only=only, study_trials=study_trials)
        return 0
    raise AssertionError(args.command)  # pragma: no cover - argparse rejects others
