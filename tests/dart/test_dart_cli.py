"""The `redundancy dart` commands and the reproduce rows."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_friedman1
from sklearn.metrics import r2_score
from typer.testing import CliRunner

from redundancy.dart import load
from redundancy.dart.cli import app
from redundancy.dart.reproduce import run
from redundancy.errors import ParameterError

EXE = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script


def write_csv(path, X, y=None, names=None):
    names = names or [f"f{i}" for i in range(X.shape[1])]
    table = X if y is None else np.column_stack([X, y])
    header = ",".join(names + ([] if y is None else ["target"]))
    np.savetxt(path, table, delimiter=",", header=header, comments="")


def test_predict_writes_every_prediction_as_csv(tmp_path):
    X, y = make_friedman1(300, random_state=0)
    write_csv(tmp_path / "d.csv", X, y)
    runner = CliRunner()
    res = runner.invoke(
        app, ["fit", str(tmp_path / "d.csv"), "--out", str(tmp_path / "m.json"),
              "--n-estimators", "30"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("fitted DARTRegressor (30 rounds)")
    res = runner.invoke(app, ["predict", str(tmp_path / "m.json"), str(tmp_path / "d.csv")])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(io.StringIO(res.stdout))
    assert list(got.columns) == ["prediction"] and len(got) == 300  # every row, not five
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    want = load(tmp_path / "m.json").predict(frame)
    assert np.array_equal(got["prediction"].to_numpy(), want)  # %.17g round-trips exactly
    r2 = r2_score(y, got["prediction"])
    assert r2 > 0.8 and res.stderr == f"score (R^2) on 300 rows: {r2:.4f}\n"
    # Columns in another order (matched by name), no target column, output to a file:
    names = [f"f{i}" for i in range(10)]
    write_csv(tmp_path / "r.csv", X[:, ::-1], names=names[::-1])
    out = tmp_path / "p.csv"
    res = runner.invoke(
        app, ["predict", str(tmp_path / "m.json"), str(tmp_path / "r.csv"), "--out", str(out)]
    )
    assert res.exit_code == 0 and res.stdout == "" and res.stderr == ""
    assert np.array_equal(pd.read_csv(out)["prediction"].to_numpy(), want)
    res = runner.invoke(
        app, ["predict", str(tmp_path / "m.json"), str(tmp_path / "r.csv"), "--out", str(out)]
    )
    assert res.exit_code != 0 and "--force" in str(res.exception)
    write_csv(tmp_path / "short.csv", X[:, :9], names=names[:9])
    res = runner.invoke(app, ["predict", str(tmp_path / "m.json"), str(tmp_path / "short.csv")])
    assert isinstance(res.exception, ParameterError) and "f9" in str(res.exception)


def test_dash_reads_the_csv_from_stdin(tmp_path):
    X, y = make_friedman1(120, random_state=1)
    write_csv(tmp_path / "d.csv", X, y)
    text = (tmp_path / "d.csv").read_text()
    runner = CliRunner()
    args = ["--out", str(tmp_path / "m.json"), "--n-estimators", "10"]
    res = runner.invoke(app, ["fit", "-", *args], input=text)
    assert res.exit_code == 0, res.output
    from_stdin = runner.invoke(app, ["predict", str(tmp_path / "m.json"), "-"], input=text)
    from_file = runner.invoke(app, ["predict", str(tmp_path / "m.json"), str(tmp_path / "d.csv")])
    assert from_stdin.exit_code == 0 and from_stdin.stdout == from_file.stdout
    assert len(from_stdin.stdout.splitlines()) == 121  # header + every row


def test_compare_json_is_one_document_with_every_model(tmp_path):
    X, y = make_friedman1(120, random_state=0)
    write_csv(tmp_path / "d.csv", X, y)
    res = CliRunner().invoke(
        app, ["compare", str(tmp_path / "d.csv"), "--folds", "2", "--n-estimators", "4", "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["folds"] == 2 and doc["metric"] == "rmse"
    assert {"ours MART", "ours DART"} <= set(doc["models"])
    for result in doc["models"].values():
        assert 0 < result["rmse"] < 3 * np.std(y) and result["fit_seconds"] >= 0


def test_command_modules_import_no_heavy_library():
    code = (
        "import sys, redundancy.dart.cli, redundancy.ecrm.cli\n"
        "heavy = ('torch', 'sklearn', 'numba', 'pandas', 'numpy', 'scipy', 'ray')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
    # The paper column holds only the paper's own claims; this machine's figures are references.
    for row, figure in zip(rows[:4], ("60.98", "58.27", ".0820", ".0793"), strict=True):
        assert figure not in row.paper and row.reference.endswith(f": {figure}")
        assert "this machine" in row.reference
    assert rows[1].paper.startswith("DART beats MART") and rows[0].paper == ""
    mart, dart = (float(r.ours) for r in rows[:2])
    assert dart < mart  # DART beats MART on diabetes, as in the paper
    assert (tmp_path / "dart_contributions.png").exists()
