"""(e, part 2) What might make YOLO train faster on this CPU, each measured rather than assumed.

Every candidate trains the same rung, model and batch as the first part of (e) through
``harness.train.train``, in a fresh process of its own: oneDNN and TensorFlow's thread pools are
fixed when TensorFlow starts, so each candidate gets its own interpreter and environment. Runs
interleave the candidates (default, xla, ..., default, xla, ...) so that a slow spell of a shared
machine hits all of them alike; the rate is the run's steady tiles/s (warm-up, XLA compilation
included, excluded). Channels-last (NHWC) is not a candidate: it is TensorFlow's layout on a CPU and
the one harness already uses.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.config import Config

Progress = Callable[[str], None]
TARGET = 1.30  # issue 23: YOLO training +30% in tiles/s for the same model and batch
MIN_REPEATS = 3  # fewer runs per candidate: rates are shown, no candidate is called faster or slower
# environment variables a candidate sets: removed for the others, so that the parent's own do not leak in
_TF_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    what: str
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    needs_bf16: bool = False  # only where the CPU computes bfloat16 natively


CANDIDATES = (
    Candidate("default", "TensorFlow's defaults: oneDNN on, thread pools sized to the cores, float32, no XLA"),
    Candidate("xla", "XLA: train and eval steps compiled with jit_compile", overrides={"jit_compile": True}),
    Candidate("bf16", "mixed_bfloat16: bfloat16 compute, float32 variables", {}, {"precision": "mixed_bfloat16"}, True),
    Candidate(
        "onednn-off", "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0): TensorFlow's own kernels", {"TF_ENABLE_ONEDNN_OPTS": "0"}
    ),
    Candidate(
        "inter-op-1",
        "one inter-op thread (TF_NUM_INTEROP_THREADS=1): ops one at a time, each on every core",
        {"TF_NUM_INTEROP_THREADS": "1"},
    ),
    Candidate(
        "intra-op-1",
        "one intra-op thread (TF_NUM_INTRAOP_THREADS=1): each op on one core, ops side by side",
        {"TF_NUM_INTRAOP_THREADS": "1"},
    ),
)
QUICK = ("default", "xla")  # quick mode checks that the children run, on synthetic scenes


def cpu_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16), from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def measure_candidates(
    cfg: Config, data_dir: str | Path | None, repeats: int, quick: bool, progress: Progress
) -> dict[str, Any]:
    """Each candidate's steady tiles/s training ``cfg`` (with the candidate's overrides) in a process of its own,
    ``repeats`` interleaved runs each; quick mode runs two candidates only."""
    from harness.config import apply_overrides
    from harness.errors import RunFailed
    from harness.procs import Supervisor

    bf16 = cpu_bf16()
    chosen = [c for c in CANDIDATES if (not quick or c.name in QUICK) and (bf16 or not c.needs_bf16)]
    skipped = [c.name for c in CANDIDATES if c.needs_bf16 and not bf16]
    progress(
        f"    candidates: {', '.join(c.name for c in chosen)}; {repeats} interleaved run(s) each, a process per run"
        + (f"; skipped (no bfloat16 on this CPU): {', '.join(skipped)}" if skipped else "")
    )
    rates: dict[str, list[float]] = {c.name: [] for c in chosen}
    with tempfile.TemporaryDirectory(prefix="harness-bench-yolo-") as tmp:
        for r in range(repeats):
            for c in chosen:
                spec = Path(tmp) / f"{c.name}-{r}.json"
                out = spec.with_suffix(".out.json")
                log = spec.with_suffix(".log")
                run_cfg = apply_overrides(cfg, dict(c.overrides), f"YOLO candidate {c.name}")
                spec.write_text(json.dumps({"config": run_cfg.to_dict(), "data_dir": data_dir}), encoding="utf-8")
                env = {k: v for k, v in os.environ.items() if k not in _TF_ENV} | dict(c.env)
                argv = [sys.executable, "-m", "harness.bench._yolo_candidates", str(spec), str(out)]
                with Supervisor() as children:
                    children.start(c.name, argv, env=env, log=log)
                    code = children.wait()[c.name]
                if code != 0 or not out.is_file():
                    tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.is_file() else ""
                    raise RunFailed(f"bench (e): YOLO candidate {c.name} exited {code}; its log ends:\n{tail}")
                rate = float(json.loads(out.read_text(encoding="utf-8"))["examples_per_s"])
                rates[c.name].append(rate)
                progress(f"    run {r + 1}/{repeats} {c.name:<12} {rate:7.1f} tiles/s")
    return summarise(rates, repeats, cfg.run.iterations, skipped)


def summarise(rates: Mapping[str, list[float]], repeats: int, steps: int, skipped: list[str]) -> dict[str, Any]:
    """Per candidate (``rates`` in run order, ``default`` among them): median, ratio to the default's median,
    and whether every run was beyond every default run (with at least ``MIN_REPEATS`` runs each)."""
    what = {c.name: c.what for c in CANDIDATES}
    default = statistics.median(rates["default"])
    comparable = repeats >= MIN_REPEATS
    rows: list[dict[str, Any]] = []
    for name, runs in rates.items():
        median = statistics.median(runs)
        rows.append(
            {
                "name": name,
                "what": what[name],
                "tiles_per_s": list(runs),
                "median": median,
                "ratio": median / default if default else float("nan"),
                # 3 runs each cannot give a rank test p < 0.05; "clearly" = every run beyond every default run
                "clearly_faster": comparable and name != "default" and min(runs) > max(rates["default"]),
                "clearly_slower": comparable and name != "default" and max(runs) < min(rates["default"]),
            }
        )
    best = max(rows, key=lambda row: row["ratio"])
    return {
        "repeats": repeats,
        "steps": steps,
        "rows": rows,
        "skipped": skipped,
        "target": TARGET,
        "best": best["name"],
    }


def render_candidates(c: dict[str, Any]) -> list[str]:
    lines = [
        f"Candidates for faster YOLO training on this CPU, each in a fresh process (oneDNN and the thread pools "
        f"are set when TensorFlow starts), {c['repeats']} interleaved run(s) of {c['steps']} steps each, steady "
        "tiles/s (after the warm-up and any compilation) of the same rung, model and batch as above. "
        "Channels-last (NHWC) is TensorFlow's CPU layout and already harness's.",
        "",
        "| candidate | what | tiles/s (median) | every run | vs default | verdict |",
        "|---|---|---:|---|---:|---|",
    ]
    for row in c["rows"]:
        verdict = (
            "(baseline)"
            if row["name"] == "default"
            else f"fewer than {MIN_REPEATS} runs: not compared"
            if c["repeats"] < MIN_REPEATS
            else "faster in every run"
            if row["clearly_faster"]
            else "slower in every run"
            if row["clearly_slower"]
            else "runs overlap the default's: no difference shown"
        )
        runs = ", ".join(f"{v:.1f}" for v in row["tiles_per_s"])
        lines.append(
            f"| {row['name']} | {row['what']} | {row['median']:.1f} | {runs} | {row['ratio']:.2f}× | {verdict} |"
        )
    if c["skipped"]:
        lines += ["", f"Not measured (no bfloat16 instructions on this CPU): {', '.join(c['skipped'])}."]
    winners = [r for r in c["rows"] if r["clearly_faster"] and r["ratio"] >= c["target"]]
    best = next(r for r in c["rows"] if r["name"] == c["best"])
    lines += [
        "",
        (
            f"**YOLO training +30%: met** by {', '.join(r['name'] for r in winners)}."
            if winners
            else f"**YOLO training +30% (target ≥ {c['target']:.2f}× the default): NOT met**; "
            + (
                "no candidate's median beat the default's."
                if best["name"] == "default"
                else f"the best median, {best['name']}'s, is {best['ratio']:.2f}× the default's tiles/s."
            )
        ),
        "",
    ]
    return lines


def _child(spec_path: str, out_path: str) -> None:
    """One candidate run, in its own process: its config, trained once. It ends with the bench process,
    however that dies (kill -9 included): nothing else would stop a child in a session of its own."""
    from harness import lifeline

    lifeline.watch_supervisor(lambda pid: os._exit(3))  # a measurement for nobody: no cleanup to do
    from harness.config import config_from_sections
    from harness.data import load_dataset
    from harness.train import train

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    cfg = config_from_sections(spec["config"], "YOLO candidate")
    data = load_dataset(cfg.data, spec["data_dir"])
    final = train(cfg, data).final
    Path(out_path).write_text(json.dumps({"examples_per_s": final["examples_per_s"]}), encoding="utf-8")


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
