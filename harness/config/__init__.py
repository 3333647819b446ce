"""Typed experiment config and strict overrides."""

from harness.config._config import (
    Config,
    apply_overrides,
    coerce,
    field_names,
    parse_cli_overrides,
    parse_variants,
)

__all__ = ["Config", "apply_overrides", "coerce", "field_names", "parse_cli_overrides", "parse_variants"]
