"""UCI Adult (census income) as a table, and a deterministic synthetic twin for tests and smoke runs.

``DIR/adult/adult.data`` (train) and ``adult.test`` (test: its first line is a
comment and its labels end with a dot), comma-separated without a header, ``?``
for a missing value, columns as ``adult.names`` lists them; numeric columns must
hold finite numbers (``nan`` or ``inf`` is refused, naming the line), and the
training file rows of both classes. Categorical values
are kept as strings (``?`` is a category of its own: "not stated"); the label is
income ``>50K`` (class 1) against ``<=50K`` (class 0). Column names use
underscores (``education_num``), as the served model's inputs.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from harness.config import DataParams
from harness.data._base import register_dataset
from harness.data._tabular import TableColumn, TabularDataset, structured
from harness.errors import DataError

FOLDER = "adult"
TRAIN_FILE, TEST_FILE = "adult.data", "adult.test"
COLUMNS = (
    TableColumn("age", "numeric"),
    TableColumn("workclass", "categorical"),
    TableColumn("fnlwgt", "numeric"),
    TableColumn("education", "categorical"),
    TableColumn("education_num", "numeric"),
    TableColumn("marital_status", "categorical"),
    TableColumn("occupation", "categorical"),
    TableColumn("relationship", "categorical"),
    TableColumn("race", "categorical"),
    TableColumn("sex", "categorical"),
    TableColumn("capital_gain", "numeric"),
    TableColumn("capital_loss", "numeric"),
    TableColumn("hours_per_week", "numeric"),
    TableColumn("native_country", "categorical"),
)
CLASSES = ("<=50K", ">50K")
FLOAT32_MAX = float(np.finfo(np.float32).max)  # numeric columns are float32: a larger value becomes inf


def read_adult_file(path: Path) -> tuple[np.ndarray, np.ndarray, bytes]:
    """One Adult CSV file -> (structured rows, labels, raw bytes); errors name the file and line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (expected UCI Adult's {path.name})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}): is this UCI Adult's {path.name}?") from None
    data: dict[str, list[object]] = {c.name: [] for c in COLUMNS}
    labels: list[int] = []
    expected = len(COLUMNS) + 1
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("|"):  # blank lines, and adult.test's "|1x3 Cross validator"
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != expected:
            raise DataError(
                f"{path}:{lineno}: expected {expected} comma-separated fields "
                f"({', '.join(c.name for c in COLUMNS)}, income), but got {len(fields)}"
            )
        label = fields[-1].removesuffix(".")
        if label not in CLASSES:
            raise DataError(f"{path}:{lineno}: income must be one of {', '.join(CLASSES)}, but got {fields[-1]!r}")
        labels.append(CLASSES.index(label))
        for col, value in zip(COLUMNS, fields, strict=False):
            if col.kind == "numeric":
                try:
                    number = float(value)
                except ValueError:
                    raise DataError(f"{path}:{lineno}: {col.name} must be a number, but got {value!r}") from None
                if not (math.isfinite(number) and abs(number) <= FLOAT32_MAX):  # else a NaN loss, much later
                    raise DataError(f"{path}:{lineno}: {col.name} must be a finite number, but got {value!r}")
                data[col.name].append(number)
            else:
                data[col.name].append(value)
    if not labels:
        raise DataError(f"{path}: no rows (expected UCI Adult's comma-separated rows)")
    return structured(COLUMNS, data), np.asarray(labels, dtype=np.int64), raw


@register_dataset("adult", params=DataParams, tasks=("tabular",))
def load_adult(data_dir: Path | None, params: DataParams) -> TabularDataset:
    if data_dir is None:
        raise DataError(
            "dataset 'adult' needs a data directory holding adult/adult.data and adult/adult.test: "
            "set HARNESS_DATA_DIR or pass --data-dir"
        )
    folder = data_dir / FOLDER
    x_train, y_train, raw_train = read_adult_file(folder / TRAIN_FILE)
    if np.all(y_train == y_train[0]):  # a one-class test file is fine: its undefined metrics say so
        raise DataError(
            f"{folder / TRAIN_FILE}: every row has income {CLASSES[y_train[0]]}; a classifier needs training "
            f"rows of both classes ({', '.join(CLASSES)})"
        )
    x_test, y_test, raw_test = read_adult_file(folder / TEST_FILE)
    digest = hashlib.sha256(raw_train)
    digest.update(raw_test)
    return TabularDataset(
        name="adult",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=2,
        checksum=digest.hexdigest(),
        source=str(folder),
        columns=COLUMNS,
        class_names=CLASSES,
    )


def synthetic_rows(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows with Adult's columns whose label follows a known rule (plus noise), so models can learn it."""
    age = rng.integers(17, 80, n)
    edu_num = rng.integers(1, 17, n)
    hours = rng.integers(10, 80, n)
    gain = np.where(rng.random(n) < 0.08, rng.integers(1000, 20000, n), 0)
    married = rng.random(n) < 0.45
    sex = np.where(rng.random(n) < 0.67, "Male", "Female")
    occupations = np.array(["Exec-managerial", "Prof-specialty", "Sales", "Craft-repair", "Other-service", "?"])
    occupation = occupations[rng.integers(0, len(occupations), n)]
    score = (
        0.04 * (age - 40)
        + 0.35 * (edu_num - 10)
        + 0.03 * (hours - 40)
        + 0.0004 * gain
        + 1.5 * married
        + 0.8 * np.isin(occupation, ["Exec-managerial", "Prof-specialty"])
        - 1.6
    )
    label = (score + rng.logistic(0, 0.7, n) > 0).astype(np.int64)
    data: dict[str, list[object]] = {
        "age": age.tolist(),
        "workclass": rng.choice(["Private", "Self-emp-not-inc", "State-gov"], n).tolist(),
        "fnlwgt": rng.integers(20000, 500000, n).tolist(),
        "education": [f"edu-{k}" for k in edu_num],
        "education_num": edu_num.tolist(),
        "marital_status": np.where(married, "Married-civ-spouse", "Never-married").tolist(),
        "occupation": occupation.tolist(),
        "relationship": np.where(married, "Husband", "Not-in-family").tolist(),
        "race": rng.choice(["White", "Black", "Asian-Pac-Islander"], n).tolist(),
        "sex": sex.tolist(),
        "capital_gain": gain.tolist(),
        "capital_loss": [0.0] * n,
        "hours_per_week": hours.tolist(),
        "native_country": rng.choice(["United-States", "Mexico", "?"], n, p=[0.9, 0.05, 0.05]).tolist(),
    }
    return structured(COLUMNS, data), label


@register_dataset("adult_synthetic", params=DataParams, tasks=("tabular",), synthetic=True)
def load_adult_synthetic(data_dir: Path | None, params: DataParams) -> TabularDataset:
    """3,000 training and 1,000 test rows, the same every time (no files needed)."""
    rng = np.random.default_rng(20170601)
    x_train, y_train = synthetic_rows(3000, rng)
    x_test, y_test = synthetic_rows(1000, rng)
    digest = hashlib.sha256(x_train.tobytes() + x_test.tobytes()).hexdigest()
    return TabularDataset(
        name="adult_synthetic",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=2,
        checksum=digest,
        source="generated (harness.data._adult.synthetic_rows, seed 20170601)",
        columns=COLUMNS,
        class_names=CLASSES,
    )
