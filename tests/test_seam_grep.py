"""The seam, closed: generic packages name no registered task, dataset, model or metric.

What differs between experiments belongs to the task (``harness/tasks``), to the dataset's and the
model's parameter classes, or to data files beside the code (ladders, ``harness/bench/*.yaml``), so
that a task arriving as a plug-in gets the same behaviour. This test reads the Python source of the
drivers with ``ast`` and fails, naming file:line, wherever one of those names appears in code:

- the names come from the registries at test time: every task, dataset and model, each task's
  ``metric_names`` (less ``loss``, which the base ``Task`` gives every task) and the keys a task's
  rows and summary derive from them (``test_<m>``, ``val_<m>``, ``final_test_<m>``, ``best_test_<m>``),
  plus its report columns' metric keys;
- a hit is a whole word (split at anything but letters, digits and ``_``, case-sensitive, as code spells
  them) of a string constant or an identifier (names, attributes, arguments, definitions, keywords,
  imported modules with their leading ``_`` dropped: ``harness.tasks._detection`` names ``detection``);
- text for people is not code and is skipped: docstrings, the ``help=``/``description=``/``epilog=``/
  ``usage=`` texts of argparse, and any string (or f-string) with whitespace in it (messages, labels,
  Markdown), except a multi-line string that is a YAML mapping (an embedded config or space is data).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml

import harness.data
import harness.models
import harness.tasks
from harness import registry
from harness.config import ModelParams, value_aliases

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("harness/cli", "harness/executor", "harness/studies", "harness/detect", "harness/bench", "harness/report")
HELP_KEYWORDS = {"help", "description", "epilog", "usage"}
ROW_PREFIXES = ("train_", "test_", "val_", "final_train_", "final_test_", "best_test_")

# (file, word) -> why the word is allowed there. Homonyms first: a registered name that means something
# else in that file. Then what cannot move yet. Nothing here is a task, dataset, model or metric named
# on purpose by a generic package.
ALLOWED: dict[tuple[str, str], str] = {
    **{
        (f"harness/studies/{f}.py", "linear"): "a search-space scale type (linear vs log), not the linear model"
        for f in ("_landscape", "_native", "_space")
    },
    **{
        (f, "precision"): "the run's numeric precision (float32, mixed_float16), not the precision metric"
        for f in (
            "harness/bench/_hardware.py",
            "harness/bench/_yolo_candidates.py",
            "harness/cli/_commands.py",
            "harness/cli/_parser.py",
            "harness/report/_hardware.py",
            "harness/report/_pricing.py",
        )
    },
    ("harness/report/_compare.py", "auc"): "the area under a sampler's best-so-far curve, not the AUC metric",
    **{
        (f, "iou"): "detect-scan's NMS overlap threshold (--iou), not the detection task's IoU metric"
        for f in ("harness/detect/_scan.py", "harness/cli/_commands.py", "harness/cli/_parser.py")
    },
    # the measure's name (DAWNBench's "time to accuracy", whatever the task's primary metric): the tag value
    # bench/_hardware.py writes and report/_hardware.py selects rows by, and the --only alias of section (c)
    **{
        (f, "accuracy"): "in 'time-to-accuracy', the measure's name (a tag value), not the accuracy metric"
        for f in ("harness/bench/_hardware.py", "harness/report/_hardware.py")
    },
    ("harness/bench/_settings.py", "accuracy"): "in 'time-to-accuracy', section (c)'s --only alias",
    # the plain-Keras baseline is hand-written on purpose, independent of harness's tasks (its docstring): it
    # compiles Keras' own "accuracy" and returns it under the key bench/_report.py reads for the task's primary
    ("harness/bench/_plain_keras.py", "accuracy"): "Keras' metric of the hand-written baseline classifier",
    ("harness/bench/_plain_keras.py", "val_accuracy"): "Keras' log key of that metric",
    ("harness/bench/_plain_keras.py", "final_test_accuracy"): "the baseline's result key (final_test_<primary>)",
}


def registered_names() -> set[str]:
    names = set(harness.tasks.list_tasks()) | set(harness.data.list_datasets()) | set(harness.models.list_models())
    generic = set(harness.tasks.Task.metric_names)  # "loss": every task has it, through the base class
    for task in map(harness.tasks.get_task, harness.tasks.list_tasks()):
        metrics = set(task.metric_names) - generic
        names |= metrics | {prefix + m for m in metrics for prefix in ROW_PREFIXES}
        names |= {c.metric for c in task.report_columns()} - {f"final_test_{m}" for m in generic}
    return names


def _is_text(value: str) -> bool:
    """Words for people (a message, a label), unless it is a multi-line YAML mapping (data)."""
    if not any(c.isspace() for c in value):
        return False
    if "\n" in value:
        try:
            return not isinstance(yaml.safe_load(value), dict)
        except yaml.YAMLError:
            return True
    return True


def _skipped(tree: ast.AST) -> set[int]:
    """ids of the nodes that are text for people: docstrings and argparse help texts, with their parts."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                out.add(id(first.value))
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in HELP_KEYWORDS:
                    out.update(id(sub) for sub in ast.walk(kw.value))
    return out


def _words(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant and identifier that is code, not text for people."""
    skipped = _skipped(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.JoinedStr):  # an f-string is text or code as a whole
            skipped.update(id(v) for v in node.values)
            literal = "{}".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if not _is_text(literal):
                yield node.lineno, literal
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if not _is_text(node.value):
                yield node.lineno, node.value
        elif isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.arg | ast.keyword) and node.arg:  # a parameter; a keyword argument's name
            yield node.lineno, node.arg
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.lineno, node.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield (
                node.lineno,
                " ".join([*(p.lstrip("_") for p in node.module.split(".")), *(a.name for a in node.names)]),
            )
        elif isinstance(node, ast.Import):
            yield node.lineno, " ".join(p.lstrip("_") for a in node.names for p in a.name.split("."))


def scan(names: set[str]) -> list[str]:
    hits = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for line, text in _words(ast.parse(path.read_text(encoding="utf-8"), rel)):
                for word in sorted(set(re.findall(r"[A-Za-z0-9_]+", text)) & names):
                    if (rel, word) not in ALLOWED:
                        hits.append(f"{rel}:{line}: {word!r} in {text[:80]!r}")
    return sorted(set(hits))


def test_generic_packages_name_no_task_dataset_model_or_metric() -> None:
    names = registered_names()
    assert {"classification", "mnist", "cnn", "accuracy", "final_test_iou"} <= names  # the registries answered
    hits = scan(names)
    assert not hits, (
        "task, dataset, model or metric names in generic code (ask the task, or move them to data):\n" + "\n".join(hits)
    )


def test_the_scan_sees_names_in_code_and_not_in_text() -> None:
    """What counts: a literal, an identifier, a private import, embedded YAML; not a message or a docstring."""
    source = '''
"""Docstring: mnist, accuracy."""
from harness.tasks._detection import detect_image
def f(parser, m):
    """accuracy"""
    parser.add_argument("--x", help="mnist")
    key = "final_test_accuracy"
    other = f"val_{m}"
    raise ValueError("no mnist here: a message")
    return f"best_test_{m}", "cnn-batchnorm", "name: x\\nexperiment: {ladder: mnist}\\n"
'''
    names = registered_names()
    found = {(line, w) for line, text in _words(ast.parse(source)) for w in re.findall(r"[A-Za-z0-9_]+", text)}
    assert sorted((line, w) for line, w in found if w in names) == [
        (3, "detection"),
        (7, "final_test_accuracy"),
        (10, "cnn"),
        (10, "mnist"),
    ]


def test_every_allowance_is_still_needed() -> None:
    """An allowance whose word is gone from its file goes too, so the list only shrinks."""
    names = registered_names()
    used = set()
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for _, text in _words(ast.parse(path.read_text(encoding="utf-8"), rel)):
                used |= {(rel, w) for w in re.findall(r"[A-Za-z0-9_]+", text) if w in names}
    assert sorted(set(ALLOWED) - used) == []


@dataclasses.dataclass(frozen=True)
class _PluginNetParams(ModelParams):
    name: str = "seam_grep_net"
    width: int = 8
    value_aliases: ClassVar[Mapping[str, Mapping[str, Any]]] = {"width": {"narrow": 4, "wide": 64}}


def test_a_plugin_models_value_aliases_reach_the_cloud_ml_engine_reader() -> None:
    """The reader knows no model's words: a model registered now brings its own (as cnn brings S/M/L)."""
    from harness.models import register_model
    from harness.studies import parse_space

    cmle = """\
trainingInput:
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    params:
      - {parameterName: hp-width, type: CATEGORICAL, categoricalValues: [narrow, wide, '16']}
"""
    native = (
        "objective: {metric: accuracy}\nbudget: {max_trials: 2}\nparams:\n"
        "  width: {type: categorical, choices: [narrow, 16]}\n"
    )
    with registry.scoped():
        register_model("seam_grep_net", params=_PluginNetParams)(lambda p, input_shape, outputs: None)
        assert value_aliases("width") == value_aliases("model.width") == {"narrow": 4, "wide": 64}
        assert parse_space(cmle, "t.yaml").param("width").values == {"narrow": 4, "wide": 64, "16": 16}
        # the same words in a harness file, which hands Optuna the values themselves
        assert parse_space(native, "t.yaml").param("width").choices == (4, 16)
    assert value_aliases("width") == {}  # gone with the model
    assert value_aliases("filter_sizes")["S"] == (4, 3, 2)  # the built-in cnn's, from its parameter class
