"""The README's commands are ones harness accepts: the two newcomer commands and every `harness ...` example."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from readme_commands import README, command

from harness.cli import build_parser


def _harness_argv(line: str) -> list[str]:
    """The arguments after `harness` in a shell line (the part after the last `&& harness`)."""
    words = shlex.split(line.split("&&")[-1].split("#")[0])
    assert words[0] == "harness", line
    return words[1:]


def test_the_main_command_installs_then_runs_the_mnist_ladder_on_the_shared_data() -> None:
    main = command("main")
    assert main.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && harness ")
    args = build_parser().parse_args(_harness_argv(main))
    assert (args.command, args.ladder, args.data_dir) == ("ladder", "mnist", "../shared/data")
    assert (Path(__file__).parent.parent / "harness" / "ladders" / "mnist.yaml").is_file()


def test_the_test_command_runs_every_test_on_the_shared_data() -> None:
    test = command("test")
    assert test.startswith('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && ')
    assert test.endswith('HARNESS_DATA_DIR=../shared/data pytest -m "" -n 2')
    ci = (README.parent / ".ci" / "run").read_text()
    assert "tests/readme_commands.py test" in ci and 'bash -c "$readme_test"' in ci  # CI runs it as written


def _examples() -> list[str]:
    """Every README line that starts with `harness`, continuation lines joined; `[optional]` parts and
    `...` (more of the same) are notation, not arguments."""
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in text.splitlines() if re.match(r"^\s*harness [a-z]", line)]
    return [re.sub(r"\s+", " ", re.sub(r"\[[^\]]*\]|\.\.\.", "", line)).strip() for line in lines]


@pytest.mark.parametrize("line", _examples())
def test_every_readme_example_parses(line: str) -> None:
    try:
        build_parser().parse_args(_harness_argv(line))
    except SystemExit as exc:  # argparse's exit: the README shows a command harness refuses
        pytest.fail(f"README.md: `{line}` does not parse (exit {exc.code})")


def test_a_changed_readme_is_read_as_changed() -> None:
    text = "Install and run the main job:\n\n    harness ladder planesnet\n\nInstall and run the tests:\n\n    pytest\n"
    assert (command("main", text), command("test", text)) == ("harness ladder planesnet", "pytest")
    with pytest.raises(SystemExit, match="expected one paragraph"):
        command("main", "nothing here\n")
