"""``harness bench hardware``: throughput, time to accuracy and cost of experiments on each backend.

Every measurement is one MLflow run under one parent run (experiment ``bench-hardware``), made by
the same executor as ladder rungs; ``harness report bench-hardware`` (report/_hardware.py) reads
them back into the tables. Per framework x experiment x backend x batch size, ``repeats`` times (Keras has
one framework per process: a framework other than this process's is measured by a child process started on
it, ``_elsewhere``, into the same parent run):

- *throughput*: the first ``fit`` execution (tracing, compilation, the first steps) is timed apart
  as ``bench_compile_s``; then ``windows`` timed windows of ``window_steps`` steps, one compiled
  execution (tf.function, jax.jit) each. A run's rate is the median window; its peak memory is the
  device's peak (GPU) or the process's resident memory sampled at every window end (CPU).
- *time to accuracy*, for experiments with a target (DAWNBench's rule): the clock starts before
  the dataset is read and stops at the first evaluation at or above the target, evaluation time
  included. The dataset is read again, timed, for every repetition.

Cost is time x the backend's price (harness/hardware/prices.yaml).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import keras

from harness import _framework, interrupts
from harness.config import Config, apply_overrides, config_from, load_mapping, parse_backends, strict_keys
from harness.data import load_dataset
from harness.errors import ConfigError, RunFailed, UserError
from harness.executor import Executor
from harness.hardware import gpu_count, gpu_peak_mb, host_devices_flag, host_devices_needed, reset_gpu_peak
from harness.ladders import load_ladder
from harness.procs import Supervisor
from harness.tasks import Task, get_task
from harness.tracking import BenchHardwareRecord, ProgressSink, RunHandle, Tracker, environment_tags
from harness.train import rss_mb

EXPERIMENT = "bench-hardware"
Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One row family of the benchmark: a config, how to time it, and its accuracy target."""

    name: str
    what: str
    unit: str  # what one example is, for the report: images, tiles
    window_steps: int  # steps per timed window on a CPU (GPUs and TPUs run 10 times more)
    ladder: str = ""  # the config: a ladder's rung at a scale, else ``overrides`` alone
    rung: str = ""
    scale: str = "standard"
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    target: float | None = None  # time to this test value of the task's primary metric; None: throughput only
    quick: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # --quick: a tiny version

    def config(self, quick: bool) -> Config:
        extra = {**self.overrides, **(self.quick if quick else {})}
        if not self.ladder:
            return config_from(extra, f"bench experiment {self.name}")
        return load_ladder(self.ladder).select(self.rung).configs(self.scale, extra)[0][1]


def load_experiments(text: str, source: str) -> dict[str, Experiment]:
    """The experiments of a YAML mapping name -> fields (``experiments.yaml`` beside this module)."""
    fields = [f.name for f in dataclasses.fields(Experiment) if f.name != "name"]
    out: dict[str, Experiment] = {}
    for name, raw in load_mapping(text, source, "experiments").items():
        where = f"{source}: experiment {name}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping of {', '.join(fields)}, but got {raw!r}")
        strict_keys(raw, fields, where)
        out[str(name)] = Experiment(name=str(name), **raw)
    return out


# which experiments are measured is data: they name ladders, datasets and models (this module names none)
EXPERIMENTS: dict[str, Experiment] = load_experiments(
    resources.files("harness.bench").joinpath("experiments.yaml").read_text(encoding="utf-8"),
    "harness/bench/experiments.yaml",
)


def parse_experiments(text: str | None) -> tuple[Experiment, ...]:
    """``--experiments mnist-bn,resnet50`` -> experiments, in the order given; None -> all."""
    if not text:
        return tuple(EXPERIMENTS.values())
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown or not names:
        raise UserError(f"--experiments expects a comma list of {', '.join(EXPERIMENTS)}, but got {text!r}")
    return tuple(EXPERIMENTS[n] for n in dict.fromkeys(names))


def parse_batch_sizes(text: str | None) -> tuple[int | None, ...]:
    """``--batch-sizes 32,256`` -> sizes; None -> (None,): each experiment's own batch size."""
    if not text:
        return (None,)
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1 or max(sizes) > 65536:
        raise UserError(f"--batch-sizes expects a comma list of integers 1..65536, but got {text!r}")
    return tuple(dict.fromkeys(sizes))


def default_backends() -> tuple[str, ...]:
    """What this machine has: the CPU, then one GPU and all GPUs where the framework sees them."""
    gpus = gpu_count()
    return ("cpu", *(("gpu",) if gpus else ()), *(("multi-gpu",) if gpus > 1 else ()))


@dataclasses.dataclass(frozen=True)
class HardwareRequest:
    experiments: tuple[Experiment, ...]
    backends: tuple[str, ...]
    batch_sizes: tuple[int | None, ...] = (None,)
    precision: str = "float32"
    repeats: int = 5
    windows: int = 5
    quick: bool = False
    data_dir: str | None = None
    prices: str | None = None
    command: str = ""
    throughput: bool = True  # False: time to accuracy only (experiments with a target)
    frameworks: tuple[str, ...] = ()  # Keras' frameworks, each measured in turn; () the process's own

    def __post_init__(self) -> None:
        for key in ("repeats", "windows"):
            value = getattr(self, key)
            if not 1 <= value <= 1000:
                raise ConfigError(f"{key} must be 1..1000, but got {key}={value!r}")

    def to_json(self) -> str:
        """The request for a process on another framework (experiments by name: they are this module's)."""
        fields = dataclasses.asdict(self)
        fields["experiments"] = [e.name for e in self.experiments]
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> HardwareRequest:
        fields = json.loads(text)
        fields["experiments"] = tuple(EXPERIMENTS[n] for n in fields["experiments"])
        for key in ("backends", "batch_sizes", "frameworks"):
            fields[key] = tuple(fields[key])
        return cls(**fields)


class WindowClock(keras.callbacks.Callback):
    """Times each ``fit`` execution: the first is compilation + warm-up, every later one a window.

    ``shown``: a progress sink told the step and seconds at the end of each of the first ``executions - 1``
    executions (the last one's line comes from the run's evaluation); what it costs (a bar update, a line
    at most every few seconds) is small against a window.
    """

    def __init__(self, gpu: bool, shown: ProgressSink | None = None, steps: int = 1, executions: int = 0) -> None:
        super().__init__()
        self.gpu = gpu
        self.ends: list[float] = []
        self.rss_mb: list[float] = []
        self.started = 0.0
        self.shown, self.steps, self.executions = shown, steps, executions

    def on_train_begin(self, logs: Any = None) -> None:
        if self.gpu:
            reset_gpu_peak()
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if (batch + 1) % self.steps:  # one call per execution of ``steps`` steps, or per step (PyTorch)
            return
        self.ends.append(time.perf_counter())
        self.rss_mb.append(rss_mb())
        if self.shown is not None and len(self.ends) < self.executions:
            self.shown.log_metrics(len(self.ends) * self.steps, {"wall_s": self.ends[-1] - self.started})

    def summary(self, steps: int, batch_size: int, price: float | None) -> dict[str, float]:
        if len(self.ends) < 2:
            raise RuntimeError(f"the benchmark saw {len(self.ends)} executions; it needs a warm-up and a window")
        windows = [b - a for a, b in zip(self.ends, self.ends[1:], strict=False)]
        rates = sorted(steps * batch_size / w for w in windows)
        rate = statistics.median(rates)
        peak = gpu_peak_mb() if self.gpu else max(self.rss_mb)
        out = {
            "bench_examples_per_s": rate,
            "bench_examples_per_s_window_min": rates[0],
            "bench_examples_per_s_window_max": rates[-1],
            "bench_windows": float(len(windows)),
            "bench_step_ms": 1000 * batch_size / rate,
            "bench_compile_s": self.ends[0] - self.started,
            "bench_peak_memory_mb": peak,
        }
        if price is not None:
            out["bench_usd_per_million_examples"] = price / 3600 * 1e6 / rate
        return out


def _tags(exp: Experiment, measure: str, backend: str, batch: int, repeat: int, cfg: Config) -> dict[str, str]:
    return {
        **BenchHardwareRecord().to_tags(),
        "bench.experiment": exp.name,
        "bench.what": exp.what,
        "bench.unit": exp.unit,
        "bench.measure": measure,
        "bench.backend": backend,
        "bench.batch_size": str(batch),
        "bench.precision": cfg.run.precision,
        "bench.repeat": str(repeat),
        "bench.target": "" if exp.target is None else str(exp.target),
        "bench.config": f"{exp.ladder}:{exp.rung}@{exp.scale}" if exp.ladder else "overrides",
    }


@dataclasses.dataclass(frozen=True)
class Bench:
    """What every measurement of one invocation shares: the executor, the MLflow experiment and parent."""

    executor: Executor
    exp_id: str
    parent: RunHandle
    request: HardwareRequest

    def run(self, name: str, cfg: Config, tags: dict[str, str], **kwargs: Any) -> None:
        self.executor.run(self.exp_id, name, cfg, tags, parent=self.parent, group=EXPERIMENT, **kwargs)


def _where(cfg: Config) -> str:
    """A measurement's backend, and its framework where it is not the default: ``cpu``, ``jax-gpu``."""
    framework = "" if cfg.run.framework == _framework.DEFAULT else f"{cfg.run.framework}-"
    return framework + cfg.run.backend


def _shown(name: str, cfg: Config) -> ProgressSink:
    """A measurement's progress as a ladder rung shows its own: a bar on a terminal, plain lines elsewhere."""
    task = get_task(cfg.task.name)
    metric = task.primary
    maximize = task.directions.get(metric, "maximize") == "maximize"
    return ProgressSink(name, cfg.run.iterations, f"test_{metric}", maximize, metric in task.percent)


def _throughput(bench: Bench, exp: Experiment, cfg: Config, repeat: int) -> dict[str, float]:
    backend = cfg.run.backend
    place = bench.executor.placement(backend, cfg.run.framework)
    steps = exp.window_steps * (1 if place.hardware.backend == "cpu" else 10)
    iterations = steps * (1 + bench.request.windows)
    cfg = apply_overrides(
        cfg,
        {"iterations": iterations, "eval_every": iterations, "steps_per_execution": steps, "seed": repeat},
        "bench hardware",
    )
    name = f"{exp.name}-{_where(cfg)}-b{cfg.run.batch_size}-throughput-r{repeat}"
    shown = _shown(name, cfg)
    clock = WindowClock(place.hardware.backend in ("gpu", "multi-gpu"), shown, steps, 1 + bench.request.windows)
    found: dict[str, float] = {}

    def add(final: dict[str, float]) -> None:
        found.update(clock.summary(steps, cfg.run.batch_size, place.price_per_hour))
        final.update(found)

    tags = _tags(exp, "throughput", backend, cfg.run.batch_size, repeat, cfg)
    bench.run(name, cfg, tags, extra_sinks=[shown], on_final=add, callbacks=[clock])
    return found


class StopAtTarget(keras.callbacks.Callback):
    """Stops ``fit`` at the first evaluation whose test value of the task's primary metric reaches ``target``."""

    def __init__(self, task: Task, target: float) -> None:
        super().__init__()
        self.task, self.target = task, target

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        value = self.task.row(logs or {}).get(self.task.target_key())
        if value is not None and self.task.reached(value, self.target):
            self.model.stop_training = True


class TargetSink:
    """A metric sink that keeps the first evaluation at or above the target: its step and the
    seconds since ``train`` began (the same clock as the run's ``wall_s``)."""

    def __init__(self, metric: str, target: float, maximize: bool = True) -> None:
        self.metric, self.target, self.maximize = metric, target, maximize
        self.step: int | None = None
        self.wall_s = 0.0

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        value = metrics.get(self.metric, float("nan"))  # NaN reaches no target
        if self.step is None and (value >= self.target if self.maximize else value <= self.target):
            self.step, self.wall_s = step, float(metrics["wall_s"])

    def close(self) -> None:
        pass


def _time_to_accuracy(bench: Bench, exp: Experiment, cfg: Config, repeat: int) -> dict[str, float]:
    assert exp.target is not None
    price = bench.executor.placement(cfg.run.backend, cfg.run.framework).price_per_hour
    cfg = cfg.with_seed(repeat)
    t = time.perf_counter()
    load_dataset(cfg.data, bench.request.data_dir)  # the clock starts before the data is read
    load_s = time.perf_counter() - t
    task = get_task(cfg.task.name)
    maximize = task.directions.get(task.primary, "maximize") == "maximize"
    hit = TargetSink(task.target_key(), exp.target, maximize)
    found: dict[str, float] = {"bench_data_load_s": load_s, "bench_target": exp.target}

    def on_final(final: dict[str, float]) -> None:
        found["bench_reached"] = float(hit.step is not None)
        if hit.step is not None:
            found["bench_step_at_target"] = float(hit.step)
            found["bench_time_to_target_s"] = load_s + hit.wall_s
            if price is not None:
                found["bench_usd_to_target"] = price / 3600 * found["bench_time_to_target_s"]
        final.update(found)

    name = f"{exp.name}-{_where(cfg)}-b{cfg.run.batch_size}-tta-r{repeat}"
    tags = _tags(exp, "time-to-accuracy", cfg.run.backend, cfg.run.batch_size, repeat, cfg)
    shown = _shown(name, cfg)
    bench.run(name, cfg, tags, extra_sinks=[hit, shown], on_final=on_final, callbacks=[StopAtTarget(task, exp.target)])
    return found


def plan(request: HardwareRequest) -> list[tuple[Experiment, Config]]:
    """Every measured config, framework by framework (each framework's runs share a process), then
    experiment x backend x batch size."""
    configs: list[tuple[Experiment, Config]] = []
    for framework in request.frameworks or (_framework.current(),):
        for exp in request.experiments:
            base = exp.config(request.quick)
            for backend in request.backends:
                for batch in request.batch_sizes:
                    over: dict[str, Any] = {"backend": backend, "precision": request.precision, "framework": framework}
                    if batch is not None:
                        over["batch_size"] = batch  # the learning rate stays as configured
                    where = "--frameworks/--backends/--batch-sizes/--precision"
                    configs.append((exp, apply_overrides(base, over, where)))
    return configs


def _measurements(request: HardwareRequest, configs: Sequence[tuple[Experiment, Config]]) -> int:
    return sum(request.repeats * (int(request.throughput) + (exp.target is not None)) for exp, _ in configs)


def run_hardware(request: HardwareRequest, tracker: Tracker, progress: Progress = print) -> str:
    """Every framework x experiment x backend x batch size, ``repeats`` times; returns the parent run id.
    The runs of this process's framework are measured here, each other framework's in a child process
    started on it (Keras has one framework per process), under the same parent run."""
    configs = plan(request)
    executor = Executor(tracker, request.data_dir, request.prices, log_models=False)
    executor.prepare([cfg for _, cfg in configs])  # data and backends checked before any run exists
    for orphan in tracker.end_orphans():
        progress(f"ended KILLED: run {orphan.run_id} ({orphan.experiment}: {orphan.name}); {orphan.owner} is gone")
    exp_id = tracker.experiment_id(EXPERIMENT)
    frameworks = list(dict.fromkeys(cfg.run.framework for _, cfg in configs))
    parent_tags = {
        **environment_tags(),
        **BenchHardwareRecord(command=request.command).to_tags(),
        "bench.experiments": ",".join(e.name for e in request.experiments),
        "bench.backends": ",".join(request.backends),
        "bench.frameworks": ",".join(frameworks),
        "bench.quick": str(request.quick).lower(),
        "bench.repeats": str(request.repeats),
        "bench.windows": str(request.windows),
    }
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M")
    with tracker.run(exp_id, f"bench-hardware-{stamp}", parent_tags) as parent:
        progress(f"MLflow parent run {parent.run_id} in {tracker.display_uri}")
        total, done = _measurements(request, configs), 0
        for framework in frameworks:
            mine = [(exp, cfg) for exp, cfg in configs if cfg.run.framework == framework]
            if framework == _framework.current():
                measure(Bench(executor, exp_id, parent, request), mine, done, total, progress)
            else:
                alone = dataclasses.replace(request, frameworks=(framework,))
                _measure_elsewhere(alone, ElsewhereJob(alone.to_json(), parent.run_id, exp_id, done, total), tracker)
            done += _measurements(request, mine)
    return parent.run_id


def measure(
    bench: Bench, configs: Sequence[tuple[Experiment, Config]], done: int, total: int, progress: Progress = print
) -> None:
    """The measurements of ``configs`` (all on this process's framework), numbered from ``done + 1`` of ``total``."""
    request = bench.request
    position = iter(range(done + 1, total + 1))

    def announce(exp: Experiment, cfg: Config, measure: str, repeat: int) -> None:
        progress(
            f"measurement {next(position)}/{total}: {exp.name}, {_where(cfg)}, batch {cfg.run.batch_size}, "
            f"{measure}, repetition {repeat + 1}/{request.repeats}"
        )

    for exp, cfg in configs:
        head = f"{exp.name} on {_where(cfg)}, batch {cfg.run.batch_size}"
        for repeat in range(request.repeats) if request.throughput else ():
            interrupts.check()
            announce(exp, cfg, "throughput", repeat)
            got = _throughput(bench, exp, cfg, repeat)
            progress(
                f"  {head}, rep {repeat + 1}/{request.repeats}: {got['bench_examples_per_s']:,.1f} {exp.unit}/s, "
                f"compile {got['bench_compile_s']:.1f} s, peak {got['bench_peak_memory_mb']:,.0f} MiB"
            )
        if exp.target is None:
            continue
        for repeat in range(request.repeats):
            interrupts.check()
            announce(exp, cfg, f"time to {exp.target:.2%}", repeat)
            got = _time_to_accuracy(bench, exp, cfg, repeat)
            reached = got.get("bench_time_to_target_s")
            progress(
                f"  {head}, time to {exp.target:.2%}, rep {repeat + 1}/{request.repeats}: "
                + (f"{reached:.1f} s" if reached is not None else "not reached")
            )


@dataclasses.dataclass(frozen=True)
class ElsewhereJob:
    """What the process measuring another framework needs (JSON; the tracking URI goes by environment)."""

    request: str  # HardwareRequest.to_json(), with the one framework
    parent_run_id: str
    experiment_id: str
    done: int
    total: int


def _measure_elsewhere(request: HardwareRequest, job: ElsewhereJob, tracker: Tracker) -> None:
    """``request``'s one framework, measured by ``python -m harness.bench._elsewhere`` started on it, under the
    job's parent run; its progress lines share this terminal. Ctrl-C stops it (its runs end KILLED)."""
    (framework,) = request.frameworks
    devices = max(host_devices_needed(b, framework) for b in request.backends)
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp, Supervisor() as children:
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(dataclasses.asdict(job)), encoding="utf-8")
        env = {**os.environ, _framework.ENV: framework, "MLFLOW_TRACKING_URI": tracker.uri}
        if devices > 1:  # JAX reads its CPU device count once, at start: cpu:N's measurements train in its process
            env["XLA_FLAGS"] = host_devices_flag(devices)
        children.start(framework, [sys.executable, "-m", "harness.bench._elsewhere", str(path)], env)
        code = children.wait()[framework]
    if code != 0:
        raise RunFailed(f"the measurements on {framework} (a process of its own) ended with exit code {code}")


def backends_arg(text: str | None) -> tuple[str, ...]:
    """``--backends cpu,gpu`` -> backends; None -> every backend this machine has."""
    return parse_backends(text) if text else default_backends()


__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "HardwareRequest",
    "backends_arg",
    "parse_batch_sizes",
    "parse_experiments",
    "run_hardware",
]
