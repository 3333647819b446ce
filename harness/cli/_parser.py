"""The arguments of every command; importing this is cheap (no TensorFlow, MLflow or Optuna)."""

from __future__ import annotations

import argparse
import difflib
import re
from typing import NoReturn

SCALES = ("smoke", "standard", "full")
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)")


class _Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a misspelt command, report kind or choice (subparsers inherit it)."""

    def error(self, message: str) -> NoReturn:
        found = _INVALID_CHOICE.search(message)
        if found:
            choices = re.findall(r"'([^']*)'", found["choices"])
            close = difflib.get_close_matches(found["given"], choices, n=1)
            if close:
                message = f"{message}; did you mean {close[0]!r}?"
        super().error(message)


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

    parser = _Parser(
        prog="harness",
        description="Command line: ladders, studies, reports, detection scans, UIs and benchmarks.",
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
        "studies do this on their own when they start. The Optuna trials of those runs end FAIL (and\n"
        "are queued again once, as when their heartbeat expires) in --storage, the default storage\n"
        "beside the tracking store, and every journal or SQLite file the store's studies name.",
        formatter_class=RAW,
        epilog=examples("harness runs clean --dry-run     # list them first", "harness runs clean"),
    )
    clean.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    clean.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna storage to clean too, e.g. a PostgreSQL study's (default: $HARNESS_STORAGE); "
        "database servers are opened only when given here",
    )
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
    bench.add_argument(
        "--study-trials",
        metavar="N,N",
        help="study sizes of section d, comma list (default 10,30 with --quick, else 10,100,1000; the per-trial "
        "target is checked only at 1000 or more)",
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
