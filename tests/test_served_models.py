"""Served models that answer real rows correctly, and the MLflow Models view that compares them.

One census smoke ladder (rungs linear and dropout; dropout is wide & deep with batch norm and dropout,
every change of the ladder, and trains nowhere else) trains on a tiny Adult folder written as UCI
writes its files (a space after every comma, the test file's comment line and trailing dots).
Its model is served with ``mlflow models serve`` and sent those rows exactly as the file holds
them, as CSV and as JSON: the answers are the in-process model's on the rows harness's reader
strips, and their accuracy is the run's evaluated one. The same server answers UCI's own adult.test
(realdata) as the network answers harness's reading of it. A missing or unknown column or a value
of the wrong type is a 400 naming the column.
The MLflow UI's Models view, rendered by headless chromium, lists the models by rung with
their final metrics.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from helpers import (
    REAL_DATA,
    chromium,
    free_port,
    harness_server,
    missing_real_data,
    model_server,
    run_cli,
    wait_for_http,
)
from mlflow.tracking import MlflowClient

from harness.data._adult import CLASSES, COLUMNS, read_adult_file, synthetic_rows

RUNGS = {"linear": "census-01-linear-s0", "dropout": "census-05-dropout-s0"}  # rung -> its LoggedModel's name
MODELS = {"linear": "linear", "dropout": "wide_deep"}  # rung -> its model
N_TRAIN, N_TEST = 1500, 300
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
    "--window-size=4000,1200",  # the models table draws only the metric columns inside the window
]


def _uci_lines(x: np.ndarray, y: np.ndarray, test: bool) -> list[str]:
    """Rows as UCI's adult.data / adult.test write them: ``39, State-gov, 77516, ...``."""
    lines = []
    for row, label in zip(x, y, strict=True):
        fields = [str(int(row[c.name])) if c.kind == "numeric" else str(row[c.name]) for c in COLUMNS]
        lines.append(", ".join([*fields, CLASSES[label] + ("." if test else "")]))
    return lines


@pytest.fixture(scope="module")
def census(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``harness ladder census --scale smoke --rungs linear,dnn`` on a tiny Adult folder in UCI's spacing."""
    root = tmp_path_factory.mktemp("served_census")
    folder = root / "data" / "adult"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(26)
    (folder / "adult.data").write_text("\n".join(_uci_lines(*synthetic_rows(N_TRAIN, rng), test=False)) + "\n")
    test_lines = ["|1x3 Cross validator", *_uci_lines(*synthetic_rows(N_TEST, rng), test=True)]
    (folder / "adult.test").write_text("\n".join(test_lines) + "\n")
    work = root / "work"
    work.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("HARNESS_DATA_DIR", raising=False)
        rc, out = run_cli(
            "ladder", "census", "--scale", "smoke", "--rungs", ",".join(RUNGS), "--set", "dataset=adult",
            "--data-dir", str(root / "data"), "--no-report",
        )  # fmt: skip
    assert rc == 0, out
    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.get_experiment_by_name("ladder/census").experiment_id
    runs = {r.data.tags["harness.rung"]: r for r in client.search_runs([exp_id]) if "harness.rung" in r.data.tags}
    assert set(runs) == set(RUNGS) and all(r.info.status == "FINISHED" for r in runs.values()), out
    return SimpleNamespace(work=work, test_file=folder / "adult.test", uri=uri, client=client, exp_id=exp_id, runs=runs)


@contextlib.contextmanager
def _serving(census: SimpleNamespace, model_uri: str) -> Iterator[int]:
    """``mlflow models serve`` of ``model_uri`` on a loopback port (this environment: --env-manager local)."""
    with model_server(model_uri, census.uri, census.work) as port:
        yield port


@pytest.fixture(scope="module")
def served(census: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The linear rung's model served once for every test that sends it rows, its network (stock Keras),
    and ``harness ui`` on the same store, started first: the two servers' start-ups (imports) overlap."""
    import keras

    run = census.runs["linear"]
    ui_port = free_port()
    with harness_server(census.work, "ui", "--port", str(ui_port), log_name="ui.log") as ui:
        where = str(tmp_path_factory.mktemp("linear_model"))
        net = keras.models.load_model(census.client.download_artifacts(run.info.run_id, "model.keras", where))
        # beside model.keras: what each categorical input's index stands for
        vocabularies = json.loads(
            Path(census.client.download_artifacts(run.info.run_id, "vocabularies.json", where)).read_text()
        )
        with _serving(census, run.data.tags["harness.model_uri"]) as port:
            yield SimpleNamespace(port=port, run=run, net=net, vocabularies=vocabularies, ui=ui, ui_port=ui_port)


def _post(port: int, body: str, content_type: str) -> tuple[int, dict[str, Any]]:
    """POST /invocations: the HTTP status and the JSON answer (predictions, or the error)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=body.encode(), headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _as_json(frame: Any) -> str:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))})


def _keras_answers(net: Any, vocabularies: dict[str, list[str]], columns: dict[str, np.ndarray]) -> np.ndarray:
    """The trained network itself (stock Keras, in this process) on one array per column, each category
    looked up verbatim (no stripping) in the run's vocabularies.json, as a stock-Keras user would."""
    feed = {}
    for c in COLUMNS:
        values = np.asarray(columns[c.name]).reshape(-1, 1)
        if c.name in vocabularies:
            index = {word: i for i, word in enumerate(vocabularies[c.name], start=1)}
            values = np.array([[index.get(str(v), 0)] for v in values.ravel()], dtype=np.int32)
        feed[c.name] = values
    return np.asarray(net(feed, training=False)).ravel()


@pytest.mark.slow
def test_served_census_model_answers_rows_as_uci_writes_them(census: SimpleNamespace, served: SimpleNamespace) -> None:
    import pandas as pd

    lines = [line for line in census.test_file.read_text().splitlines() if line and not line.startswith("|")]
    assert len(lines) == N_TEST and lines[0].count(", ") == len(COLUMNS)  # UCI's spacing
    # the file's rows with the label dropped and nothing else touched, under a header naming the columns
    csv_body = "\n".join([",".join(c.name for c in COLUMNS), *(line.rsplit(",", 1)[0] for line in lines)])
    frame = pd.read_csv(io.StringIO(csv_body))
    assert frame["workclass"].str.startswith(" ").all() and frame["age"].dtype == np.int64

    net = served.net
    x, labels, _ = read_adult_file(census.test_file)  # harness's reader: what training saw (stripped)
    expected = _keras_answers(net, served.vocabularies, {c.name: x[c.name] for c in COLUMNS})
    spaced = {c.name: frame[c.name].to_numpy(np.float32 if c.kind == "numeric" else str) for c in COLUMNS}
    # the spaces alone change the bare network's answers: what the served model must undo
    assert np.abs(_keras_answers(net, served.vocabularies, spaced) - expected).max() > 1e-3

    wrong_type = frame.astype({"age": object})
    wrong_type.loc[1, "age"] = "forty"
    not_text = frame.astype({"occupation": object})
    not_text.loc[2, "occupation"] = 7
    bad = {
        "missing": (frame.drop(columns=["age"]), "missing input column(s) 'age'"),
        "unknown": (frame.assign(income=" <=50K."), "unknown input column(s) 'income'"),
        "wrong type": (wrong_type, "input column 'age' must hold finite numbers, but row 1 holds 'forty'"),
        "not text": (not_text, "input column 'occupation' must hold text (categories), but row 2 holds 7"),
    }
    csv_status, csv_answer = _post(served.port, csv_body, "text/csv")
    json_status, json_answer = _post(served.port, _as_json(frame), "application/json")
    refused = {what: _post(served.port, _as_json(rows), "application/json") for what, (rows, _) in bad.items()}
    assert (csv_status, json_status) == (200, 200), (csv_answer, json_answer)
    for answer in (csv_answer, json_answer):
        probs = np.array([p["probability"] for p in answer["predictions"]])
        np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6)
    # the served answers score as the run's evaluation did on the same file (a row at 0.5 may tip)
    accuracy = float(np.mean((probs > 0.5) == labels))
    assert accuracy == pytest.approx(served.run.data.metrics["final_test_accuracy"], abs=1.01 / N_TEST)
    for what, (status, answer) in refused.items():
        assert status == 400, (what, answer)
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE", (what, answer)
        assert bad[what][1] in answer["message"], (what, answer["message"])


@pytest.mark.slow
@pytest.mark.realdata
def test_served_model_answers_raw_adult_test_rows_as_its_network(served: SimpleNamespace) -> None:
    """UCI's adult.test as the file writes it (a space after each comma, categories and '?' the tiny
    training rows never saw): every row answered as the network answers harness's reading of it."""
    import pandas as pd

    test_file = REAL_DATA / "adult" / "adult.test"
    if not test_file.exists():
        missing_real_data("UCI Adult (adult/adult.test)")
    rows = pd.read_csv(test_file, skiprows=1, header=None, names=[c.name for c in COLUMNS] + ["income"])
    assert rows["workclass"].iloc[0] == " Private"  # the file's spacing, kept
    rows.pop("income")
    status, answer = _post(served.port, _as_json(rows), "application/json")
    assert status == 200, answer
    probs = np.array([p["probability"] for p in answer["predictions"]])
    assert len(probs) == 16281
    x, _, _ = read_adult_file(test_file)
    expected = _keras_answers(served.net, served.vocabularies, {c.name: x[c.name] for c in COLUMNS})
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_census_runs_log_both_splits_with_their_columns(census: SimpleNamespace) -> None:
    """The UI's Dataset column and panel: train and test, each with its context, schema and rows."""
    inputs = {d.dataset.name: d for d in census.runs["dropout"].inputs.dataset_inputs}
    assert set(inputs) == {"adult-train", "adult-test"}
    columns = {c.name: "double" if c.kind == "numeric" else "string" for c in COLUMNS}
    for split, context, rows in (("train", "training", N_TRAIN), ("test", "testing", N_TEST)):
        data = inputs[f"adult-{split}"]
        assert {t.key: t.value for t in data.tags} == {"mlflow.data.context": context}
        schema = json.loads(data.dataset.schema)["mlflow_colspec"]
        assert {c["name"]: c["type"] for c in schema} == {**columns, "label": "long"}
        assert json.loads(data.dataset.profile)["num_rows"] == rows


@pytest.mark.slow
def test_mlflow_models_view_lists_the_rungs_models_with_their_metrics(
    census: SimpleNamespace, served: SimpleNamespace, tmp_path: Path
) -> None:
    browser = chromium()
    models = {m.name: m for m in census.client.search_logged_models([census.exp_id])}
    assert set(models) == set(RUNGS.values())
    shown = []
    for rung, name in RUNGS.items():
        run, model = census.runs[rung], models[name]
        assert model.source_run_id == run.info.run_id
        metrics = {m.key: m.value for m in model.metrics}
        assert metrics["final_test_accuracy"] == run.data.metrics["final_test_accuracy"]
        assert model.params["model.name"] == MODELS[rung] and model.params == run.data.params
        shown.append(repr(metrics["final_test_accuracy"]))
    wait_for_http(f"http://127.0.0.1:{served.ui_port}/health", served.ui)
    url = f"http://127.0.0.1:{served.ui_port}/#/experiments/{census.exp_id}/models"
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    out = subprocess.run(
        [browser, *CHROMIUM_FLAGS, profile, "--dump-dom", url], capture_output=True, text=True, timeout=180
    )
    page = out.stdout
    assert "final_test_accuracy" in page, page[-2000:]  # a metric column of the Models view
    for name, value in zip(RUNGS.values(), shown, strict=True):
        assert name in page and value in page, (name, value)
