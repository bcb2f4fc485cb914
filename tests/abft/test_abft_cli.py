"""``redundancy abft``: values in --json documents, full-width piped tables, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from redundancy.abft.cli import app
from redundancy.errors import ParameterError

REDUNDANCY = str(Path(sys.executable).with_name("redundancy"))


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


def test_cli_module_imports_no_torch() -> None:
    code = "import sys, redundancy.abft.cli; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_profile_json_is_the_t4_datasheet() -> None:
    doc = run_json("profile", "T4")
    assert doc["name"] == "T4" and doc["bandwidth_bytes_per_s"] == 320e9
    assert doc["dtypes"]["float32"] == {"peak_flops": 8.1e12, "ridge_flops_per_byte": 25.3125}
    assert doc["dtypes"]["float16"]["ridge_flops_per_byte"] == 65e12 / 320e9


def test_plan_json_has_the_dlrm_gemms_and_the_papers_rule() -> None:
    doc = run_json("plan", "dlrm", "--selector", "paper")
    gemms = [(layer["m"], layer["k"], layer["n"]) for layer in doc["layers"]]
    # DLRM MLPs 13-512-256-64 -> 512-512-256-1 at width 0.25 (4x narrower), batch 1
    expected = [(13, 128), (128, 64), (64, 16), (16, 128), (128, 128), (128, 64), (64, 1)]
    assert gemms == [(1, k, n) for k, n in expected]
    first = doc["layers"][0]  # AI = 2MNK / (4 (MN + MK + KN)) by hand: 2*128*13 / (4*1805)
    assert first["intensity"] == pytest.approx(3328 / 7220)
    assert {layer["scheme"] for layer in doc["layers"]} == {"tiled"}  # all AI < 25.3
    assert doc["unprotected"] == {}


def test_plan_table_piped_keeps_every_layer_name_whole() -> None:
    names = [
        layer["name"] for layer in run_json("plan", "resnet50", "--selector", "paper")["layers"]
    ]
    result = CliRunner().invoke(app, ["plan", "resnet50", "--selector", "paper"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()[3:]  # title, header, rule
    assert [line.split()[0] for line in lines] == names
    assert all(line.split()[-1] in ("global", "tiled") for line in lines)


def test_plan_lists_attention_projections_as_unprotected() -> None:
    doc = run_json("plan", "transformer", "--selector", "paper")
    assert sorted(doc["unprotected"]) == [
        f"encoder.layers.{i}.self_attn.out_proj" for i in range(4)
    ]
    assert "encoder.layers.0.linear1" in [layer["name"] for layer in doc["layers"]]


def test_inject_json_counts_exponent_flips_on_dlrm() -> None:
    doc = run_json("inject", "dlrm", "--bits", "30", "--trials", "6", "--strategy", "global")
    # bit 30 of an fp32 value below 2 in magnitude makes it ~1e38: far above any threshold;
    # whether the model output changes depends on what follows (a ReLU can hide a flip)
    [bit] = doc["bits"]
    assert bit["bit"] == 30 and bit["flips"] == bit["detected"] == 6
    assert bit["detected_corrupted"] == bit["corrupted"] >= 1
    assert doc["false_positives"] == 0 and doc["clean_runs"] == 4


def test_bench_json_reports_consistent_overheads_and_no_false_positives() -> None:
    doc = run_json("bench", "dlrm", "--repeats", "1")
    assert set(doc["seconds"]) == {"global", "tiled", "guided", "replication"}
    for name, seconds in doc["seconds"].items():
        assert seconds > 0
        assert doc["overhead"][name] == pytest.approx(seconds / doc["unprotected_s"] - 1)
    best = min(doc["overhead"]["global"], doc["overhead"]["tiled"])
    assert doc["guided_over_best_fixed"] == pytest.approx(doc["overhead"]["guided"] / best)
    assert doc["false_positives"] == 0 and 0 <= doc["max_clean_ratio"] < 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["plan", "nosuch"], "nosuch"),
        (["plan", "dlrm", "--selector", "guess"], "guess"),
        (["inject", "--bits", "3x"], "3x"),
        (["inject", "--target", "memory", "--trials", "1"], "memory"),
        (["bench", "--repeats", "0"], "repeats=0"),
        (["profile", "Z80"], "Z80"),
    ],
)
def test_bad_input_raises_a_parameter_error_naming_the_value(args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ParameterError)
    assert named in str(result.exception) and result.stdout == ""


def test_bad_input_is_one_line_on_stderr_and_exit_2() -> None:
    proc = subprocess.run(
        [REDUNDANCY, "abft", "plan", "nosuch"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "nosuch" in proc.stderr
