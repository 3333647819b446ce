"""Ladders: declarative rung-by-rung experiments (YAML files shipped here) and their runner.

``run_ladder`` is imported lazily (``_runner`` imports MLflow): a command checks its ladder and
request (``_spec``, ``_request``) before anything heavy loads.
"""

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports
from harness.ladders._request import LadderRequest, PricedAs
from harness.ladders._spec import SCALES, Ladder, Rung, builtin_ladders, builtin_rungs, load_ladder, parse_ladder

if TYPE_CHECKING:
    from harness.ladders._runner import run_ladder

__all__ = [
    "SCALES",
    "Ladder",
    "LadderRequest",
    "PricedAs",
    "Rung",
    "builtin_ladders",
    "builtin_rungs",
    "load_ladder",
    "parse_ladder",
    "run_ladder",
]

__getattr__ = lazy_exports(__name__, {"run_ladder": "_runner"})
