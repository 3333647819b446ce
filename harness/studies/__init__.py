"""Hyperparameter studies: Optuna samplers and storage, MLflow tracking, parallel and multi-machine workers.

``harness study SPACE`` tunes a ladder rung (or any config) over a search space
read from a harness YAML file or a Cloud ML Engine hptune config; ``harness
worker`` joins a study from another process or machine; ``harness
compare-samplers`` runs grid, random and TPE on the same budget. See
``_space`` (the one search-space dataclass), ``_native`` and ``_cmle`` (its two
parsers), ``_samplers``, ``_storage``, ``_objective`` (running a trial),
``_worker`` (the loop every worker runs), ``_study`` and ``_compare``.

Names are imported lazily: ``harness.cli`` imports this package for its argument
parser, which must not pull in Optuna or TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SearchSpace": "_space",
    "ResolvedSpace": "_space",
    "ParamSpec": "_space",
    "Budget": "_space",
    "ObjectiveRef": "_space",
    "ExperimentRef": "_space",
    "Tier": "_space",
    "load_space": "_space",
    "parse_space": "_space",
    "parse_native": "_native",
    "parse_cmle": "_cmle",
    "cmle_param_name": "_cmle",
    "CATEGORICAL_ALIASES": "_cmle",
    "SamplerSpec": "_samplers",
    "build_pruner": "_samplers",
    "open_storage": "_storage",
    "default_storage_url": "_storage",
    "budget_lock": "_storage",
    "PruningSink": "_objective",
    "TrialRun": "_objective",
    "TrainingRunner": "_objective",
    "TrivialRunner": "_objective",
    "run_worker": "_worker",
    "tally": "_worker",
    "StudyRequest": "_study",
    "StudyContext": "_study",
    "StudyStopped": "_study",
    "attach": "_study",
    "plan_study": "_study",
    "open_study": "_study",
    "run_study": "_study",
    "finalize": "_study",
    "CompareRequest": "_compare",
    "run_compare": "_compare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness.studies' has no attribute {name!r}")
    return getattr(importlib.import_module(f"harness.studies.{_EXPORTS[name]}"), name)
