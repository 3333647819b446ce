"""Error types.

Two families, as in keras-tuner: a :class:`UserError` means the input is wrong
(a config key, a data file, a ladder name) and the whole command stops with a
clear message and a non-zero exit; a :class:`RunFailed` means one run failed
(NaN loss, a crash inside training) and a driver may decide to go on.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of every error harness raises on purpose."""


class UserError(HarnessError):
    """Bad input: the message names the file, key or value and what was expected."""


class ConfigError(UserError):
    """A config, ladder or override is invalid."""


class DataError(UserError):
    """A dataset is missing, truncated or does not match its checksum."""


class RunFailed(HarnessError):
    """One run failed (for example a NaN loss); other runs may continue."""
