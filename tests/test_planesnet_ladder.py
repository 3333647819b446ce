"""The PlanesNet ladder at smoke scale on tiny generated tiles, both splits in one invocation.

The tuned rung stands for the ladder: its config holds every change of the rungs before it (CNN, batch
norm, learning-rate decay, dropout, augmentation); each run costs seconds of tracing and logging."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers import store_runs

from harness.cli import main


@pytest.mark.slow
def test_planesnet_smoke_ladder_both_splits(workdir: Path, tiny_planesnet_dir: Path) -> None:
    argv = [*"ladder planesnet --scale smoke --rungs tuned --vary split=scene,random --data-dir".split()]
    assert main([*argv, str(tiny_planesnet_dir)]) == 0
    runs = store_runs(workdir, "ladder/planesnet")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["harness.rung"] for r in children} == {"tuned"}
    every_change = ("model.name", "model.batchnorm", "model.dropout", "data.augment")
    assert {tuple(r.data.params[k] for k in every_change) for r in children} == {("cnn", "True", "0.3", "True")}
    assert sorted({r.data.tags["harness.variant"] for r in children}) == ["split=random", "split=scene"]
    assert all("final_test_precision" in r.data.metrics and "final_test_recall" in r.data.metrics for r in children)
    table = pd.read_csv(workdir / "results" / "planesnet_ladder_smoke_rungs_tuned.csv")
    assert len(table) == 2  # the task's columns, named by their MLflow metric
    assert table["final_test_precision_mean"].notna().all() and table["final_test_recall_mean"].notna().all()
    md = (workdir / "results" / "planesnet_ladder_smoke_rungs_tuned.md").read_text()
    assert "precision %" in md and "split=scene" in md and "split=random" in md

    # one rung run again on its own (as the tuned rung at full scale is), shown as extra rows of the table
    first = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags).info.run_id
    argv = [*"ladder planesnet --rungs tuned --scale smoke --set split=random --no-report --data-dir".split()]
    assert main([*argv, str(tiny_planesnet_dir)]) == 0
    second = next(
        r.info.run_id
        for r in store_runs(workdir, "ladder/planesnet")
        if "mlflow.parentRunId" not in r.data.tags and r.info.run_id != first
    )
    assert main(["report", "ladder", "planesnet", "--run", first, "--also", second, "--out", "both"]) == 0
    both = pd.read_csv(workdir / "both" / "planesnet_ladder_smoke.csv")
    extra = both[both["parent_run_id"] == second]
    assert len(both) == 3 and list(extra["variant"]) == ["smoke scale, split=random"]
    assert list(extra["rung"]) == ["tuned"] and extra["reference"].iloc[0] == pytest.approx(0.996)
    text = (workdir / "both" / "planesnet_ladder_smoke.md").read_text()
    assert f"parent run `{second}`" in text and "| smoke scale, split=random" in text
    assert "not comparable with the talk's references" in text  # smoke numbers are not judged


def test_corrupt_archive_is_refused_before_any_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = workdir / "data" / "planesnet"
    data.mkdir(parents=True)
    (data / "planesnet.zip").write_bytes(b"PK\x03\x04 truncated")
    assert main(["ladder", "planesnet", "--scale", "smoke", "--data-dir", str(workdir / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "planesnet.zip" in err
    assert not (workdir / "mlflow.db").exists()  # nothing half-written, nothing RUNNING
