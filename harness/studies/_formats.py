"""Reading a search-space file in either format: the harness YAML or a Cloud ML Engine hptune config."""

from __future__ import annotations

from pathlib import Path

from harness.config import load_mapping, read_config_text
from harness.studies._native import parse_native
from harness.studies._space import SearchSpace


def read_text(path: Path) -> str:
    return read_config_text(path, "search space")


def load_space(path: str | Path) -> SearchSpace:
    """Read a search space file in either format (Cloud ML Engine if it has ``trainingInput``)."""
    p = Path(path)
    return parse_space(read_text(p), str(p))


def parse_space(text: str, source: str) -> SearchSpace:
    data = load_mapping(text, source, "a harness search space or a Cloud ML Engine config")
    if "trainingInput" in data:
        from harness.studies._cmle import parse_cmle

        return parse_cmle(data, text, source)

    return parse_native(data, text, source)
