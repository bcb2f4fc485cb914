"""The ``redundancy ecrm`` command: runs on its quick default; bad input exits 2 with one line.

Two runs of the real console script (each pays ~4 s of start-up); the other bad inputs go
through the same Typer app in-process and must raise the error that ``main`` turns into exit 2.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from redundancy.ecrm import cli as ecrm_cli
from redundancy.errors import RedundancyError

CLI = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script


def run(*args):
    return subprocess.run([CLI, "ecrm", *args], capture_output=True, text=True, timeout=120)


def test_train_quick_with_failure_prints_recovery():
    out = run("train", "--quick", "--k", "2")
    assert out.returncode == 0, out.stderr
    assert "recovery" in out.stdout and "pause" in out.stdout and "rebuild" in out.stdout


def test_bad_input_exits_2_with_one_line():
    out = run("train", "--k", "4", "--servers", "4")
    assert out.returncode == 2
    assert "num_servers" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args,field",
    [
        (["train", "--quick", "--fail-at", "500"], "fail_at"),
        (["train", "--mode", "raid"], "mode"),
        (["train", "--config", "/nonexistent.yaml"], "cannot read config"),
        (["compare", "--quick", "--fail-at", "0"], "fail_at"),
    ],
)
def test_bad_input_raises_named_error(args, field):
    command = typer.main.get_command(ecrm_cli.app)
    with pytest.raises(RedundancyError, match=field):
        command(args, standalone_mode=False)
