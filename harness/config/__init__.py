"""Typed experiment config in sections, strict overrides, strict YAML.

The lowest layer with :mod:`harness.errors`: it imports no other harness package.
Tasks, datasets and models register their parameter classes into its catalog.
"""

from harness.config._catalog import check_serves, entry, names, owners, params_class, register_params
from harness.config._config import (
    SECTIONS,
    SELECTORS,
    Config,
    apply_overrides,
    coerce,
    config_from,
    default_config,
    is_key,
    parse_cli_overrides,
    parse_variants,
    selector_section,
    valid_keys,
)
from harness.config._sections import (
    DataParams,
    ModelParams,
    Named,
    OptimParams,
    RunParams,
    Section,
    TaskParams,
    check,
)
from harness.config._yaml import load_mapping, strict_keys

__all__ = [
    "SECTIONS",
    "SELECTORS",
    "Config",
    "DataParams",
    "ModelParams",
    "Named",
    "OptimParams",
    "RunParams",
    "Section",
    "TaskParams",
    "apply_overrides",
    "check",
    "check_serves",
    "coerce",
    "config_from",
    "default_config",
    "entry",
    "is_key",
    "load_mapping",
    "names",
    "owners",
    "params_class",
    "parse_cli_overrides",
    "parse_variants",
    "register_params",
    "selector_section",
    "strict_keys",
    "valid_keys",
]
