"""Database URLs: ``postgresql://`` made to name the PostgreSQL driver that is installed.

SQLAlchemy 2.1 reads a plain ``postgresql://`` as psycopg 3; harness installs psycopg2. Both the
Optuna storage (``--storage``) and the MLflow tracking store (``--tracking-uri``) go through here,
so a URL that works for one works for the other.
"""

from __future__ import annotations

import importlib.util

_PLAIN = "postgresql://"


def with_installed_driver(url: str) -> str:
    """``postgresql://...`` -> ``postgresql+psycopg2://...`` when only psycopg2 is installed."""
    if not url.lower().startswith(_PLAIN):
        return url
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len(_PLAIN) :]
    return url
