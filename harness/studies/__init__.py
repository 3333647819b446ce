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
- ``_study`` (the ``study`` and ``worker`` commands), ``_compare``; their arguments are in ``harness.cli``.

Names are imported lazily, and typed for mypy by the ``TYPE_CHECKING`` imports below. Eager
re-exports were measured (issue 24): the modules behind ``harness.tracking`` (``_context`` and what
builds on it: ``_objective``, ``_worker``, ``_lifecycle``, ``_processes``, ``_study``) import MLflow at
their top, and even the light half (``_space`` registers every task, dataset and model: numpy,
pandas) doubled ``harness worker``'s answer to a missing ``--storage`` (0.35 s -> 0.75 s), because
importing any study module runs this file first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports

if TYPE_CHECKING:
    from harness.studies._clean import fail_lost_trials, find_storages
    from harness.studies._cmle import cmle_param_name, parse_cmle
    from harness.studies._compare import CompareRequest, parse_samplers, plan_budget, run_compare
    from harness.studies._context import StudyContext, attach
    from harness.studies._formats import load_space, parse_space
    from harness.studies._landscape import design, plan_landscape, record_landscape
    from harness.studies._lifecycle import StudyStopped, finalize, open_study, plan_study
    from harness.studies._native import parse_native
    from harness.studies._objective import PruningSink, TrainingRunner, TrialRun, TrivialRunner
    from harness.studies._processes import gpu_ids
    from harness.studies._replay import ReplayRequest, load_landscape, replay_repeat, run_replay
    from harness.studies._request import StudyRequest, check_study
    from harness.studies._samplers import SamplerSpec, build_pruner
    from harness.studies._settings import StudySettings
    from harness.studies._space import Budget, ExperimentRef, ObjectiveRef, ParamSpec, ResolvedSpace, SearchSpace, Tier
    from harness.studies._storage import (
        STORAGE_ENV,
        TRACKING_ENV,
        budget_lock,
        default_storage_url,
        normalise_url,
        open_storage,
    )
    from harness.studies._study import run_attached_worker, run_study
    from harness.studies._surrogate import Recorded, Surrogate, fidelity
    from harness.studies._trials import Tally, fail_orphans, tally
    from harness.studies._worker import run_worker

_EXPORTS = {
    "SearchSpace": "_space",
    "ResolvedSpace": "_space",
    "ParamSpec": "_space",
    "Budget": "_space",
    "ObjectiveRef": "_space",
    "ExperimentRef": "_space",
    "Tier": "_space",  # defined in harness.hardware
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
    "normalise_url": "_storage",
    "STORAGE_ENV": "_storage",
    "TRACKING_ENV": "_storage",
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
    "parse_samplers": "_compare",
    "plan_budget": "_compare",
    "run_compare": "_compare",
    "design": "_landscape",
    "plan_landscape": "_landscape",
    "record_landscape": "_landscape",
    "ReplayRequest": "_replay",
    "load_landscape": "_replay",
    "replay_repeat": "_replay",
    "run_replay": "_replay",
    "Recorded": "_surrogate",
    "Surrogate": "_surrogate",
    "fidelity": "_surrogate",
    "fail_lost_trials": "_clean",
    "find_storages": "_clean",
}

__all__ = [  # the keys of _EXPORTS, written out so that linters see the TYPE_CHECKING names used
    "STORAGE_ENV",
    "TRACKING_ENV",
    "Budget",
    "CompareRequest",
    "ExperimentRef",
    "ObjectiveRef",
    "ParamSpec",
    "PruningSink",
    "Recorded",
    "ReplayRequest",
    "ResolvedSpace",
    "SamplerSpec",
    "SearchSpace",
    "StudyContext",
    "StudyRequest",
    "StudySettings",
    "StudyStopped",
    "Surrogate",
    "Tally",
    "Tier",
    "TrainingRunner",
    "TrialRun",
    "TrivialRunner",
    "attach",
    "budget_lock",
    "build_pruner",
    "check_study",
    "cmle_param_name",
    "default_storage_url",
    "design",
    "fail_lost_trials",
    "fail_orphans",
    "fidelity",
    "finalize",
    "find_storages",
    "gpu_ids",
    "load_landscape",
    "load_space",
    "normalise_url",
    "open_storage",
    "open_study",
    "parse_cmle",
    "parse_native",
    "parse_samplers",
    "parse_space",
    "plan_budget",
    "plan_landscape",
    "plan_study",
    "record_landscape",
    "replay_repeat",
    "run_attached_worker",
    "run_compare",
    "run_replay",
    "run_study",
    "run_worker",
    "tally",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
