"""Typed experiment config and strict overrides."""

from harness.config._config import (
    Config,
    apply_overrides,
    coerce,
    field_names,
    parse_cli_overrides,
)

__all__ = ["Config", "apply_overrides", "coerce", "field_names", "parse_cli_overrides"]
