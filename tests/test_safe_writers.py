"""Every file harness writes is safe to open (issue 25): a CSV cell a spreadsheet would run as a formula is
neutralised (OWASP: a leading ``'``), and user text in Markdown (rung, variant, study and sampler names,
notes, commands) can neither break a table row nor inject HTML, links or code spans. Line breaks inside a
Markdown cell or line become spaces (a row is one line); the CSV keeps them, quoted."""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from harness.cli import main
from harness.errors import UserError
from harness.report import _core
from harness.report._html import inline

# the test's own oracle: OWASP's formula starts, and NUL (ASVS 1.2.10)
DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "\0")
# where CommonMark ends a line, and where str.splitlines() does
LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
UNESCAPED_BAR = re.compile(r"(?<!\\)\|")
HOSTILE = [
    "=cmd|' -C calc'!A0",
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1:A9)",
    "\tTAB",
    "\rCR",
    "a|b",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<iframe src=//x>",
    "[click](javascript:alert(1))",
    "<javascript:alert(1)>",
    "`code` **bold**",
    "two\nlines",
    "&lt;script&gt; &amp",
    "back\\slash|",
]
# any text, the known attacks, and any text behind a dangerous first character
NAMES = (
    st.text(max_size=40)
    | st.sampled_from(HOSTILE)
    | st.builds(str.__add__, st.sampled_from([*DANGEROUS, "|", "<", "`", "["]), st.text(max_size=20))
)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def neutralised(typed: str) -> str:
    return "'" + typed if typed.startswith(DANGEROUS) else typed


def shown(typed: str) -> str:
    """What a Markdown renderer shows of a cell: the text as typed, line breaks as spaces."""
    return LINE_BREAK.sub(" ", typed)


def _entity(ref: str) -> str:
    # CommonMark and browsers decode a numeric reference to its code point (U+0000 becomes U+FFFD), where Python's
    # html.unescape drops the C0 controls
    number = re.fullmatch(r"&#(?:([0-9]+)|[xX]([0-9a-fA-F]+));", ref)
    if number:
        code = int(number.group(1)) if number.group(1) else int(number.group(2), 16)
        return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"
    return html.unescape(ref)


def rendered(cell: str) -> str:
    """A cell as CommonMark shows it: entities (with their ``;``) decoded."""
    return re.sub(r"&#?[0-9A-Za-z]+;", lambda m: _entity(m.group()), cell)


def text_cells(path: Path) -> list[str]:
    """The file's text cells (quoted), as a spreadsheet reads them; an unquoted cell is a number."""
    with path.open(newline="", encoding="utf-8") as f:
        return [cell for row in csv.reader(f, quoting=csv.QUOTE_NONNUMERIC) for cell in row if isinstance(cell, str)]


@pytest.mark.slow
@PROPS
@given(st.lists(NAMES, min_size=1, max_size=6))
def test_any_rung_or_study_name_round_trips_through_the_csv(tmp_path: Path, names: list[str]) -> None:
    table = pd.DataFrame(
        {
            "rung": names,
            "study": names[::-1],
            "best": [-0.5 + i for i in range(len(names))],  # numbers, a negative one first
            "runs": range(len(names)),
        }
    )
    path = _core.write_csv(tmp_path / "table.csv", table)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back.shape == table.shape
    for column in ("rung", "study"):
        assert back[column].tolist() == [neutralised(n) for n in table[column]]
    numbers = pd.read_csv(path, float_precision="round_trip")
    assert numbers["best"].dtype == "float64" and numbers["best"].tolist() == table["best"].tolist()
    assert numbers["runs"].tolist() == table["runs"].tolist()  # -0.5 stays a number: only strings are touched
    assert not [cell for cell in text_cells(path) if cell.startswith(DANGEROUS)]


@PROPS
@given(NAMES)
def test_a_header_from_user_text_is_neutralised_too(tmp_path: Path, name: str) -> None:
    """Study tables have a column per tuned parameter, named in the user's search space."""
    # a list of columns, not a dict: a parameter the user named "objective" is a second column, not a merge
    table = pd.DataFrame([["x", 0.5]], columns=[name, "objective"])
    path = _core.write_csv(tmp_path / "t.csv", table)
    with path.open(newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == [neutralised(name), "objective"]


@PROPS
@given(st.lists(NAMES, min_size=1, max_size=6))
def test_any_name_keeps_every_markdown_table_row_whole(names: list[str]) -> None:
    table = pd.DataFrame(
        {"#": range(1, len(names) + 1), "rung": names, "variant": names[::-1], "best": [0.5] * len(names)}
    )
    lines = _core.markdown_table(table).split("\n")
    assert len(lines) == 2 + len(names)  # header, rule, one line per row: no line break got through
    bars = [len(UNESCAPED_BAR.findall(line)) for line in lines]
    assert bars == [table.shape[1] + 1] * len(lines)  # no cell split or merged
    assert not [line for line in lines if "<" in line or ">" in line]  # no raw HTML or autolink from the input
    for line, rung, variant in zip(lines[2:], names, names[::-1], strict=True):
        cells = [rendered(c).strip() for c in line.split("|")[1:-1]]
        assert cells[1:3] == [shown(rung).strip(), shown(variant).strip()]  # shown as typed (ends trimmed)


@PROPS
@given(NAMES)
def test_user_text_in_a_line_is_inert_in_markdown_and_the_html_page_alike(name: str) -> None:
    """Lead lines, verdicts and notes are written once for the .md and the .html: the page shows the same text,
    with no tag, code span, emphasis or link from the input."""
    line = f"Rung 1 ({_core.md_text(name)}) is **better**"
    assert "\n" not in line and "<" not in line and "`" not in line and not re.search(r"\]\s*[(\[:]", line)
    assert line.count("*") == 4  # harness's own bold only
    page = inline(line)
    assert re.findall(r"<[^>]*>", page) == ["<strong>", "</strong>"]
    assert rendered(re.sub(r"<[^>]*>", "", page)) == f"Rung 1 ({shown(name)}) is better"


@PROPS
@given(NAMES)
def test_code_spans_and_links_hold_any_name(name: str) -> None:
    code = _core.md_code(name)
    assert code == f"`{name}`" if name and _core.md_text(name) == name else code == _core.md_text(name)
    link = _core.md_link(name, f"{name}_detections.png")
    target = link[link.rindex("](") + 2 : -1]
    assert re.fullmatch(r"[A-Za-z0-9_.~%/-]*", target)  # no ':' (scheme), no ')' or space ending it early
    assert link.startswith("[" + _core.md_text(name) + "](")


def test_formula_cells_are_prefixed_and_numbers_are_not(tmp_path: Path) -> None:
    table = pd.DataFrame({"rung": ["=1+1", "-2+3", "plain", "@x"], "delta": [-0.5, 0.25, -1.0, 2.0]})
    text = (_core.write_csv(tmp_path / "t.csv", table)).read_text(encoding="utf-8")
    assert text.splitlines() == ['"rung","delta"', '"\'=1+1",-0.5', '"\'-2+3",0.25', '"plain",-1.0', '"\'@x",2.0']


def test_an_out_that_is_a_file_is_bad_input_naming_it(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "taken").write_text("a file")
    for out, message in [
        ("taken", "error: --out taken is a file; expected a folder (created if missing)\n"),
        ("taken/sub", "error: --out taken/sub: taken is a file; expected a folder (created if missing)\n"),
    ]:
        assert main(["report", "ladder", "mnist", "--out", out]) == 2
        assert capsys.readouterr().err == message  # one line, no traceback
    assert not (workdir / "mlflow.db").exists()  # refused before the store was opened
    # a library caller writing under a file gets the same kind of message
    with pytest.raises(UserError, match=r"^output folder taken is a file; expected a folder"):
        _core.write_file(Path("taken") / "r.md", "# r\n")  # workdir is the current folder


LADDER = """\
name: "evil<b>|=x"
title: "<img src=x onerror=alert(1)> | `t`"
notes:
  - "note <script>alert(1)</script> | [x](javascript:alert(1))"
base: {dataset: mnist, iterations: 10, eval_every: 5, train_subset: 200, test_subset: 100, model: mlp, layers: [8]}
rungs:
  - name: "=cmd|' -C calc'!A0"
    changes: "+SUM(1,2)\\n| injected | row |"
    reference: 0.9
    note: "@SUM(A1) <iframe src=x>"
  - name: "<img src=x onerror=alert(1)>"
    changes: "-2+3 `code` [a](javascript:alert(1))"
"""


def _check_report(folder: Path, rungs: list[str]) -> None:
    """The .md table has a whole row per rung, nothing raw from the input; the .csv gives the names back."""
    md = (folder / "evil<b>|=x_ladder.md").read_text(encoding="utf-8")
    lines = md.split("\n")
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(rungs)
    assert {len(UNESCAPED_BAR.findall(line)) for line in table} == {table[0].count("|")}
    for text in ("<script", "<img", "<iframe", "](javascript", "<b>"):
        assert text not in md
    assert not [line for line in table if "<" in line or ">" in line]
    rows = pd.read_csv(folder / "evil<b>|=x_ladder.csv", dtype=str, keep_default_na=False)
    assert rows["rung"].tolist() == [neutralised(r) for r in rungs]
    assert not [cell for cell in text_cells(folder / "evil<b>|=x_ladder.csv") if cell.startswith(DANGEROUS)]
    page = (folder / "evil<b>|=x_ladder.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<iframe" not in page and "onerror=alert(1)>" not in page


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # odd characters in the figures' labels
def test_a_ladder_with_hostile_names_writes_safe_reports(workdir: Path, tiny_data_dir: Path) -> None:
    (workdir / "evil.yaml").write_text(LADDER, encoding="utf-8")
    assert main(["ladder", "evil.yaml", "--data-dir", str(tiny_data_dir)]) == 0
    rungs = ["=cmd|' -C calc'!A0", "<img src=x onerror=alert(1)>"]
    _check_report(workdir / "results", rungs)
    md = (workdir / "results" / "evil<b>|=x_ladder.md").read_text(encoding="utf-8")
    assert "| =cmd&#124;' -C calc'!A0 " in md and "| +SUM(1,2) &#124; injected &#124; row &#124; " in md
    assert "- note &lt;script&gt;alert(1)&lt;/script&gt; &#124; &#91;x&#93;(javascript:alert(1))" in md
    assert "- Rung 1 (=cmd&#124;' -C calc'!A0) is " in md  # the verdict names it, escaped
    rows = pd.read_csv(workdir / "results" / "evil<b>|=x_ladder.csv", dtype=str, keep_default_na=False)
    assert rows["changes"].tolist() == ["'+SUM(1,2)\n| injected | row |", "'-2+3 `code` [a](javascript:alert(1))"]
    assert rows["note"].tolist() == ["'@SUM(A1) <iframe src=x>", ""]

    # a store anyone can write to: any text as a rung's name, the report rebuilt from the store each time
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ladder/evil<b>|=x").experiment_id
    (first,) = [r for r in client.search_runs([experiment]) if r.data.tags.get("harness.rung_index") == "1"]

    @settings(max_examples=6, deadline=None, database=None)
    @given(st.text(st.characters(exclude_characters="\0"), max_size=30) | st.sampled_from(HOSTILE))
    def any_rung_name(name: str) -> None:
        client.set_tag(first.info.run_id, "harness.rung", name)
        assert main(["report", "ladder", "evil<b>|=x", "--out", "again"]) == 0
        _check_report(workdir / "again", [name, rungs[1]])

    any_rung_name()
