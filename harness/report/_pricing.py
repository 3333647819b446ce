"""A replay priced on every row of a ``harness bench hardware`` run: samplers x hardware, with CIs.

A replayed trial costs the training time recorded on the landscape's backend. On another backend
the same trial takes that time x (throughput on the landscape's backend / throughput there), both
measured by ``bench hardware`` for one experiment, and it costs that time x the row's price.
Each replayed repeat is paired with one measured repetition of each row, drawn at random (seeded),
so a row's interval carries the bench's repetition noise as well as the sampler's.

Verdicts between rows come from the bench's own repetitions (n = its repeats), never from the
replayed repeats: scaling one set of repeats by a measured ratio adds no evidence about the ratio.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness import stats
from harness.errors import UserError
from harness.report._compare import CompareReport
from harness.report._core import children, md_code, md_text
from harness.tracking import Tracker

_SEED = 20240607  # the draw of one bench repetition per replayed repeat; fixed so reports rebuild the same


@dataclasses.dataclass(frozen=True)
class PriceOn:
    """Which bench to price a replay from: its run (None: the latest finished ``bench hardware`` run) and the
    experiment whose throughput the space's trials scale like (None: the bench's only one)."""

    bench_run: str | None = None
    experiment: str | None = None


@dataclasses.dataclass(frozen=True)
class HardwareRow:
    """One measured row of the bench: an experiment on a backend, batch size and precision."""

    backend: str
    device: str
    batch: str
    precision: str
    price_per_hour: float  # nan where the price is unknown
    examples_per_s: tuple[float, ...]  # one per repetition, in the order measured

    @property
    def label(self) -> str:
        return f"{self.backend}, batch {self.batch}, {self.precision}"


@dataclasses.dataclass
class Pricing:
    bench_run: str
    experiment: str
    reference: HardwareRow  # the row measured on the landscape's backend: every time is scaled from it
    rows: list[HardwareRow]
    table: pd.DataFrame  # one row per sampler x hardware row
    tests: dict[str, list[stats.PairTest]]  # measure -> pairs of hardware rows, on the bench's repetitions
    notes: list[str]


def bench_rows(tracker: Tracker, run_id: str | None, experiment: str | None) -> tuple[str, str, list[HardwareRow]]:
    """(bench run id, experiment, its throughput rows) of a finished ``bench hardware`` run."""
    from harness.report._hardware import find_parent

    parent = find_parent(tracker, run_id)
    frame = children(tracker, parent)
    frame = frame[(frame["status"] == "FINISHED") & (frame.get("tags.bench.measure") == "throughput")]
    bench_id = parent.info.run_id
    if frame.empty:
        raise UserError(f"bench hardware run {bench_id} has no finished throughput measurement")
    frame = frame.sort_values("start_time")
    measured = list(dict.fromkeys(frame["tags.bench.experiment"]))
    if experiment is None:
        if len(measured) > 1:
            raise UserError(
                f"bench hardware run {bench_id} measured {', '.join(measured)}: name the one whose throughput the "
                "space's trials scale like with --hardware-experiment"
            )
        experiment = measured[0]
    if experiment not in measured:
        raise UserError(
            f"--hardware-experiment {experiment!r}: bench hardware run {bench_id} measured {', '.join(measured)}"
        )
    frame = frame[frame["tags.bench.experiment"] == experiment]
    keys = ["tags.bench.backend", "tags.device", "tags.bench.batch_size", "tags.bench.precision"]
    rows = []
    for (backend, device, batch, precision), g in frame.groupby(keys, sort=False):
        price = pd.to_numeric(g["tags.price_per_hour"], errors="coerce").iloc[0]
        rates = tuple(float(v) for v in g["metrics.bench_examples_per_s"] if np.isfinite(v) and v > 0)
        if rates:
            rows.append(HardwareRow(backend, device, str(batch), precision, float(price), rates))
    return bench_id, experiment, rows


def price_replay(tracker: Tracker, comparison: CompareReport, on: PriceOn, landscape_backend: str) -> Pricing:
    """Each sampler's time and dollars to the target on every row of the bench, scaled from the landscape's
    backend."""
    bench_id, experiment, rows = bench_rows(tracker, on.bench_run, on.experiment)
    return price_rows(comparison, bench_id, experiment, rows, landscape_backend)


def price_rows(
    comparison: CompareReport,
    bench_id: str,
    experiment: str,
    rows: Sequence[HardwareRow],
    landscape_backend: str,
) -> Pricing:
    at_home = [r for r in rows if r.backend == landscape_backend]
    if not at_home:
        raise UserError(
            f"bench hardware run {bench_id} measured {experiment} on {', '.join(sorted({r.backend for r in rows}))} "
            f"but not on {landscape_backend}, the backend the landscape was recorded on: its times can only be "
            f"scaled from a row measured there (run `harness bench hardware --backends {landscape_backend},...`)"
        )
    reference = at_home[0]  # the first measured: the experiment's own batch size and precision
    rng = np.random.default_rng(_SEED)
    studies = comparison.studies
    table = []
    for sampler in comparison.meta["samplers"]:
        s = studies[studies["sampler"] == sampler]
        if s.empty:
            continue
        to_target = s["time_to_target_s"].to_numpy(dtype=float)
        total = s["total_time_s"].to_numpy(dtype=float)
        for row in rows:
            # one repetition of the reference row and one of this row per replayed repeat
            ref = rng.choice(np.asarray(reference.examples_per_s), size=len(s))
            here = rng.choice(np.asarray(row.examples_per_s), size=len(s))
            factor = ref / here
            time_to = stats.censored_summary((to_target * factor).tolist(), (total * factor).tolist())
            per_s = row.price_per_hour / 3600
            usd_to = stats.censored_summary((to_target * factor * per_s).tolist(), (total * factor * per_s).tolist())
            table.append(
                {
                    "sampler": sampler,
                    "hardware": row.label,
                    "device": row.device,
                    "$/h": "unknown" if math.isnan(row.price_per_hour) else f"{row.price_per_hour:g}",
                    f"time vs {reference.backend}, median [min, max]": _spread(factor),
                    "reached target": f"{time_to.reached}/{time_to.n}",
                    "time to target (s, KM median [95% CI])": _km(time_to, 1),
                    "$ to target (KM median [95% CI])": "unknown" if math.isnan(per_s) else _km(usd_to, 5),
                    "time per study (s, mean)": f"{np.mean(total * factor):.1f}",
                }
            )
    tests = _row_tests(rows)
    notes = _notes(bench_id, experiment, reference, rows, tests, landscape_backend)
    return Pricing(bench_id, experiment, reference, list(rows), pd.DataFrame(table), tests, notes)


def _spread(values: np.ndarray) -> str:
    return f"{np.median(values):.3g} [{np.min(values):.3g}, {np.max(values):.3g}]"


def _km(s: stats.CensoredSummary, digits: int) -> str:
    if math.isinf(s.median):
        return "not reached"
    ci = s.median_ci
    high = "∞" if math.isinf(ci.high) else f"{ci.high:.{digits}f}"
    return f"{s.median:.{digits}f} [{ci.low:.{digits}f}, {high}]"


SECONDS = "seconds per 1M examples"
DOLLARS = "$ per 1M examples"


def _row_tests(rows: Sequence[HardwareRow]) -> dict[str, list[stats.PairTest]]:
    """Seconds and dollars per 1M examples between rows: Mann-Whitney on the bench's repetitions (each
    a separate run, so unpaired), Holm across the pairs of each measure."""
    seconds = {r.label: {i: 1e6 / v for i, v in enumerate(r.examples_per_s)} for r in rows}
    dollars = {
        r.label: {i: 1e6 / v * r.price_per_hour / 3600 for i, v in enumerate(r.examples_per_s)}
        for r in rows
        if not math.isnan(r.price_per_hour)
    }
    return {
        measure: stats.pairwise(groups, higher_is_better=False, paired=False)
        for measure, groups in ((SECONDS, seconds), (DOLLARS, dollars))
        if len(groups) > 1
    }


def hardware_verdicts(pricing: Pricing) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "measure": measure,
                "a": t.a,
                "b": t.b,
                "n": f"{t.n_a} vs {t.n_b}",
                "test": t.test,
                "p (Holm)": stats.format_p(t.p_holm),
                "verdict": stats.describe_verdict(t),
            }
            for measure, family in pricing.tests.items()
            for t in family
        ]
    )


def _notes(
    bench_id: str,
    experiment: str,
    reference: HardwareRow,
    rows: Sequence[HardwareRow],
    tests: dict[str, list[stats.PairTest]],
    landscape_backend: str,
) -> list[str]:
    reps = sorted({len(r.examples_per_s) for r in rows})
    lines = [
        f"Priced from `harness bench hardware` run {md_code(bench_id)}, experiment {md_text(experiment)}: "
        f"{len(rows)} measured row(s), {'/'.join(str(n) for n in reps)} repetitions each. A replayed trial's "
        f"recorded time (on {md_text(landscape_backend)}) is scaled by the throughput of {md_text(reference.label)} "
        "over the row's, one measured repetition of each drawn per replayed repeat (seeded), so the intervals "
        "carry the bench's repetition noise too; its cost is the scaled time x the row's price",
        "This assumes the space's trials scale as the bench experiment does (evaluation and start-up included), "
        "and that a study runs its trials one after another on one machine of the row. The samplers' order is "
        "the same on every row: a row scales every sampler's times alike",
    ]
    if len(rows) < 2:
        lines.append("One row measured: nothing to compare between hardware")
        return lines
    for measure, label, most in ((SECONDS, "time", "fastest"), (DOLLARS, "cost", "cheapest")):
        family = tests.get(measure, [])
        names = list(dict.fromkeys([*(t.a for t in family), *(t.b for t in family)]))
        best = stats.winner(names, family)
        significant = [stats.describe_verdict(t) for t in family if t.significant]
        if best:
            lines.append(
                f"By {label} to the target, **{md_text(best)}** is significantly the {most} for every sampler (its "
                f"{measure} beat every other row's: Mann-Whitney on the bench's repetitions, Holm)"
            )
        elif significant:
            lines.append(
                f"By {label}: " + "; ".join(significant) + "; no row beats every other (the rest within noise)"
            )
        elif family and all(t.verdict == "not testable" for t in family):
            lines.append(f"By {label} to the target: not testable ({family[0].note}): no ordering claim between rows")
        elif family:
            lines.append(
                f"By {label} to the target: within noise (no significant difference in {measure} between rows)"
            )
        else:
            lines.append(f"By {label} to the target: not compared (a price is unknown)")
    return lines
