"""The README's two newcomer commands, read from the README itself: ``python tests/readme_commands.py main|test``.

CI runs the printed test command as written (``.ci/run``); ``nox -s readme`` runs both in a fresh clone;
tests/test_cli.py checks that the main command parses and names a ladder that exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
INTROS = {"main": "Install and run the main job", "test": "Install and run the tests"}


def command(which: str, text: str | None = None) -> str:
    """The first indented line after the paragraph that starts with the intro of ``which``."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(INTROS[which])]
    if len(starts) != 1:
        raise SystemExit(f"README.md: expected one paragraph starting {INTROS[which]!r}, found {len(starts)}")
    for line in lines[starts[0] + 1 :]:
        if line.startswith("    ") and line.strip():
            return line.strip()
    raise SystemExit(f"README.md: no indented command after {INTROS[which]!r}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in INTROS:
        raise SystemExit(f"usage: python {sys.argv[0]} {'|'.join(INTROS)}")
    print(command(sys.argv[1]))
