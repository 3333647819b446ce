"""CLI of the study commands: ``study``, ``worker``, ``compare-samplers`` and ``report study``.

Kept apart from ``harness.cli`` so the study machinery owns its arguments.
Importing this module must stay cheap (no TensorFlow, no Optuna at import).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import _tensorflow
from harness._secrets import redact_text

if TYPE_CHECKING:
    from harness.studies._request import StudyRequest

COMMANDS = ("study", "worker", "compare-samplers", "record-landscape")
REPORTS = ("study", "replay")  # `harness report KIND` of these commands
# epilogs keep their lines: one example command per line (tests parse each with the real parser)
RAW = argparse.RawDescriptionHelpFormatter
SAMPLER_NAMES = ("grid", "random", "tpe", "gp", "cmaes")
PRUNER_NAMES = ("none", "median", "hyperband")
SCALES = ("smoke", "standard", "full")
REAL_REPEATS = 10  # the HPO literature's minimum (JAHS-Bench-201: at least 10 seeds)
REPLAY_REPEATS = 200


def examples(*lines: str) -> str:
    """An epilog of example command lines, one per line; a ``#`` starts a comment."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)",
    )


def _space_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", help="search space file: harness YAML or a Cloud ML Engine hptune config")
    p.add_argument(
        "--experiment",
        metavar="LADDER:RUNG",
        help="the ladder rung to tune, e.g. mnist:cnn (overrides the file's); required for a Cloud ML Engine "
        "file, which does not say: `harness ladders` lists the ladders, the error lists every rung",
    )
    p.add_argument(
        "--scale", choices=SCALES, help="ladder scale of the tuned rung (default: the file's, else standard)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a config key for every trial (repeatable), e.g. --set iterations=1500",
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage: journal:PATH (a journal file) or any SQLAlchemy URL (default: $HARNESS_STORAGE, "
        "which keeps a password out of the process list, else the journal file optuna.journal beside the MLflow "
        "store); postgresql://host/db to share a study between machines",
    )
    p.add_argument("--data-dir", help="dataset directory (default: $HARNESS_DATA_DIR)")
    p.add_argument("--prices", help="price table YAML (default: $HARNESS_PRICES or the shipped one)")
    p.add_argument(
        "--heartbeat-interval",
        type=int,
        default=10,
        metavar="S",
        help="seconds between a running trial's heartbeats (default 10)",
    )
    p.add_argument(
        "--grace-period",
        type=int,
        default=60,
        metavar="S",
        help="a trial without heartbeat for S seconds is FAIL and retried once (default 60)",
    )
    _tracking(p)


def add_commands(sub: argparse._SubParsersAction, report_sub: argparse._SubParsersAction) -> None:
    """Register the study subcommands on the main parser and ``report study`` on the report parser."""
    st = sub.add_parser(
        "study",
        help="tune a ladder rung or experiment with Optuna (grid, random, TPE), logged to MLflow",
        description="Create or resume a hyperparameter study; with the same name it resumes and counts old trials.",
        formatter_class=RAW,
        epilog=examples(
            "harness study search_spaces/mnist_cnn.yaml --sampler tpe --trials 30 --parallel 2 "
            "--data-dir ../shared/data",
            "harness study search_spaces/mnist_cnn_hptune.yaml --experiment mnist:cnn --set iterations=1500 "
            "--data-dir ../shared/data   # a Cloud ML Engine tuning file",
            "harness study search_spaces/mnist_cnn.yaml --sampler grid --scale smoke --trials 2 --no-report",
            "harness study search_spaces/mnist_cnn.yaml --sampler grid --storage postgresql://db-host/harness "
            "--tracking-uri http://mlflow-host:5000 --parallel 0   # then `harness worker` on each machine",
        ),
    )
    _space_options(st)
    st.add_argument("--sampler", choices=SAMPLER_NAMES, help="default: the file's (CMLE algorithm), else tpe")
    st.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    st.add_argument("--pruner", choices=PRUNER_NAMES, help="default: the file's (enableTrialEarlyStopping)")
    st.add_argument("--trials", type=int, help="budget: trials of the study, old and new (default: the file's)")
    st.add_argument("--max-failed", type=int, help="stop after N failed trials (default: the file's, else no limit)")
    st.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="K",
        help="K trials at once, each in its own worker process (default 1, in this process); "
        "0 = run none here and wait for `harness worker` processes elsewhere",
    )
    st.add_argument("--name", help="study name (default: <space name>-<sampler>)")
    st.add_argument("--out", default="results", help="where the report is written (default results/)")
    st.add_argument("--no-report", action="store_true", help="do not print or write the table")

    wk = sub.add_parser(
        "worker",
        help="join a study from any machine and run its trials until the budget is spent",
        description="Everything else (space, sampler, tracking store) comes from the study in the storage.",
        formatter_class=RAW,
        epilog=examples(
            "harness worker mnist-cnn-grid --storage postgresql://db-host/harness --data-dir ../shared/data",
            "harness worker mnist-cnn-tpe --storage journal:optuna.journal",
        ),
    )
    wk.add_argument("study", help="study name, e.g. mnist-cnn-tpe")
    wk.add_argument(
        "--storage",
        metavar="URL",
        help="the study's Optuna storage (journal:PATH or SQLAlchemy URL; default: $HARNESS_STORAGE, which keeps "
        "a password out of the process list)",
    )
    wk.add_argument("--data-dir", help="dataset directory (default: $HARNESS_DATA_DIR, else the study's)")
    wk.add_argument("--prices", help="price table YAML (default: the study's, else the shipped one)")
    wk.add_argument("--label", default="", help=argparse.SUPPRESS)
    wk.add_argument("--no-finalize", action="store_true", help=argparse.SUPPRESS)
    wk.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $HARNESS_TRACKING_URI, else the one the study was created with; a "
        "password in it is not stored in the study, so such a URI must come from one of these two)",
    )

    cmp = sub.add_parser(
        "compare-samplers",
        help="same budget of full-fidelity trials per sampler, R seeds each; report which sampler won",
        formatter_class=RAW,
        epilog=examples(
            "harness compare-samplers search_spaces/mnist_cnn.yaml --samplers grid,random,tpe --repeats 10 "
            "--set iterations=300 --set eval_every=100 --data-dir ../shared/data",
            "harness compare-samplers search_spaces/mnist_cnn.yaml --replay mnist-cnn-landscape --repeats 200 "
            "--set iterations=300 --set eval_every=100   # seconds: samplers against a recorded landscape",
            "harness compare-samplers search_spaces/mnist_cnn.yaml --samplers random,tpe --repeats 2 --budget 4 "
            "--scale smoke   # minutes, to see it work",
            "harness compare-samplers search_spaces/mnist_cnn.yaml --backends cpu,gpu --data-dir ../shared/data",
        ),
    )
    _space_options(cmp)
    cmp.add_argument("--samplers", default="grid,random,tpe", help="comma list (default grid,random,tpe)")
    cmp.add_argument(
        "--repeats",
        type=int,
        help=f"sampler seeds per sampler (default {REAL_REPEATS}; {REPLAY_REPEATS} with --replay)",
    )
    cmp.add_argument(
        "--replay",
        metavar="LANDSCAPE",
        help="replay the samplers against a landscape recorded by `harness record-landscape` (its study name, "
        "e.g. mnist-cnn-landscape) instead of training: seconds, one MLflow run, results/replay_<space>.*",
    )
    _hardware_options(cmp, "with --replay, also ")
    cmp.add_argument("--budget", type=int, help="trials per study (default: the grid's size)")
    cmp.add_argument(
        "--target",
        type=float,
        help="objective value to reach (default: the median of the studies' best values)",
    )
    cmp.add_argument("--parallel", type=int, default=1, metavar="K", help="worker processes per study (default 1)")
    cmp.add_argument(
        "--backends",
        help="run the whole comparison once per backend (e.g. cpu,gpu) and report sampler x backend: best "
        "objective, trials, time and dollars to the target (default: the space's own backend)",
    )
    cmp.add_argument("--out", default="results", help="where the report is written (default results/)")

    rec = sub.add_parser(
        "record-landscape",
        help="record a landscape for replay benchmarks: real tracked trials at the points of a design",
        description="A study named <space>-landscape whose trials are the points of a design, queued in order: "
        "the full grid of a discrete space, else a scrambled Sobol sequence (plus the space's grid points). Each "
        "is an ordinary tracked trial (MLflow run with its time and backend), one fixed training seed. Then "
        "`harness compare-samplers SPACE --replay <space>-landscape` replays samplers against it in seconds.",
        formatter_class=RAW,
        epilog=examples(
            "harness record-landscape search_spaces/mnist_cnn.yaml --points 64 --set iterations=300 "
            "--set eval_every=100 --data-dir ../shared/data",
            "harness record-landscape search_spaces/planesnet_hptune.yaml --experiment planesnet:cnn --points 48 "
            "--data-dir ../shared/data",
        ),
    )
    _space_options(rec)
    rec.add_argument(
        "--points",
        type=int,
        default=64,
        help="Sobol points where the space is not discrete (default 64; a discrete space records its whole grid)",
    )
    rec.add_argument("--seed", type=int, default=0, help="the Sobol sequence's scrambling seed (default 0)")
    rec.add_argument(
        "--parallel", type=int, default=1, metavar="K", help="K trials at once in worker processes (default 1)"
    )
    rec.add_argument("--name", help="landscape (study) name (default: <space name>-landscape)")

    rs = report_sub.add_parser(
        "study",
        help="the trials table of a study",
        formatter_class=RAW,
        epilog=examples("harness report study mnist-cnn-tpe", "harness report study mnist-cnn-tpe --out /tmp/report"),
    )
    rs.add_argument("name", help="study name")
    rs.add_argument("--out", default="results", help="output directory (default results/)")
    _tracking(rs)

    rr = report_sub.add_parser(
        "replay",
        help="a replay benchmark's report again, from its MLflow run",
        formatter_class=RAW,
        epilog=examples(
            "harness report replay 6885f73580fa4756aa64b86b9f4da81a   # the run id compare-samplers printed",
            "harness report replay 6885f73580fa4756aa64b86b9f4da81a --hardware --hardware-experiment mnist-bn",
        ),
    )
    rr.add_argument("run", help="the replay's MLflow run id (experiment replay/<space>)")
    _hardware_options(rr, "")
    rr.add_argument("--out", default="results", help="output directory (default results/)")
    _tracking(rr)


def _hardware_options(parser: argparse.ArgumentParser, lead: str) -> None:
    parser.add_argument(
        "--hardware",
        nargs="?",
        const="latest",
        metavar="BENCH_RUN",
        help=f"{lead}price the replay on every row of a `harness bench hardware` run (its run id; default the "
        "latest): samplers x hardware, time and $ to the target with CIs",
    )
    parser.add_argument(
        "--hardware-experiment",
        metavar="NAME",
        help="the bench experiment whose throughput the space's trials scale like (default: the bench's only one)",
    )


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


def _heartbeat(args: argparse.Namespace) -> tuple[int, int]:
    from harness.errors import UserError

    if args.heartbeat_interval < 1 or args.grace_period <= args.heartbeat_interval:
        raise UserError(
            f"need --heartbeat-interval >= 1 and --grace-period > --heartbeat-interval, but got "
            f"{args.heartbeat_interval} and {args.grace_period}"
        )
    return args.heartbeat_interval, args.grace_period


def _study_request(args: argparse.Namespace, command_line: str, **fields: Any) -> StudyRequest:
    """The StudyRequest both `study` and `compare-samplers` build from their shared options."""
    from harness.config import parse_cli_overrides
    from harness.studies._request import StudyRequest
    from harness.studies._storage import STORAGE_ENV

    interval, grace = _heartbeat(args)
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
        heartbeat_interval=interval,
        grace_period=grace,
        command=command_line,
        **fields,
    )


def _study(args: argparse.Namespace, command_line: str) -> int:
    from harness.errors import UserError
    from harness.studies._request import check_study

    if args.parallel < 0:
        raise UserError(f"--parallel must be >= 0, but got {args.parallel}")
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
    check_study(request)
    _tensorflow.start(args.verbose)  # the input is checked: now MLflow, the storage and TensorFlow
    from harness.studies._study import run_study

    ctx = run_study(request, _print)
    if args.no_report:
        return 0
    return _report(ctx.name, args.out, ctx.tracker.uri, f"harness report study {ctx.name}")


def _worker(args: argparse.Namespace) -> int:
    from harness import lifeline
    from harness.errors import UserError
    from harness.studies._storage import STORAGE_ENV, TRACKING_ENV

    def supervisor_gone(pid: int) -> None:
        # a `--parallel K` worker whose study process was killed unseen: stop as Ctrl-C does (the trial's
        # run ends KILLED, the trial is queued again), so that resuming the study loses nothing
        _print(f"[{args.label}] the study process (pid {pid}) is gone: stopping")
        lifeline.interrupt_self()

    lifeline.watch_supervisor(supervisor_gone)
    storage = args.storage or os.environ.get(STORAGE_ENV)
    if not storage:
        raise UserError(f"worker needs the study's storage: --storage URL or ${STORAGE_ENV}, but got neither")
    _tensorflow.start(args.verbose)
    from harness.studies._study import run_attached_worker

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
    from harness.studies._compare import CompareRequest, parse_samplers, plan_budget

    repeats = args.repeats if args.repeats is not None else (REPLAY_REPEATS if args.replay else REAL_REPEATS)
    if repeats < 1:
        raise UserError(f"--repeats must be >= 1, but got {repeats}")
    if args.parallel < 1:
        raise UserError(f"--parallel must be >= 1 for compare-samplers, but got {args.parallel}")
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
        from harness.studies._replay import ReplayRequest, run_replay

        run_replay(ReplayRequest(request, args.replay, price_on), _print)
        return 0
    _tensorflow.start(args.verbose)
    from harness.studies._compare import run_compare

    run_compare(request, _print)
    return 0


def _record(args: argparse.Namespace, command_line: str) -> int:
    from harness.errors import UserError
    from harness.studies._landscape import plan_landscape, record_landscape

    if args.parallel < 1:
        raise UserError(f"--parallel must be >= 1 for record-landscape, but got {args.parallel}")
    request = plan_landscape(_study_request(args, command_line, plots=False), args.points, args.seed, args.name)
    _tensorflow.start(args.verbose)
    ctx = record_landscape(request, _print)
    print(f"replay it: harness compare-samplers {args.space} --replay {ctx.name} --repeats {REPLAY_REPEATS}")
    return 0


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
