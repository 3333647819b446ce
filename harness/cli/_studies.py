"""The study commands that run: ``study``, ``worker``, ``compare-samplers``, ``record-landscape``,
``report study`` and ``report replay`` (their arguments are in ``_parser``).

The requests (``StudyRequest``, ``CompareRequest``) check what they were given; this module only
turns arguments into requests. Importing it stays cheap: Optuna, MLflow and TensorFlow load once the
input is checked.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import _framework
from harness._secrets import redact_text
from harness.cli._parser import REAL_REPEATS, REPLAY_REPEATS

if TYPE_CHECKING:
    from harness.studies import StudyRequest

COMMANDS = ("study", "worker", "compare-samplers", "record-landscape")
REPORTS = ("study", "replay")  # `harness report KIND` of these commands


def _price_on(args: argparse.Namespace) -> Any:
    from harness.errors import UserError

    if args.hardware is None:
        if args.hardware_experiment:
            raise UserError("--hardware-experiment needs --hardware (the bench run to price the replay from)")
        return None
    from harness.report import PriceOn  # MLflow: only once the request is known to need it

    return PriceOn(None if args.hardware == "latest" else args.hardware, args.hardware_experiment)


def dispatch(args: argparse.Namespace, command_line: str) -> int:
    """Run a study command; ``args.command`` is one of COMMANDS or ``report`` with ``args.kind == 'study'``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the harness prints one line per trial
    if args.command == "study":
        return _study(args, command_line)
    if args.command == "worker":
        return _worker(args)
    if args.command == "compare-samplers":
        return _compare(args, command_line)
    if args.command == "record-landscape":
        return _record(args, command_line)
    if args.command == "report" and args.kind == "study":
        return _report(args.name, args.out, args.tracking_uri, command_line)
    if args.command == "report" and args.kind == "replay":
        return _report_replay(args, command_line)
    raise AssertionError(args.command)  # pragma: no cover - argparse rejects others


def _study_request(args: argparse.Namespace, command_line: str, **fields: Any) -> StudyRequest:
    """The StudyRequest both `study` and `compare-samplers` build from their shared options."""
    from harness.config import parse_cli_overrides
    from harness.studies import STORAGE_ENV, StudyRequest

    return StudyRequest(
        space_file=args.space,
        experiment=args.experiment,
        scale=args.scale,
        overrides=parse_cli_overrides(args.set),
        parallel=args.parallel,
        storage=args.storage or os.environ.get(STORAGE_ENV) or None,
        tracking_uri=args.tracking_uri,
        data_dir=args.data_dir,
        prices=args.prices,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        command=command_line,
        **fields,
    )


def _study(args: argparse.Namespace, command_line: str) -> int:
    from harness.studies import check_study

    request = _study_request(
        args,
        command_line,
        sampler=args.sampler,
        seed=args.seed,
        pruner=args.pruner,
        trials=args.trials,
        max_failed=args.max_failed,
        name=args.name,
    )
    checked = check_study(request)
    # the input is checked: now MLflow, the storage and Keras, on the trials' framework (their workers inherit it)
    _framework.start(args.verbose, [checked.resolved.base.run.framework])
    from harness.studies import run_study

    ctx = run_study(request, _print)
    if args.no_report:
        return 0
    return _report(ctx.name, args.out, ctx.tracker.uri, f"harness report study {ctx.name}")


def _worker(args: argparse.Namespace) -> int:
    from harness import lifeline
    from harness.errors import UserError
    from harness.studies import STORAGE_ENV, TRACKING_ENV

    def supervisor_gone(pid: int) -> None:
        # a `--parallel K` worker whose study process was killed unseen: stop as Ctrl-C does (the trial's
        # run ends KILLED, the trial is queued again), so that resuming the study loses nothing
        _print(f"[{args.label}] the study process (pid {pid}) is gone: stopping")
        lifeline.interrupt_self()

    lifeline.watch_supervisor(supervisor_gone)
    storage = args.storage or os.environ.get(STORAGE_ENV)
    if not storage:
        raise UserError(f"worker needs the study's storage: --storage URL or ${STORAGE_ENV}, but got neither")
    _framework.start(args.verbose)
    from harness.studies import run_attached_worker

    return run_attached_worker(
        args.study,
        storage,
        args.tracking_uri or os.environ.get(TRACKING_ENV),
        args.data_dir,
        args.prices,
        label=args.label,
        finalize_study=not args.no_finalize,
        progress=_print,
    )


def _compare(args: argparse.Namespace, command_line: str) -> int:
    from harness.errors import UserError
    from harness.studies import CompareRequest, parse_samplers, plan_budget

    repeats = args.repeats if args.repeats is not None else (REPLAY_REPEATS if args.replay else REAL_REPEATS)
    if args.replay and args.backends:
        raise UserError("--replay runs on the landscape's recorded backend; drop --backends")
    if args.hardware is not None and not args.replay:
        raise UserError("--hardware prices a replay (--replay LANDSCAPE); a real comparison runs on --backends")
    price_on = _price_on(args)
    request = CompareRequest(
        study=_study_request(args, command_line, plots=False),  # plots: one set per study is noise here
        samplers=parse_samplers(args.samplers),
        repeats=repeats,
        budget=args.budget,
        target=args.target,
        out_dir=Path(args.out),
        backends=_backends(args.backends),
    )
    plan_budget(request)  # every sampler against the space: bad input answers before MLflow loads
    if args.replay:  # no training: TensorFlow is not needed
        from harness.studies import ReplayRequest, run_replay

        run_replay(ReplayRequest(request, args.replay, price_on), _print)
        return 0
    _framework.start(args.verbose, _frameworks(request.study))
    from harness.studies import run_compare

    run_compare(request, _print)
    return 0


def _record(args: argparse.Namespace, command_line: str) -> int:
    from harness.errors import UserError
    from harness.studies import plan_landscape, record_landscape

    if args.parallel < 1:
        raise UserError(f"--parallel must be >= 1 for record-landscape, but got {args.parallel}")
    request = plan_landscape(_study_request(args, command_line, plots=False), args.points, args.seed, args.name)
    _framework.start(args.verbose, _frameworks(request))
    ctx = record_landscape(request, _print)
    print(f"replay it: harness compare-samplers {args.space} --replay {ctx.name} --repeats {REPLAY_REPEATS}")
    return 0


def _frameworks(request: StudyRequest) -> list[str]:
    """The framework the study's trials train on (a searched ``run.framework`` trains the others in children)."""
    from harness.studies import check_study

    return [check_study(request).resolved.base.run.framework]


def _backends(text: str | None) -> tuple[str, ...]:
    from harness.config import parse_backends
    from harness.errors import UserError

    if text is None:
        return ()
    names = parse_backends(text)
    local = [n for n in names if n.startswith("multiworker")]
    if local:
        raise UserError(f"--backends: studies cannot run on {local[0]!r} yet; use cpu, gpu, multi-gpu or tpu")
    return names


def _report(name: str, out: str, tracking_uri: str | None, command_line: str) -> int:
    from harness.report import display_study, study_report, write_study_report
    from harness.tracking import Tracker

    report = study_report(Tracker(tracking_uri), name)
    print(display_study(report).to_string(index=False))
    if report.best:
        print(f"best: trial {report.best['trial']}, objective {report.best['objective']:.4f}")
    md, csv, page = write_study_report(report, Path(out), command_line)
    print(f"wrote {md}, {csv} and {page}")
    return 0


def _report_replay(args: argparse.Namespace, command_line: str) -> int:
    from harness.report import display_compare, replay_report, write_replay_report
    from harness.tracking import Tracker

    report = replay_report(Tracker(args.tracking_uri), args.run, price_on=_price_on(args))
    print(display_compare(report.comparison).to_string(index=False))
    if report.pricing is not None:
        print(report.pricing.table.to_string(index=False))
    files = write_replay_report(report, Path(args.out), command_line)
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def _print(line: str) -> None:
    print(redact_text(line), flush=True)  # a trial's error or a driver's message may quote a URI
