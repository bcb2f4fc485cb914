"""The ``redundancy ecrm`` command: runs on its quick default; bad input exits 2 with one line."""

import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script


def run(*args):
    return subprocess.run([CLI, "ecrm", *args], capture_output=True, text=True, timeout=120)


def test_train_quick_with_failure_prints_recovery():
    out = run("train", "--quick", "--steps", "40", "--fail-at", "20", "--k", "2")
    assert out.returncode == 0, out.stderr
    assert "recovery" in out.stdout and "pause" in out.stdout


@pytest.mark.parametrize(
    "args,field",
    [
        (["train", "--k", "4", "--servers", "4"], "num_servers"),
        (["train", "--quick", "--fail-at", "500"], "fail_at"),
        (["train", "--mode", "raid"], "mode"),
        (["train", "--config", "/nonexistent.yaml"], "cannot read config"),
    ],
)
def test_bad_input_exits_2_naming_the_field(args, field):
    out = run(*args)
    assert out.returncode == 2
    assert field in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
