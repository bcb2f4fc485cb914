"""The `redundancy dart` commands and the reproduce rows."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import make_friedman1
from typer.testing import CliRunner

from redundancy.dart.cli import app
from redundancy.dart.reproduce import run

EXE = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script


def test_fit_then_predict_on_csv(tmp_path):
    X, y = make_friedman1(300, random_state=0)
    csv = tmp_path / "d.csv"
    header = ",".join([f"f{i}" for i in range(10)] + ["target"])
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",", header=header, comments="")
    runner = CliRunner()
    res = runner.invoke(
        app, ["fit", str(csv), "--out", str(tmp_path / "m.json"), "--n-estimators", "30"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.json").exists() and "top features" in res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "m.json"), str(csv)])
    assert res.exit_code == 0, res.output
    r2 = float(res.output.strip().split()[-1])
    assert r2 > 0.8


def test_bad_input_exits_2():
    bad = subprocess.run(
        [EXE, "dart", "fit", "--task", "ranking"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "task" in bad.stderr
    missing = subprocess.run(
        [EXE, "dart", "predict", "/nonexistent.json", "/nonexistent.csv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2


def test_reproduce_quick(tmp_path):
    rows = run(quick=True, out_dir=tmp_path)
    assert len(rows) == 6 and all(r.system == "dart" for r in rows)
    mart, dart = (float(r.ours) for r in rows[:2])
    assert dart < mart  # DART beats MART on diabetes, as in the paper
    assert (tmp_path / "dart_contributions.png").exists()
