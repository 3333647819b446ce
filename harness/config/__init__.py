"""Typed experiment config and strict overrides."""

from harness.config._config import (
    Config,
    apply_overrides,
    coerce,
    field_names,
    parse_cli_overrides,
    parse_variants,
)
from harness.config._yaml import load_mapping, strict_keys

__all__ = [
    "Config",
    "apply_overrides",
    "coerce",
    "field_names",
    "load_mapping",
    "parse_cli_overrides",
    "parse_variants",
    "strict_keys",
]
