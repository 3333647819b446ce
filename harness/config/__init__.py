"""Typed experiment config in sections, strict overrides, strict YAML.

The lowest layer with :mod:`harness.errors`: it imports no other harness package.
Tasks, datasets and models register their parameter classes into its catalog.
"""

from harness.config._catalog import params_class, register_params, value_aliases
from harness.config._config import (
    Config,
    apply_overrides,
    coerce,
    config_from,
    config_from_sections,
    default_config,
    is_key,
    parse_cli_overrides,
    parse_variants,
    selector_section,
)
from harness.config._sections import (
    BACKENDS,
    MAX_KERNEL,
    MAX_LAYERS,
    MAX_WIDTH,
    DataParams,
    ModelParams,
    OptimParams,
    RunParams,
    TaskParams,
    check,
    check_backend,
    check_range,
    check_sizes,
    parse_backends,
    parse_frameworks,
)
from harness.config._yaml import (
    MAX_CONFIG_BYTES,
    load_mapping,
    load_yaml,
    read_config_text,
    read_int,
    read_number,
    strict_keys,
)

__all__ = [
    "BACKENDS",
    "MAX_CONFIG_BYTES",
    "MAX_KERNEL",
    "MAX_LAYERS",
    "MAX_WIDTH",
    "Config",
    "DataParams",
    "ModelParams",
    "OptimParams",
    "RunParams",
    "TaskParams",
    "apply_overrides",
    "check",
    "check_backend",
    "check_range",
    "check_sizes",
    "coerce",
    "config_from",
    "config_from_sections",
    "default_config",
    "is_key",
    "load_mapping",
    "load_yaml",
    "params_class",
    "parse_backends",
    "parse_cli_overrides",
    "parse_frameworks",
    "parse_variants",
    "read_config_text",
    "read_int",
    "read_number",
    "register_params",
    "selector_section",
    "strict_keys",
    "value_aliases",
]
