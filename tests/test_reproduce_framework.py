"""The top-level command: systems are mounted, reproduce writes its report, errors exit 2."""

import json
import subprocess
import sys

import pytest

from redundancy import reproduce
from redundancy.errors import ParameterError

CLI = [sys.executable, "-m", "redundancy.cli"]


def test_reproduce_erasure_quick_writes_table_rows_and_plots(tmp_path):
    result = subprocess.run(
        [*CLI, "reproduce", "--quick", "erasure", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "erasure" in result.stdout
    assert not result.stdout.startswith("reproducing")  # progress goes to stderr
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert {r["system"] for r in rows} == {"erasure"}
    drill = next(r for r in rows if r["metric"].startswith("store drill"))
    assert drill["ours"] == "identical"
    lrc = next(r for r in rows if "LRC(12,2,2)" in r["metric"])
    assert lrc["ours"] == "6 vs 12"
    assert (tmp_path / "table.md").read_text().startswith("| system | metric | paper | reference |")
    assert json.loads((tmp_path / "erasure" / "rows.json").read_text())["rows"] == rows
    assert (tmp_path / "erasure" / "encode_throughput.png").stat().st_size > 1000
    assert (tmp_path / "timings.png").exists()


def test_running_one_system_keeps_the_other_systems_rows(tmp_path):
    mine = reproduce.Row("erasure", "throughput", "", "1 GB/s")
    other = reproduce.Row("dart", "rmse", "DART beats MART", "1.2")
    reproduce.write_report([other], {"dart": 1.0}, tmp_path)
    reproduce.write_report([mine], {"erasure": 2.0}, tmp_path)
    document = json.loads((tmp_path / "rows.json").read_text())
    assert [r["system"] for r in document["rows"]] == ["dart", "erasure"]
    assert document["seconds"] == {"dart": 1.0, "erasure": 2.0}
    rerun = reproduce.Row("erasure", "throughput", "", "2 GB/s")
    reproduce.write_report([rerun], {"erasure": 3.0}, tmp_path)
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert [(r["system"], r["ours"]) for r in rows] == [("dart", "1.2"), ("erasure", "2 GB/s")]


def test_reproduce_json_is_one_document_with_the_rows(tmp_path):
    result = subprocess.run(
        [*CLI, "reproduce", "--quick", "erasure", "--json", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(result.stdout)
    assert document == json.loads((tmp_path / "rows.json").read_text())


def test_unknown_system_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match="unknown system"):
        reproduce.run(["nope"], quick=True, out_dir=tmp_path)


def test_import_redundancy_loads_no_heavy_dependency():
    heavy = "{'torch', 'ray', 'numba', 'xgboost'}"
    code = f"import sys, redundancy, redundancy.cli; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_markdown_table_escapes_pipes_inside_cells():
    table = reproduce.markdown_table([reproduce.Row("s", "|N(D)| symbols", "1", "2")])
    assert table.splitlines()[2] == "| s | \\|N(D)\\| symbols | 1 |  | 2 |  |"
