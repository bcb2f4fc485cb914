"""The ``redundancy ecrm`` command: what a run reports, and bad input as one named line.

One run of the real console script (start-up ~4 s) checks the streams and the text report; the
rest go through the same Typer app in-process (the bad inputs must raise the RedundancyError that
the top-level ``main`` prints as one line with exit code 2).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from redundancy.ecrm import cli as ecrm_cli
from redundancy.ecrm.config import load_config, make_config
from redundancy.errors import ConfigError, RedundancyError

CLI = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script
TINY = ["--rows", "60", "--dim", "4"]


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(ecrm_cli.app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def raises_named(*args: str) -> str:
    command = typer.main.get_command(ecrm_cli.app)
    with pytest.raises(RedundancyError) as info:
        command(list(args), standalone_mode=False)
    message = str(info.value)
    assert "\n" not in message and "Value error" not in message and "Input should" not in message
    return message


def test_train_quick_with_failure_recovers_the_failure_free_run():
    failed = run_json("train", "--quick", "--k", "2")
    clean = run_json("train", "--quick", "--k", "2", "--fail-at", "-1")
    assert failed["steps"] == clean["steps"] == 40 and len(failed["losses"]) == 40
    assert clean["failure"] is None
    fail = failed["failure"]
    assert fail["server"] == 0 and fail["before_step"] == 20  # the preset: halfway
    assert fail["redone_steps"] == 0  # ECRM never goes back
    assert 0 < fail["recovery_s"] < failed["total_s"] and 0 <= fail["pause_s"] <= fail["recovery_s"]
    assert fail["at_s"] < fail["at_s"] + fail["rebuild_s"] <= failed["total_s"]
    # Same seed, same batches: identical until the kill, then the recovered rows differ from the
    # lost ones only by float32 rounding (docs/ecrm.md), so the losses stay within 1e-5.
    assert failed["losses"][:20] == clean["losses"][:20]
    np.testing.assert_allclose(failed["losses"][20:], clean["losses"][20:], rtol=0, atol=1e-5)
    assert np.mean(clean["losses"][-10:]) < np.mean(clean["losses"][:10])


def test_checkpoint_mode_redoes_the_steps_since_its_checkpoint():
    res = run_json("train", "--mode", "checkpoint", "--steps", "30", "--fail-at", "10", *TINY)
    fail = res["failure"]
    assert res["steps"] == 30 and fail["before_step"] == 10
    interval = res["checkpoint_interval_steps"]
    assert fail["redone_steps"] == 10 - (10 // interval) * interval  # back to the last checkpoint


def test_console_script_prints_the_report_on_stdout_only():
    out = subprocess.run(
        [CLI, "ecrm", "train", "--quick", "--steps", "20", *TINY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # on a pipe: no bar, no log; a run slowed past 2 s (a loaded machine) may add plain progress
    # lines, never the report
    assert "\x1b" not in out.stderr
    assert all(line.startswith("training") for line in out.stderr.splitlines()), out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "ecrm train --mode ecrm (k=2, 20 steps)"
    assert lines[1].split() == ["t", "(s)", "new", "steps/s", "loss"]
    assert len([line for line in lines if line[:1].isdigit()]) == 10  # one row per 2 steps
    assert any(line.startswith("server 0 killed before step 10 (t=") for line in lines)


@pytest.mark.parametrize(
    "args,steps,fail_at",
    [
        (["--steps", "30", "--fail-at", "10"], 30, 10),  # was refused: fail_at=100 vs steps=30
        (["--quick", "--steps", "10"], 10, 5),  # the preset's failure moves with --steps
        (["--steps", "9"], 9, 4),
        (["--quick", "--fail-at", "0", "--steps", "3"], 3, 0),
    ],
)
def test_flags_are_validated_together(args, steps, fail_at):
    res = run_json("train", *args, *TINY)
    assert res["steps"] == steps and res["failure"]["before_step"] == fail_at


def test_flags_override_a_config_file_before_validation(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("steps: 12\nfail_at: 8\nmodel: {table_rows: [60, 60], dim: 4}\n")
    res = run_json("train", "--config", str(config), "--steps", "30", "--fail-at", "20")
    assert res["steps"] == 30 and res["failure"]["before_step"] == 20
    message = raises_named("train", "--config", str(config), "--steps", "6")
    assert message.startswith(f"config {config}: fail_at=8") and "0..5" in message


@pytest.mark.parametrize(
    "flag,value,expected",
    [
        ("--rows", "0", "--rows=0 is out of range (allowed: 1..1000000000)"),  # was ignored
        ("--steps", "0", "--steps=0 is out of range (allowed: 1..10000000)"),
        ("--dim", "0", "--dim=0 is out of range (allowed: 1..1024)"),
        ("--k", "0", "--k=0 is out of range (allowed: 1..64)"),
        ("-k", "-2", "--k=-2 is out of range (allowed: 1..64)"),
        ("--servers", "0", "--servers=0 is out of range (allowed: 1..256)"),
        ("--mtbf", "0", "--mtbf=0.0 is out of range (allowed: > 0.0)"),
        ("--fail-server", "-1", "--fail-server=-1 is out of range (allowed: >= 0)"),
    ],
)
def test_zero_and_negative_values_are_refused_by_flag(flag, value, expected):
    assert raises_named("train", "--quick", flag, value) == expected


@pytest.mark.parametrize(
    "args,expected",
    [
        (["train", "--quick", "--fail-at", "500"], "fail_at=500 must be a step of the run "
         "(allowed with steps=40: 0..39, or none for no failure)"),
        (["train", "--mode", "raid"], "--mode='raid' is not allowed (use 'ecrm', 'checkpoint' "
         "or 'none')"),
        (["train", "--quick", "--k", "4", "--servers", "4"], "servers.num_servers=4 must be >= "
         "k+1=5 for servers.k=4 (a stripe's k data rows and its parity live on different servers)"),
        (["train", "--quick", "--fail-server", "4"], "fail_server=4 is out of range "
         "(allowed: 0..3 with 4 servers)"),
        (["train", "--config", "/nonexistent.yaml"], "cannot read config /nonexistent.yaml: "
         "No such file or directory"),
        (["compare", "--quick", "--fail-at", "0"], "fail_at=0 must lie in 1..39"),
    ],
)  # fmt: skip
def test_bad_input_raises_one_named_line(args, expected):
    assert raises_named(*args) == expected


def test_bad_input_through_the_console_script_is_one_line_exit_2():
    out = subprocess.run(
        [CLI, "ecrm", "train", "--quick", "--rows", "0"], capture_output=True, text=True
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == ["error: --rows=0 is out of range (allowed: 1..1000000000)"]


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.sampled_from(["k", "dim", "table_rows", "x"]), st.integers(-3, 3)),
)
_KEYS = st.sampled_from(
    ["steps", "fail_at", "fail_server", "mode", "mtbf_s", "window", "model", "data", "servers",
     "bogus"]
)  # fmt: skip


@given(raw=st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_any_config_file_loads_or_names_its_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "c.json"
    path.write_text(json.dumps(raw))
    try:
        load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"config {path}: ") and "\n" not in message
        assert "Value error" not in message and "Input should" not in message


def test_list_items_are_named_with_their_index_and_whole_range():
    with pytest.raises(RedundancyError) as info:
        make_config(model={"table_rows": [5, 0]})
    assert str(info.value) == "model.table_rows[1]=0 is out of range (allowed: 1..1000000000)"


def test_compare_json_reports_every_mode_with_its_spread():
    doc = run_json("compare", "--steps", "20", "--rounds", "1", *TINY)
    assert doc["fail_at"] == 10 and doc["rounds"] == 1 and set(doc["modes"]) == {
        "none", "ecrm", "checkpoint"
    }  # fmt: skip
    ecrm, ckpt = doc["modes"]["ecrm"], doc["modes"]["checkpoint"]
    assert doc["modes"]["none"]["recovery_s"] is None and ckpt["rebuild_s"] is None
    for spread in (ecrm["recovery_s"], ckpt["recovery_s"], ecrm["rebuild_s"]):
        assert spread["min"] == spread["median"] == spread["max"] == spread["values"][0] > 0
    ratio = ckpt["recovery_s"]["median"] / ecrm["recovery_s"]["median"]
    assert doc["recovery_ratio"]["median"] == pytest.approx(ratio)
