"""Samplers and pruners: Optuna's own, configured from a search space; no home-made versions.

Every trial draws with a seed derived from the study's seed and the trial number
(``SeedSequence([seed, number])``), so that a study proposes the same parameters
whichever worker runs which trial, and parallel workers never replay one random
sequence. The grid sampler keeps the study seed (it fixes the shuffled order of
the grid, which every worker must share). A worker keeps its TPE sampler from trial
to trial and only reseeds it (``SamplerSpec.for_trial``): a new one would infer the
search space again from every past trial, an O(trials) cost each trial.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import math
import warnings
from collections.abc import Mapping
from typing import Any

from harness.config import Config
from harness.errors import ConfigError
from harness.studies._space import PRUNERS, SAMPLERS, PrunerSpec, SearchSpace

_SAMPLER_CLASSES = {
    "grid": "GridSampler",
    "random": "RandomSampler",
    "tpe": "TPESampler",
    "gp": "GPSampler",
    "cmaes": "CmaEsSampler",
}
_PRUNER_CLASSES = {"none": "NopPruner", "median": "MedianPruner", "hyperband": "HyperbandPruner"}
_EXTRA_DEPENDENCY = {"gp": ("torch", "pip install torch"), "cmaes": ("cmaes", "pip install cmaes")}
_SET_BY_HARNESS = {"seed", "search_space"}
# Optuna options whose lower bound its constructors do not check (a bad value fails later, in every trial)
_MINIMUM = {"reduction_factor": 2, "interval_steps": 1, "n_ei_candidates": 1, "n_min_trials": 1}


def _plain_options(cls: type) -> dict[str, Any]:
    """Constructor options that take plain values (numbers, bools, strings), with their defaults."""
    out = {}
    for name, p in inspect.signature(cls).parameters.items():
        if name in _SET_BY_HARNESS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty or p.default is None or isinstance(p.default, bool | int | float | str):
            out[name] = None if p.default is inspect.Parameter.empty else p.default
    return out


def _checked_options(cls: type, options: Any, what: str, where: str) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {what} options, but got {options!r}")
    valid = _plain_options(cls)
    for key, value in options.items():
        if key not in valid:
            raise ConfigError(
                f"{where}: unknown {what} option {key!r}; {cls.__name__} takes: {', '.join(valid) or 'none'}"
            )
        if value is not None and not isinstance(value, bool | int | float | str):
            raise ConfigError(f"{where}: {what} option {key!r} expects a number, bool or string, but got {value!r}")
        _check_like_default(cls, key, value, valid[key], f"{where}: {what} option {key!r}")
    checked = {str(k): v for k, v in options.items()}
    _try_construct(cls, checked, f"{where}: {what} options")
    return checked


def _annotated_kinds(cls: type, key: str) -> set[str]:
    """The plain types an option's annotation allows: ``"int | None"`` -> {"int", "None"}."""
    annotation = inspect.signature(cls).parameters[key].annotation
    if annotation is inspect.Parameter.empty:
        return set()
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return {part.strip() for part in text.split("|")}


def _check_like_default(cls: type, key: str, value: Any, default: Any, where: str) -> None:
    """A value of the kind the option's annotation names: a bool for a bool, a finite integer for an
    int, not negative where the default is a count or size >= 0 (Optuna checks few of these itself,
    and a bad one would only fail inside every trial)."""
    kinds = _annotated_kinds(cls, key)
    if value is None or not kinds & {"bool", "int", "float"}:
        return
    if "bool" in kinds and not kinds & {"int", "float", "str"}:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} expects true or false, but got {value!r}")
        return
    numeric = kinds & {"int", "float"}
    if numeric and not (isinstance(value, str) and "str" in kinds):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where} expects a finite number, but got {value!r}")
        if numeric == {"int"} and not isinstance(value, int):
            raise ConfigError(f"{where} expects an integer, but got {value!r}")
        nonnegative = isinstance(default, int | float) and not isinstance(default, bool) and default >= 0
        least = _MINIMUM.get(key, 0 if nonnegative else None)
        if least is not None and value < least:
            raise ConfigError(f"{where} expects a number >= {least}, but got {value!r}")


def _try_construct(cls: type, options: Mapping[str, Any], where: str) -> None:
    """Let Optuna's own constructor judge the values now, before a study exists."""
    if cls.__name__ == "GridSampler":
        return  # needs the search space; its only plain option is the seed harness sets
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning: not the user's concern here
            cls(**options)
    except ImportError:
        return  # an optional package (torch, cmaes): SamplerSpec.for_space names it
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {cls.__name__} refuses them ({exc})") from None


def sampler_class(name: str, where: str) -> type:
    import optuna

    if name not in SAMPLERS:
        raise ConfigError(f"{where}: unknown sampler {name!r}; valid: {', '.join(SAMPLERS)}")
    cls: type = getattr(optuna.samplers, _SAMPLER_CLASSES[name])
    return cls


def check_sampler_options(name: str, options: Any, where: str) -> dict[str, Any]:
    return _checked_options(sampler_class(name, where), options, f"{name} sampler", where)


def check_pruner(name: Any, options: Any, where: str) -> PrunerSpec:
    import optuna

    if not isinstance(name, str) or name.lower() not in PRUNERS:
        raise ConfigError(f"{where}: unknown pruner {name!r}; valid: {', '.join(PRUNERS)}")
    name = name.lower()
    cls = getattr(optuna.pruners, _PRUNER_CLASSES[name])
    return PrunerSpec(name, _checked_options(cls, options, f"{name} pruner", where))


def trial_seed(seed: int, number: int) -> int:
    """A per-trial seed: independent streams for (study seed, trial number)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


@dataclasses.dataclass(frozen=True)
class SamplerSpec:
    """Which Optuna sampler, its seed and its options; ``build`` makes the sampler for one trial."""

    name: str
    seed: int = 0
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, but got {self.name=}")

    @classmethod
    def for_space(cls, name: str, seed: int, space: SearchSpace, where: str = "--sampler") -> SamplerSpec:
        """Check that ``name`` can run ``space`` here (grid points, extra packages); fail now if not."""
        sampler_class(name, where)
        if name in _EXTRA_DEPENDENCY:
            module, hint = _EXTRA_DEPENDENCY[name]
            if importlib.util.find_spec(module) is None:
                raise ConfigError(f"{where}: the {name} sampler needs the {module!r} package ({hint})")
        if name == "grid":
            space.grid()  # every float needs grid points: the error names the parameter and file
        options = space.sampler_options.get(name, {})
        return cls(name, seed, dict(options))

    def build(self, space: SearchSpace, trial_number: int | None = None) -> Any:
        cls = sampler_class(self.name, "sampler")
        if self.name == "grid":
            return cls(space.grid(), seed=self.seed, **self.options)
        seed = self.seed if trial_number is None else trial_seed(self.seed, trial_number)
        return cls(seed=seed, **self.options)

    def for_trial(self, space: SearchSpace, trial_number: int, previous: Any = None) -> Any:
        """The sampler for one trial: ``previous`` (what this returned for the same worker's previous trial of
        the same study, or None) where it draws exactly what ``build(space, trial_number)`` would, else that."""
        import optuna

        if self.name == "grid" and type(previous) is optuna.samplers.GridSampler:
            return previous  # the same grid and seed for every trial
        reusable = self.name == "tpe" and type(previous) is optuna.samplers.TPESampler
        if reusable and _reseed_tpe(previous, trial_number, self):
            return previous
        return self.build(space, trial_number)

    def config(self) -> dict[str, Any]:
        """The full configuration: class, seed rule and every option with its default."""
        cls = sampler_class(self.name, "sampler")
        options = {**_plain_options(cls), **self.options}
        return {
            "name": self.name,
            "class": f"optuna.samplers.{cls.__name__}",
            "seed": self.seed,
            "seed_rule": (
                "grid order shuffled with the study seed"
                if self.name == "grid"
                else "per trial: numpy SeedSequence([seed, trial number])"
            ),
            "options": options,
        }


def _reseed_tpe(sampler: Any, trial_number: int, spec: SamplerSpec) -> bool:
    """Give a TPE sampler the random state of ``TPESampler(seed=trial_seed(...))``: its own generator and
    its start-up random sampler. Optuna has no public way to reseed with a given seed, so this relies on
    the two attributes its ``reseed_rng`` touches; where they are missing it returns False and the caller
    builds a new sampler (``test_studies`` checks that a reseeded sampler proposes what a new one does)."""
    import optuna

    rng = getattr(getattr(sampler, "_rng", None), "rng", None)
    if rng is None or not hasattr(sampler, "_random_sampler"):
        return False
    seed = trial_seed(spec.seed, trial_number)
    rng.seed(seed)
    sampler._random_sampler = optuna.samplers.RandomSampler(seed=seed)
    return True


def build_pruner(spec: PrunerSpec, base: Config) -> Any:
    """Optuna pruner; intermediate values are reported at training steps (every ``eval_every``)."""
    import optuna

    if spec.name == "median":
        return optuna.pruners.MedianPruner(**spec.options)
    if spec.name == "hyperband":
        options = {"min_resource": base.run.eval_every, "max_resource": base.run.iterations, **spec.options}
        return optuna.pruners.HyperbandPruner(**options)
    return optuna.pruners.NopPruner()


def pruner_config(spec: PrunerSpec, base: Config) -> dict[str, Any]:
    import optuna

    cls = getattr(optuna.pruners, _PRUNER_CLASSES[spec.name])
    options = _plain_options(cls)
    if spec.name == "hyperband":
        options.update(min_resource=base.run.eval_every, max_resource=base.run.iterations)
    options.update(spec.options)
    return {"name": spec.name, "class": f"optuna.pruners.{cls.__name__}", "options": options}
