"""Hyperparameter studies: Optuna samplers and storage, MLflow tracking, parallel and multi-machine workers.

``harness study SPACE`` tunes a ladder rung (or any config) over a search space
read from a harness YAML file or a Cloud ML Engine hptune config; ``harness
worker`` joins a study from another process or machine; ``harness
compare-samplers`` runs grid, random and TPE on the same budget.

One concern per module, imports one way (top to bottom):

- ``_space`` (the one search-space dataclass), ``_native`` and ``_cmle`` (its two
  parsers), ``_formats`` (either file); ``_samplers`` (sampler and pruner factories);
- ``_storage`` and ``_journal`` (Optuna storage, heartbeats, the budget lock);
- ``_settings`` (what a study stores for its workers), ``_context`` (an open study,
  attaching, lost workers), ``_trials`` (counting and re-queueing trials), ``_watch``
  (the study's progress display, fed from its trials);
- ``_objective`` (proposing is separate from running: a runner gets a ``TrialRun``
  and trains it through the run executor), ``_worker`` (the loop every worker runs);
- ``_request`` (a study request and the checks it passes before MLflow, Optuna's storage or
  TensorFlow are loaded), ``_lifecycle`` (plan, open or resume, finalise), ``_processes`` (worker processes), ``_clean``
  (``harness runs clean``: trials whose worker process is gone end FAIL);
- ``_study`` (the ``study`` and ``worker`` commands), ``_compare``, ``_cli``.

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
    "load_space": "_formats",
    "parse_space": "_formats",
    "parse_native": "_native",
    "parse_cmle": "_cmle",
    "cmle_param_name": "_cmle",
    "SamplerSpec": "_samplers",
    "build_pruner": "_samplers",
    "open_storage": "_storage",
    "default_storage_url": "_storage",
    "budget_lock": "_storage",
    "StudySettings": "_settings",
    "StudyContext": "_context",
    "attach": "_context",
    "Tally": "_trials",
    "tally": "_trials",
    "fail_orphans": "_trials",
    "PruningSink": "_objective",
    "TrialRun": "_objective",
    "TrainingRunner": "_objective",
    "TrivialRunner": "_objective",
    "run_worker": "_worker",
    "StudyRequest": "_request",
    "check_study": "_request",
    "StudyStopped": "_lifecycle",
    "plan_study": "_lifecycle",
    "open_study": "_lifecycle",
    "finalize": "_lifecycle",
    "gpu_ids": "_processes",
    "run_study": "_study",
    "run_attached_worker": "_study",
    "CompareRequest": "_compare",
    "run_compare": "_compare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness.studies' has no attribute {name!r}")
    return getattr(importlib.import_module(f"harness.studies.{_EXPORTS[name]}"), name)
