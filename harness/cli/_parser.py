"""The arguments of every command; importing this is cheap (no TensorFlow, MLflow or Optuna)."""

from __future__ import annotations

import argparse
import difflib
import re
from typing import NoReturn

SCALES = ("smoke", "standard", "full")
# the names harness.studies._space checks; repeated so that building the parser imports no study module
SAMPLER_NAMES = ("grid", "random", "tpe", "gp", "cmaes")
PRUNER_NAMES = ("none", "median", "hyperband")
REAL_REPEATS = 10  # compare-samplers' default repeats: the HPO literature's minimum (JAHS-Bench-201: >= 10 seeds)
REPLAY_REPEATS = 200  # with --replay (seconds each)
# epilogs keep their lines: one example command per line (tests parse each with the real parser)
RAW = argparse.RawDescriptionHelpFormatter
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


def examples(*lines: str) -> str:
    """An epilog of example command lines, one per line; a ``#`` starts a comment."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


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
            "harness report bench",
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

    _add_study_commands(sub, rep_sub)

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
            "harness bench hardware --frameworks tensorflow,jax --data-dir ../shared/data",
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
    hw.add_argument(
        "--frameworks",
        help="comma list of Keras frameworks to measure each row on: tensorflow, jax, torch (default: "
        "$KERAS_BACKEND, else tensorflow); each other than this process's measures in a child process",
    )
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

    rb = rep_sub.add_parser(
        "bench",
        help="bench.md and bench.html of a `harness bench` run, rebuilt from its bench.json",
        formatter_class=RAW,
        epilog=examples("harness report bench", "harness report bench --out /tmp/bench"),
    )
    rb.add_argument("--out", default="results/bench", help="the folder holding bench.json (default results/bench)")
    return parser


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
    _add_tracking(p)


def _add_study_commands(sub: argparse._SubParsersAction, report_sub: argparse._SubParsersAction) -> None:
    """``study``, ``worker``, ``compare-samplers``, ``record-landscape``; ``report study`` and ``report replay``."""
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
    _add_tracking(rs)

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
    _add_tracking(rr)


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
