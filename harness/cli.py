"""Command line: ladders, studies, reports, detection scans, UIs and benchmarks.

Exit codes: 0 success, 1 a run failed, 2 bad input (the message says which
file, key or value), 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from harness import interrupts
from harness._paths import encode_name, safe_child
from harness._secrets import redact_argv, redact_text, redact_uri
from harness.errors import HarnessError, RunFailed, UserError

if TYPE_CHECKING:
    from harness.ladders._runner import PricedAs

SCALES = ("smoke", "standard", "full")


def _add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)",
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("harness")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    from harness.studies import _cli as study_cli
    from harness.studies._cli import RAW, examples

    parser = argparse.ArgumentParser(
        prog="harness",
        description=__doc__.split("\n")[0],
        formatter_class=RAW,
        epilog=examples(
            "harness ladders                                          # what there is to run",
            "harness ladder mnist --scale smoke --data-dir ../shared/data   # every rung in seconds",
            "harness ui                                               # the runs in MLflow's UI",
            "harness tensorboard                                      # their curves in TensorBoard",
        )
        + "\n\n`harness COMMAND --help` shows each command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show TensorFlow's start-up and CUDA log lines (hidden by default)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("ladders", help="list the built-in ladders", formatter_class=RAW, epilog=examples("harness ladders"))
    be = sub.add_parser(
        "backends",
        help="what this machine offers: devices, XLA, precisions, backends and prices",
        formatter_class=RAW,
        epilog=examples("harness backends", "harness backends --prices harness/hardware/prices.yaml"),
    )
    be.add_argument("--prices", help="price table YAML (default: $HARNESS_PRICES or the shipped one)")

    lad = sub.add_parser(
        "ladder",
        help="run a ladder: every rung, logged to MLflow, then the table",
        formatter_class=RAW,
        epilog=examples(
            "harness ladder mnist --scale smoke --data-dir ../shared/data      # every rung, seconds each",
            "harness ladder mnist --rungs 6-8 --seeds 3 --data-dir ../shared/data",
            "harness ladder mnist --rungs cnn --set lr0=0.01 --set backend=cpu --data-dir ../shared/data",
            "harness ladder planesnet --vary split=scene,random --data-dir ../shared/data",
            "harness ladder mnist --cmle-config search_spaces/cmle_jobs/basic_gpu.yaml --data-dir ../shared/data"
            "   # a Cloud ML Engine tier",
        ),
    )
    lad.add_argument("ladder", help="built-in ladder name (see `harness ladders`) or path to a ladder .yaml")
    lad.add_argument(
        "--scale",
        choices=SCALES,
        default="standard",
        help="smoke: seconds, tiny data (tests); standard: the talk's settings sized for this machine "
        "(default); full: the reference's own sizes, for a GPU",
    )
    lad.add_argument("--seeds", type=int, default=1, help="repeat every rung with N seeds (default 1)")
    lad.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    lad.add_argument("--rungs", help="subset of rungs: indices, ranges or names, e.g. 1,3-5,cnn")
    lad.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key for every rung (repeatable), e.g. --set lr0=0.01",
    )
    lad.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="run every rung once per value (repeatable: all combinations), e.g. --vary split=scene,random",
    )
    lad.add_argument("--data-dir", help="dataset directory (default: $HARNESS_DATA_DIR)")
    lad.add_argument("--tensorboard-dir", default="tensorboard", help="TensorBoard event files root")
    lad.add_argument("--prices", help="price table YAML (default: $HARNESS_PRICES or the shipped one)")
    lad.add_argument("--out", default="results", help="where the report is written (default results/)")
    lad.add_argument("--no-report", action="store_true", help="do not print or write the table")
    lad.add_argument(
        "--cmle-config",
        metavar="FILE",
        help="a Cloud ML Engine training job config (trainingInput: scaleTier, masterType, ... without "
        "hyperparameters): every run trains on its tier's backend and is priced at its list price",
    )
    _add_tracking(lad)

    rep = sub.add_parser(
        "report",
        help="rebuild a comparison table from the tracking store",
        formatter_class=RAW,
        epilog=examples(
            "harness report ladder mnist",
            "harness report study mnist-cnn-tpe",
            "harness report bench-hardware",
        ),
    )
    rep_sub = rep.add_subparsers(dest="kind", required=True, metavar="KIND")
    rl = rep_sub.add_parser(
        "ladder",
        help="the table of a ladder run",
        formatter_class=RAW,
        epilog=examples(
            "harness report ladder mnist                      # its latest complete run",
            "harness report ladder mnist --scale smoke --out /tmp/report",
            "harness report ladder planesnet --rungs 4-5 --name planesnet_side",
        ),
    )
    rl.add_argument("ladder", help="ladder name")
    rl.add_argument("--run", help="parent run id (default: the latest run of the ladder)")
    rl.add_argument("--scale", choices=SCALES, help="latest run at this scale")
    rl.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="RUN",
        help="another parent run of the ladder (e.g. one rung at full scale) shown as extra rows (repeatable)",
    )
    rl.add_argument("--rungs", help="only these rungs, e.g. 7,8 or 7-8 (a side table)")
    rl.add_argument("--name", help="file name stem (default <ladder>_ladder[_<scale>])")
    rl.add_argument("--out", default="results", help="output directory (default results/)")
    _add_tracking(rl)

    ds = sub.add_parser(
        "detect-scan",
        help="slide a trained tile classifier over large images",
        formatter_class=RAW,
        epilog=examples(
            "harness detect-scan planesnet/tuned ../shared/data/planesnet/scenes/scene_1.png",
            "harness detect-scan planesnet/cnn:split=scene ../shared/data/planesnet/scenes/scene_2.png "
            "--threshold 0.95 --stride 20",
            "harness detect-scan study:planesnet-cnn-tpe ../shared/data/planesnet/scenes/scene_3.png",
        ),
    )
    ds.add_argument(
        "run",
        help="a run with a model: run id, LADDER/RUNG[:VARIANT] (its latest run) or study:NAME (its best trial)",
    )
    ds.add_argument("images", nargs="+", help="images to scan (PNG, JPEG, ...)")
    ds.add_argument("--scales", default="0.8,1.0,1.25", help="resize factors (default 0.8,1.0,1.25)")
    ds.add_argument("--stride", type=int, default=10, help="pixels between windows (default 10)")
    ds.add_argument("--threshold", type=float, default=0.9, help="min P(plane) of a detection (default 0.9)")
    ds.add_argument("--iou", type=float, default=0.3, help="non-max suppression IoU (default 0.3)")
    ds.add_argument("--out", default="results/detect_scan", help="output directory")
    _add_tracking(ds)

    db = sub.add_parser(
        "detect-boxes",
        help="draw a YOLO run's boxes on held-out and extra whole images",
        formatter_class=RAW,
        epilog=examples(
            "harness detect-boxes yolo/layers17 --data-dir ../shared/data",
            "harness detect-boxes yolo/layers17 --held-out 8 --extras 0 --threshold 0.3 --data-dir ../shared/data",
        ),
    )
    db.add_argument("run", help="run id, LADDER/RUNG[:VARIANT] (e.g. yolo/layers17) or study:NAME")
    db.add_argument("--held-out", type=int, default=4, help="held-out annotated images to draw (default 4)")
    db.add_argument("--extras", type=int, default=2, help="unannotated extras/ images to draw (default 2)")
    db.add_argument("--threshold", type=float, default=0.5, help="min P(plane) of a drawn box (default 0.5)")
    db.add_argument("--max-side", type=int, default=1024, help="PNG size in px (default 1024)")
    db.add_argument("--data-dir", help="dataset directory (default: $HARNESS_DATA_DIR)")
    db.add_argument("--out", default="results/yolo_detections", help="output directory")
    _add_tracking(db)

    ui = sub.add_parser(
        "ui",
        help="open the MLflow UI on the tracking store",
        formatter_class=RAW,
        epilog=examples(
            "harness ui                      # then open the URL it prints",
            "harness ui --port 5001 --tracking-uri sqlite:///elsewhere/mlflow.db",
        ),
    )
    ui.add_argument("--port", type=int, default=5000, help="port to serve on (default 5000); a port in use is an error")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    ui.add_argument(
        "--workers", type=int, default=1, help="server worker processes (default 1: enough for one user, light on RAM)"
    )
    _add_tracking(ui)

    tb = sub.add_parser(
        "tensorboard",
        help="open TensorBoard on the event files ladders and studies write",
        formatter_class=RAW,
        epilog=examples(
            "harness tensorboard                          # every ladder and study under tensorboard/",
            "harness tensorboard --logdir tensorboard/mnist --port 6007",
        ),
    )
    tb.add_argument(
        "--logdir",
        default="tensorboard",
        help="event files root (default tensorboard: what `harness ladder` (--tensorboard-dir) and "
        "`harness study` write in the folder they run from)",
    )
    tb.add_argument("--port", type=int, default=6006, help="port to serve on (default 6006); a port in use is an error")
    tb.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")

    study_cli.add_commands(sub, rep_sub)

    runs = sub.add_parser(
        "runs",
        help="maintain the tracking store's runs",
        formatter_class=RAW,
        epilog=examples("harness runs clean --dry-run"),
    )
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    clean = runs_sub.add_parser(
        "clean",
        help="end KILLED the RUNNING runs whose process is gone (after kill -9 or an out-of-memory kill)",
        description="Runs record their owner (host, pid, start time). This ends KILLED every RUNNING run of\n"
        "this host whose process is gone; runs of other hosts are listed, never touched. Ladders and\n"
        "studies do this on their own when they start.",
        formatter_class=RAW,
        epilog=examples("harness runs clean --dry-run     # list them first", "harness runs clean"),
    )
    clean.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    _add_tracking(clean)

    bench = sub.add_parser(
        "bench",
        help="benchmarks (see `nox -s bench`); `bench hardware`: throughput, time to accuracy and cost per backend",
        formatter_class=RAW,
        epilog=examples(
            "harness bench --quick --data-dir ../shared/data          # few steps: does it run?",
            "harness bench --only e --data-dir ../shared/data",
            "harness bench hardware --experiments mnist-speed,resnet50 --backends cpu --data-dir ../shared/data",
        ),
    )
    bench.add_argument(
        "suite",
        nargs="?",
        choices=["hardware"],
        help="hardware: experiments x backends x batch sizes, each measurement an MLflow run (default: the "
        "harness-overhead sections a-e)",
    )
    bench.add_argument("--data-dir", help="dataset directory (default: $HARNESS_DATA_DIR)")
    bench.add_argument("--out", default="results/bench", help="output directory")
    bench.add_argument("--quick", action="store_true", help="few steps, to check the benchmark runs")
    bench.add_argument(
        "--only",
        help="measure only these sections again, e.g. d or a,study-overhead (a overhead, b throughput, "
        "c time-to-accuracy, d study-overhead, e yolo); the others are kept from the bench.json in --out",
    )
    hw = bench.add_argument_group("bench hardware")
    hw.add_argument(
        "--experiments", help="comma list (default all): mnist-bn, mnist-speed, planesnet-cnn, yolo-17, resnet50"
    )
    hw.add_argument("--backends", help="comma list of backends (default: cpu, plus gpu and multi-gpu where present)")
    hw.add_argument("--batch-sizes", help="comma list (default: each experiment's own); the learning rate is kept")
    hw.add_argument(
        "--precision",
        choices=["float32", "mixed_float16", "mixed_bfloat16"],
        default="float32",
        help="Keras dtype policy of every measurement (default float32)",
    )
    hw.add_argument("--repeats", type=int, default=5, help="repetitions per row (default 5)")
    hw.add_argument("--windows", type=int, default=5, help="timed windows per throughput run (default 5)")
    hw.add_argument("--prices", help="price table YAML (default: $HARNESS_PRICES or the shipped one)")
    _add_tracking(bench)

    rh = rep_sub.add_parser(
        "bench-hardware",
        help="the tables of a `harness bench hardware` run",
        formatter_class=RAW,
        epilog=examples("harness report bench-hardware", "harness report bench-hardware --out /tmp/bench"),
    )
    rh.add_argument("--run", help="parent run id (default: the latest finished one)")
    rh.add_argument("--out", default="results/bench", help="output directory (default results/bench)")
    _add_tracking(rh)
    return parser


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
            if not args.verbose and args.command in _TRAINS:
                _start_tensorflow_quietly()
            return _dispatch(args, command_line)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the current run and its parent are marked KILLED; finished runs are kept",
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
    except OSError as exc:  # the system refused: --out naming a file, no space, no permission, a lost connection
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{redact_text(exc.strerror or str(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if not isinstance(exc, MlflowException):
            raise  # a bug in harness: its traceback is what a report needs
        # the store failed under us (server down, disk full): runs already ended stay as they are
        first = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
        print(f"error: the tracking store failed: {redact_text(first)}", file=sys.stderr)
        return 1


_TRAINS = ("ladder", "study", "worker", "compare-samplers", "bench", "backends", "detect-scan", "detect-boxes")


def _start_tensorflow_quietly() -> None:
    """Import TensorFlow and look for GPUs with file descriptor 2 on /dev/null: TensorFlow's C++ writes
    its start-up lines ("oneDNN custom operations", "failed call to cuInit") there before any log level
    applies. An import error still raises, with its message, once stderr is back."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _dispatch(args: argparse.Namespace, command_line: str) -> int:
    if args.command == "ladders":
        from harness.ladders import builtin_ladders

        for name, title in builtin_ladders().items():
            print(f"{name:<12} {title}")
        return 0
    if args.command == "backends":
        from harness.hardware import load_prices, probe, render

        print(render(probe(load_prices(args.prices))))
        return 0
    if args.command == "ladder":
        return _ladder(args, command_line)
    if args.command == "runs":
        return _runs_clean(args)
    if args.command in ("study", "worker", "compare-samplers") or (args.command == "report" and args.kind == "study"):
        from harness.studies import _cli as study_cli

        return study_cli.dispatch(args, command_line)
    if args.command == "report" and args.kind == "bench-hardware":
        return _report_hardware(args.run, args.out, args.tracking_uri, command_line)
    if args.command == "report":
        return _report(
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
        return _detect_scan(args, command_line)
    if args.command == "detect-boxes":
        return _detect_boxes(args, command_line)
    if args.command == "ui":
        from harness.tracking import resolve_tracking_uri

        uri = resolve_tracking_uri(args.tracking_uri)
        _check_port_free(args.host, args.port, "another `harness ui` or mlflow server?")
        if not 1 <= args.workers <= 64:
            raise UserError(f"--workers must be 1..64, but got {args.workers}")
        cmd = [sys.executable, "-m", "mlflow", "ui", "--host", args.host, "--port", str(args.port)]
        cmd += ["--workers", str(args.workers)]
        # the store through the environment, not argv: `ps` would show a password to every user
        os.environ["MLFLOW_BACKEND_STORE_URI"] = uri
        print("$", f"MLFLOW_BACKEND_STORE_URI={shlex.quote(redact_uri(uri))}", shlex.join(cmd))
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"MLflow UI on {redact_uri(uri)}: http://{host}:{args.port} (Ctrl-C stops it)", flush=True)
        os.execv(sys.executable, cmd)
    if args.command == "tensorboard":
        _tensorboard(args.logdir, args.host, args.port)
    if args.command == "bench" and args.suite == "hardware":
        return _bench_hardware(args, command_line)
    if args.command == "bench":
        from harness.bench import parse_sections, run_benchmarks

        only = parse_sections(args.only) if args.only else None
        run_benchmarks(data_dir=args.data_dir, out_dir=Path(args.out), quick=args.quick, only=only)
        return 0
    raise AssertionError(args.command)  # pragma: no cover - argparse rejects others


def _tensorboard(logdir: str, host: str, port: int) -> NoReturn:
    """Replace this process by TensorBoard, as ``ui`` does with MLflow's: Ctrl-C stops it (exit 0)."""
    folder = Path(logdir)
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise UserError(
            f"--logdir {logdir} {state}; `harness ladder` (--tensorboard-dir, default tensorboard) and "
            "`harness study` write TensorBoard event files under tensorboard/ in the folder they run from: "
            "run one there first, or pass --logdir"
        )
    _check_port_free(host, port, "another TensorBoard?")
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder), "--host", host, "--port", str(port)]
    print("$", shlex.join(cmd))
    shown = f"[{host}]" if ":" in host else host
    print(f"TensorBoard on {folder}: http://{shown}:{port} (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, cmd)


def _check_port_free(host: str, port: int, who: str) -> None:
    """A port in use is exit 2 here; the server itself would log it and exit 0. ``who`` guesses the holder."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be 1..65535, but got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc} ({who}); choose another --port"
            ) from None


def _ladder(args: argparse.Namespace, command_line: str) -> int:
    from harness.config import parse_cli_overrides, parse_variants
    from harness.ladders import load_ladder
    from harness.ladders._runner import LadderRequest, run_ladder
    from harness.tracking import Tracker

    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, but got {args.seeds}")
    ladder = load_ladder(args.ladder).select(args.rungs)
    overrides = parse_cli_overrides(args.set)
    variants = parse_variants(args.vary)
    priced_as = None
    if args.cmle_config:
        overrides, priced_as = _cmle_job(args.cmle_config, overrides, variants)
    request = LadderRequest(
        ladder=ladder,
        scale=args.scale,
        seeds=args.seeds,
        base_seed=args.seed,
        overrides=overrides,
        data_dir=args.data_dir,
        tensorboard_dir=Path(args.tensorboard_dir),
        command=command_line,
        prices=args.prices,
        variants=variants,
        priced_as=priced_as,
    )
    request.variant_configs()  # fail on a bad --set or --vary before loading anything
    from harness.hardware import is_chief, tf_config

    cluster = tf_config()
    if cluster is not None and not is_chief(cluster):  # one of several machines: the chief logs the runs
        task = cluster["task"]
        with tempfile.TemporaryDirectory(prefix="harness-worker-") as scratch:
            print(
                f"TF_CONFIG: this process is {task['type']}:{task['index']}, not the chief; "
                "the chief logs the runs (this worker's tracking goes to a scratch store, then away)",
                file=sys.stderr,
            )
            run_ladder(request, Tracker(f"sqlite:///{scratch}/mlflow.db"))
        return 0
    tracker = Tracker(args.tracking_uri)
    run_id = run_ladder(request, tracker)
    if args.no_report:
        return 0
    report_cmd = f"harness report ladder {ladder.name} --run {run_id}"
    name = None
    if ladder.selected:  # a partial run gets its own file: the full table is never replaced by a few rows
        scale = "" if args.scale == "standard" else f"_{args.scale}"
        name = f"{ladder.name}_ladder{scale}_rungs_" + re.sub(r"[^0-9A-Za-z.-]+", "_", ladder.selected).strip("_")
        report_cmd += f" --name {name}"
    return _report(ladder.name, run_id, None, args.out, tracker.uri, report_cmd, name=name)


def _cmle_job(
    path: str, overrides: dict[str, Any], variants: tuple[dict[str, Any], ...]
) -> tuple[dict[str, Any], PricedAs]:
    """``--cmle-config``: the job's tier as a ``--set backend=...`` plus the price of its machines."""
    from harness.ladders._runner import PricedAs
    from harness.studies._cmle import load_training_job

    job = load_training_job(path)
    for given in (overrides, *variants):
        clash = next((k for k in given if k in ("backend", "run.backend")), None)
        if clash is not None:
            raise UserError(
                f"--cmle-config {path} chooses the backend ({job.tier.backend}, from scaleTier {job.tier.name}); "
                f"drop the --set/--vary of {clash!r}, or drop --cmle-config"
            )
    for note in job.notes:
        print(f"warning: {note}", file=sys.stderr)
    tags = {
        "cmle.config": path,
        "cmle.tier": job.tier.name,
        "cmle.machines": ", ".join(job.tier.machines),
        "cmle.description": job.tier.description,
        "cmle.backend": job.tier.backend,
    }
    priced = PricedAs(where=job.where, hardware=" + ".join(job.tier.machines), tags=tags)
    return {**overrides, "backend": job.tier.backend}, priced


def _bench_hardware(args: argparse.Namespace, command_line: str) -> int:
    from harness.bench import HardwareRequest, backends_arg, parse_batch_sizes, parse_experiments, run_hardware
    from harness.tracking import Tracker

    if args.only:
        raise UserError("--only selects sections of the default benchmark; `bench hardware` takes --experiments")
    quick = args.quick
    request = HardwareRequest(
        experiments=parse_experiments(args.experiments),
        backends=backends_arg(args.backends),
        batch_sizes=parse_batch_sizes(args.batch_sizes),
        precision=args.precision,
        repeats=1 if quick else args.repeats,
        windows=2 if quick else args.windows,
        quick=quick,
        data_dir=args.data_dir,
        prices=args.prices,
        command=command_line,
    )
    tracker = Tracker(args.tracking_uri)
    run_id = run_hardware(request, tracker)
    return _report_hardware(run_id, args.out, tracker.uri, f"harness report bench-hardware --run {run_id}")


def _report_hardware(run_id: str | None, out: str, uri: str | None, command_line: str) -> int:
    from harness.report import hardware_report, write_hardware
    from harness.tracking import Tracker

    report = hardware_report(Tracker(uri), run_id)
    narrow = ["experiment", "backend", "batch", "reps", "examples/s, median [min, max]", "compile s"]
    if len(report.throughput):
        print(report.throughput[narrow].to_string(index=False))
    if len(report.time_to_accuracy):
        print(
            report.time_to_accuracy[
                ["experiment", "backend", "batch", "reached", "time to target s, median [min, max]"]
            ].to_string(index=False)
        )
    for path in write_hardware(report, Path(out), command_line):
        print(f"wrote {path}")
    return 0


def _report(
    ladder: str,
    run_id: str | None,
    scale: str | None,
    out: str,
    uri: str | None,
    command_line: str,
    also: tuple[str, ...] = (),
    rungs: str | None = None,
    name: str | None = None,
) -> int:
    from harness.report import display_table, ladder_report, verdict, write_report
    from harness.tracking import Tracker

    if name is not None and not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise UserError(f"--name must be a file name stem (letters, digits, _ . -), but got {name!r}")
    report = ladder_report(Tracker(uri), ladder, run_id, scale, also, rungs)
    print(_narrow(display_table(report)))
    for line in verdict(report):
        print(line)
    md, csv, page = write_report(report, Path(out), command_line, name)
    print(f"wrote {md}, {csv} (every column) and {page}")
    return 0


def _narrow(table: Any, width: int = 100) -> str:
    """The table in at most ``width`` columns: the long "what changed" text first, then the rightmost
    columns are left out (the Markdown and CSV files have them all)."""
    shown = table.drop(columns=[c for c in table.columns if "changed" in str(c)])
    text = shown.to_string(index=False)
    while shown.shape[1] > 3 and max(map(len, text.splitlines()), default=0) > width:
        shown = shown.iloc[:, :-1]
        text = shown.to_string(index=False)
    return text


def _detect_boxes(args: argparse.Namespace, command_line: str) -> int:
    from harness.data import load_dataset, resolve_data_dir
    from harness.data._aerial import extras
    from harness.detect import load_run_model, read_image, resolve_model_run
    from harness.detect._boxes import ImageBoxes, find_boxes, run_config, write
    from harness.tracking import Tracker

    if not 0.0 < args.threshold < 1.0:
        raise UserError(f"--threshold must be in (0, 1), but got {args.threshold}")
    tracker = Tracker(args.tracking_uri)
    run_id = resolve_model_run(tracker, args.run)
    cfg = run_config(tracker, run_id)
    if cfg.task.name != "detection":
        raise UserError(f"run {run_id} is a {cfg.task.name} run; detect-boxes needs a detection run (ladder yolo)")
    data = load_dataset(cfg.data, args.data_dir)
    model = load_run_model(tracker, run_id)
    held = data.eval_images  # type: ignore[attr-defined]
    pictures = [(held.names[i], held.images[i], held.boxes[i]) for i in range(min(args.held_out, len(held.names)))]
    data_dir = resolve_data_dir(args.data_dir)
    if args.extras and cfg.data.name == "airbus" and data_dir is not None:
        pictures += [(p.name, read_image(p), None) for p in extras(data_dir)[: args.extras]]
    items = []
    for name, image, truth in pictures:
        found, scores = find_boxes(model, image, cfg, args.threshold)
        items.append(ImageBoxes(name, image, truth, found, scores))
        print(f"{name}: {len(found)} boxes found" + ("" if truth is None else f", {len(truth)} true"))
    run = tracker.client.get_run(run_id)
    out_dir = _run_dir(Path(args.out), run.data.tags.get("mlflow.runName", run_id[:8]))
    summary = write(items, out_dir, run, args.threshold, command_line, args.max_side)
    tracker.client.log_artifacts(run_id, str(out_dir), "detect_boxes")
    print(f"wrote {summary}")
    return 0


def _runs_clean(args: argparse.Namespace) -> int:
    from harness.tracking import Tracker, sweep

    tracker = Tracker(args.tracking_uri)
    orphans = sweep(tracker.client, dry_run=args.dry_run)
    for o in orphans:
        if o.ended:
            action = "ended KILLED"
        elif args.dry_run and o.owner.endswith(f" on {socket.gethostname()}"):
            action = "would end KILLED"
        else:
            action = "left alone (another host's run)"
        print(f"{action}: run {o.run_id} ({o.experiment}: {o.name}), {o.owner}")
    ended = sum(o.ended for o in orphans)
    print(f"{ended} run(s) ended KILLED in {tracker.display_uri}" if not args.dry_run else "dry run: nothing changed")
    return 0


def _detect_scan(args: argparse.Namespace, command_line: str) -> int:
    from harness.detect import (
        ScanResult,
        ScanSettings,
        load_run_model,
        read_image,
        resolve_model_run,
        scan,
        write_outputs,
        write_summary,
    )
    from harness.tracking import Tracker

    try:
        scales = tuple(float(v) for v in args.scales.split(","))
    except ValueError:
        raise UserError(f"--scales expects numbers like 0.8,1.0,1.25, but got {args.scales!r}") from None
    settings = ScanSettings(scales, args.stride, args.threshold, args.iou)
    images = {Path(p): read_image(Path(p)) for p in args.images}  # every image decodes before any work
    tracker = Tracker(args.tracking_uri)
    run_id = resolve_model_run(tracker, args.run)
    model = load_run_model(tracker, run_id)
    run = tracker.client.get_run(run_id)
    name = run.data.tags.get("mlflow.runName", run_id[:8])
    out_dir = _run_dir(Path(args.out), name)
    print(f"model: run {run_id} ({name})")
    results = []
    for path, image in images.items():
        boxes = scan(model, image, settings)
        png, js = write_outputs(path, image, boxes, settings, run_id, out_dir)
        tracker.client.log_artifact(run_id, str(png), "detect_scan")
        tracker.client.log_artifact(run_id, str(js), "detect_scan")
        tracker.client.log_metric(run_id, f"detect_scan/{path.stem}", len(boxes))
        results.append(ScanResult(path, image.shape[0], image.shape[1], tuple(boxes)))
        print(f"{path}: {len(boxes)} detections -> {png}")
    summary = write_summary(out_dir, run, results, settings, command_line)
    tracker.client.log_artifact(run_id, str(summary), "detect_scan")
    print(f"wrote {summary}")
    return 0


def _run_dir(out: Path, run_name: str) -> Path:
    """A run's folder under ``--out``: its name comes from the store (any text), so it is encoded, not refused."""
    return safe_child(out, encode_name(run_name), what="run name")
