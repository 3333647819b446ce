"""The commands that run something: ladders, reports, detection, benchmarks, run maintenance."""

from __future__ import annotations

import argparse
import re
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import _framework
from harness._paths import encode_name, safe_child
from harness._secrets import redact_uri
from harness.errors import UserError

if TYPE_CHECKING:
    from harness.ladders import PricedAs

MAX_SEEDS = 1000  # repeats of every rung: more is a typo, not a study
MAX_SEED = 2**31 - 1  # TensorFlow's and numpy's seeds
MAX_SIDE = 16_384  # detect-boxes' PNG side: past it a picture is hundreds of MB
MAX_PICTURES = 10_000  # detect-boxes' --held-out and --extras


def ladder(args: argparse.Namespace, command_line: str) -> int:
    from harness.config import parse_cli_overrides, parse_variants
    from harness.ladders import LadderRequest, load_ladder

    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be >= 1 and <= {MAX_SEEDS:,}, but got {args.seeds}")
    if not 0 <= args.seed <= MAX_SEED - args.seeds + 1:
        last = MAX_SEED - args.seeds + 1
        raise UserError(f"--seed must be in 0..{last:,} (seeds up to 2**31 - 1), but got {args.seed}")
    ladder = load_ladder(args.ladder).select(args.rungs)
    overrides = parse_cli_overrides(args.set)
    variants = parse_variants(args.vary)
    priced_as = None
    if args.cmle_config:
        overrides, priced_as = cmle_job(args.cmle_config, overrides, variants)
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
    configs = request.variant_configs()  # fail on a bad --set or --vary before loading anything
    from harness.data import unread_data_dir

    for warning in unread_data_dir((cfg.data.name for _, _, cfg in configs), args.data_dir):
        print(warning, file=sys.stderr)
    # the input is checked: now the seconds of TensorFlow, MLflow and the runner, on the runs' framework
    _framework.start(args.verbose, {cfg.run.framework for _, _, cfg in configs})
    from harness.hardware import is_chief, tf_config
    from harness.ladders import run_ladder
    from harness.tracking import Tracker

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
    return report_ladder(ladder.name, run_id, None, args.out, tracker.uri, report_cmd, name=name)


def cmle_job(
    path: str, overrides: dict[str, Any], variants: tuple[dict[str, Any], ...]
) -> tuple[dict[str, Any], PricedAs]:
    """``--cmle-config``: the job's tier as a ``--set backend=...`` plus the price of its machines."""
    from harness.hardware import load_training_job
    from harness.ladders import PricedAs

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


def bench_hardware(args: argparse.Namespace, command_line: str) -> int:
    if args.only:
        raise UserError("--only selects sections of the default benchmark; `bench hardware` takes --experiments")
    from harness.config import parse_frameworks

    frameworks = parse_frameworks(args.frameworks) if args.frameworks else ()
    # this process runs the one framework asked for, else its own; each other one measures in a child
    _framework.start(args.verbose, frameworks)  # before the experiments' module, which imports Keras
    from harness.bench import (
        HardwareRequest,
        backends_arg,
        parse_batch_sizes,
        parse_experiments,
        run_hardware,
    )
    from harness.tracking import Tracker

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
        frameworks=frameworks,
    )
    tracker = Tracker(args.tracking_uri)
    run_id = run_hardware(request, tracker)
    return report_hardware(run_id, args.out, tracker.uri, f"harness report bench-hardware --run {run_id}")


def report_bench(args: argparse.Namespace) -> int:
    """bench.md and bench.html again from the bench.json in ``--out``: the benchmark's store, nothing measured."""
    from harness.bench import read_results, write_pages

    results = read_results(Path(args.out))  # checked before Keras starts
    _framework.start(args.verbose)  # the sections' task columns import Keras: its start-up lines hidden
    print("wrote " + " and ".join(map(str, write_pages(results, Path(args.out)))))
    return 0


def report_hardware(run_id: str | None, out: str, uri: str | None, command_line: str) -> int:
    from harness.report import hardware_report, write_hardware
    from harness.tracking import Tracker

    report = hardware_report(Tracker(uri), run_id)
    narrow = ["experiment", "framework", "backend", "batch", "reps", "examples/s, median [min, max]", "compile s"]
    if len(report.throughput):
        print(report.throughput[narrow].to_string(index=False))
    if len(report.time_to_accuracy):
        print(
            report.time_to_accuracy[
                ["experiment", "framework", "backend", "batch", "reached", "time to target s, median [min, max]"]
            ].to_string(index=False)
        )
    for path in write_hardware(report, Path(out), command_line):
        print(f"wrote {path}")
    return 0


def report_ladder(
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
    print(narrow(display_table(report)))
    for line in verdict(report):
        print(line)
    md, csv, page = write_report(report, Path(out), command_line, name)
    print(f"wrote {md}, {csv} (every column) and {page}")
    return 0


def narrow(table: Any, width: int = 100) -> str:
    """The table in at most ``width`` columns: the long "what changed" text first, then the rightmost
    columns are left out (the Markdown and CSV files have them all)."""
    shown = table.drop(columns=[c for c in table.columns if "changed" in str(c)])
    text = shown.to_string(index=False)
    while shown.shape[1] > 3 and max(map(len, text.splitlines()), default=0) > width:
        shown = shown.iloc[:, :-1]
        text = shown.to_string(index=False)
    return text


def detect_boxes(args: argparse.Namespace, command_line: str) -> int:
    if not 0.0 < args.threshold < 1.0:
        raise UserError(f"--threshold must be in (0, 1), but got {args.threshold}")
    # checked before the model runs: PIL refuses a size of 0 only when the first picture is drawn
    if not 16 <= args.max_side <= MAX_SIDE:
        raise UserError(f"--max-side must be a PNG size in 16..{MAX_SIDE:,} pixels, but got {args.max_side}")
    for flag, value in (("--held-out", args.held_out), ("--extras", args.extras)):
        if not 0 <= value <= MAX_PICTURES:
            raise UserError(f"{flag} must be a number of images in 0..{MAX_PICTURES:,}, but got {value}")
    _framework.start(args.verbose)
    from harness.data import load_dataset, resolve_data_dir, unread_data_dir
    from harness.detect import (
        ImageBoxes,
        find_boxes,
        load_run_model,
        read_image,
        resolve_model_run,
        run_config,
        write_boxes,
    )
    from harness.tasks import get_task, list_tasks
    from harness.tracking import Tracker

    tracker = Tracker(args.tracking_uri)
    run_id = resolve_model_run(tracker, args.run)
    cfg = run_config(tracker, run_id)
    if not get_task(cfg.task.name).finds_boxes:
        finders = ", ".join(n for n in list_tasks() if get_task(n).finds_boxes) or "none registered"
        raise UserError(
            f"run {run_id} is a {cfg.task.name} run; detect-boxes needs a run of a task that finds boxes ({finders})"
        )
    for warning in unread_data_dir([cfg.data.name], args.data_dir):
        print(warning, file=sys.stderr)
    data = load_dataset(cfg.data, args.data_dir)
    model = load_run_model(tracker, run_id)
    held = data.eval_images  # type: ignore[attr-defined]
    pictures = [(held.names[i], held.images[i], held.boxes[i]) for i in range(min(args.held_out, len(held.names)))]
    data_dir = resolve_data_dir(args.data_dir)
    if args.extras:  # the dataset's own unannotated images, where it has some
        pictures += [(p.name, read_image(p), None) for p in cfg.data.extra_images(data_dir)[: args.extras]]
    items = []
    for name, image, truth in pictures:
        found, scores = find_boxes(model, image, cfg, args.threshold)
        items.append(ImageBoxes(name, image, truth, found, scores))
        print(f"{name}: {len(found)} boxes found" + ("" if truth is None else f", {len(truth)} true"))
    run = tracker.client.get_run(run_id)
    out_dir = run_dir(Path(args.out), run.data.tags.get("mlflow.runName", run_id[:8]))
    summary = write_boxes(items, out_dir, run, cfg, args.threshold, command_line, args.max_side)
    tracker.client.log_artifacts(run_id, str(out_dir), "detect_boxes")
    print(f"wrote {summary.md} and {summary.html.name}")
    return 0


def runs_clean(args: argparse.Namespace) -> int:
    import os

    from harness.studies import STORAGE_ENV, fail_lost_trials, find_storages
    from harness.tracking import Tracker, sweep

    tracker = Tracker(args.tracking_uri)
    storages = find_storages(tracker, args.storage or os.environ.get(STORAGE_ENV) or None)  # bad --storage: now
    orphans = sweep(tracker.client, dry_run=args.dry_run)
    for o in orphans:
        if o.ended:
            action = "ended KILLED"
        elif args.dry_run and o.owner.endswith(f" on {socket.gethostname()}"):
            action = "would end KILLED"
        else:
            action = "left alone (another host's run)"
        print(f"{action}: run {o.run_id} ({o.experiment}: {o.name}), {o.owner}")
    if not args.dry_run:
        print(f"{sum(o.ended for o in orphans)} run(s) ended KILLED in {tracker.display_uri}")
    for url in storages.urls:  # Optuna's side: the trials of lost workers
        lost = fail_lost_trials(url, tracker, dry_run=args.dry_run)
        for t in lost:
            action = f"ended FAIL, {t.outcome}" if t.outcome else "would end FAIL"
            print(f"{action}: trial {t.number} of study {t.study} in {t.storage}, {t.owner} is gone")
        if not args.dry_run:
            print(f"{len(lost)} Optuna trial(s) ended FAIL in {redact_uri(url)}")
    for server in storages.servers:
        print(f"not checked: Optuna storage {server} (a database server); give it with --storage")
    if args.dry_run:
        print("dry run: nothing changed")
    return 0


def detect_scan(args: argparse.Namespace, command_line: str) -> int:
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
    _framework.start(args.verbose)
    tracker = Tracker(args.tracking_uri)
    run_id = resolve_model_run(tracker, args.run)
    model = load_run_model(tracker, run_id)
    run = tracker.client.get_run(run_id)
    name = run.data.tags.get("mlflow.runName", run_id[:8])
    out_dir = run_dir(Path(args.out), name)
    print(f"model: run {run_id} ({name})")
    results = []
    for path, image in images.items():
        boxes = scan(model, image, settings)
        picture, js = write_outputs(path, image, boxes, settings, run_id, out_dir)
        tracker.client.log_artifact(run_id, str(picture), "detect_scan")
        tracker.client.log_artifact(run_id, str(js), "detect_scan")
        tracker.client.log_metric(run_id, f"detect_scan/{path.stem}", len(boxes))
        results.append(ScanResult(path, image.shape[0], image.shape[1], tuple(boxes)))
        print(f"{path}: {len(boxes)} detections -> {picture}")
    summary = write_summary(out_dir, run, results, settings, command_line)
    for file in (summary.md, summary.html, summary.csv):
        tracker.client.log_artifact(run_id, str(file), "detect_scan")
    print(f"wrote {summary.md} and {summary.html.name}")
    return 0


def run_dir(out: Path, run_name: str) -> Path:
    """A run's folder under ``--out``: its name comes from the store (any text), so it is encoded, not refused."""
    return safe_child(out, encode_name(run_name), what="run name")
