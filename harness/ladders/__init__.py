"""Ladders: declarative rung-by-rung experiments (YAML files shipped here) and their runner."""

from harness.ladders._spec import SCALES, Ladder, Rung, builtin_ladders, builtin_rungs, load_ladder, parse_ladder

__all__ = ["SCALES", "Ladder", "Rung", "builtin_ladders", "builtin_rungs", "load_ladder", "parse_ladder"]
