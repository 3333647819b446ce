"""What each benchmark runs, in standard and in quick mode, and the sections ``--only`` chooses from.

Imported before TensorFlow: a bad ``--only`` answers at once."""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any

from harness.errors import UserError


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    quick: bool
    repeats: int  # timed A/B pairs of the overhead benchmark, after one untimed warm-up of each
    overhead_rung: str
    overhead: dict[str, Any]  # config overrides of the overhead rung
    numpy_row: bool  # also time plain Keras fed numpy arrays (informative)
    throughput_rung: str
    throughput: dict[str, Any]
    tta_experiment: str  # section (c): a `bench hardware` experiment with an accuracy target
    tta_repeats: int  # its time-to-accuracy runs (seeds 0..n-1); the median is the result
    tta_target_s: float = 8.0  # issue 23: MNIST to 99.0% in under 8 s on this CPU


def _bench_yaml() -> dict[str, Any]:
    """bench.yaml beside this module: what the benchmark runs is data (it names ladders and rungs)."""
    from harness.config import load_mapping

    text = resources.files("harness.bench").joinpath("bench.yaml").read_text(encoding="utf-8")
    return load_mapping(text, "harness/bench/bench.yaml", "bench settings")


def bench_ladder() -> str:
    """The ladder whose rungs and dataset sections (a) and (b) run."""
    return str(_bench_yaml()["ladder"])


def bench_settings(quick: bool) -> BenchSettings:
    mode = "quick" if quick else "standard"
    return BenchSettings(quick=quick, **_bench_yaml()[mode])


# section key in bench.json -> the letters and names `--only` accepts
SECTIONS: dict[str, tuple[str, ...]] = {
    "overhead": ("a", "overhead"),
    "throughput": ("b", "throughput"),
    "time_to_accuracy": ("c", "time-to-accuracy"),
    "study_overhead": ("d", "study-overhead"),
    "yolo": ("e", "yolo"),
    "replay": ("f", "replay"),
}


MAX_STUDY_TRIALS = 100_000


def parse_study_trials(text: str | None) -> tuple[int, ...] | None:
    """``--study-trials 10,100`` -> the study sizes of section (d); None -> the mode's own."""
    if text is None:
        return None
    try:
        counts = tuple(int(t) for t in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1 or max(counts) > MAX_STUDY_TRIALS:
        raise UserError(f"--study-trials expects a comma list of integers 1..{MAX_STUDY_TRIALS}, but got {text!r}")
    return tuple(sorted(set(counts)))


def parse_sections(text: str | None) -> tuple[str, ...]:
    """``--only a,d`` (or names) -> section keys, in report order; None -> every section."""
    if not text:
        return tuple(SECTIONS)
    names = {alias: key for key, aliases in SECTIONS.items() for alias in aliases}
    asked = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in asked if t not in names]
    if unknown or not asked:
        valid = ", ".join(f"{a[0]} ({a[1]})" for a in SECTIONS.values())
        raise UserError(f"--only expects a comma list of sections {valid}, but got {text!r}")
    chosen = {names[t] for t in asked}
    return tuple(key for key in SECTIONS if key in chosen)
