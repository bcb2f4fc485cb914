"""The `redundancy parm` command: quick runs on digits, and bad input as exit code 2."""

import subprocess
from pathlib import Path

import torch
from typer.testing import CliRunner

from redundancy.coded_inference.cli import app
from redundancy.errors import ConfigError, ParameterError

torch.set_num_threads(1)
REDUNDANCY = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "redundancy"
runner = CliRunner()


def test_parm_train_then_evaluate_on_digits(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "digits",
            "--k",
            "4",
            "--encoder",
            "concatenation",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ParM (concatenation, k=4)" in result.output
    assert (out / "bundle.pt").is_file() and (out / "overall.png").is_file()
    again = runner.invoke(app, ["eval", "--bundle", str(out / "bundle.pt"), "--k", "4"])
    assert again.exit_code == 0 and "default prediction" in again.output
    wrong = runner.invoke(app, ["evaluate", "--bundle", str(out / "bundle.pt"), "--k", "2"])
    assert isinstance(wrong.exception, ParameterError)


def test_learned_train_then_evaluate_on_digits(tmp_path):
    out = tmp_path / "learned"
    result = runner.invoke(
        app,
        [
            "learned",
            "train",
            "--dataset",
            "digits",
            "--loss",
            "ce",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["learned", "evaluate", "--bundle", str(out / "learned.pt")])
    assert again.exit_code == 0 and "learned code (mlp, k=2)" in again.output


def test_bad_options_name_the_field():
    result = runner.invoke(
        app, ["train", "--dataset", "digits", "--encoder", "concatenation", "--k", "3"]
    )
    assert isinstance(result.exception, ConfigError) and "k=3" in str(result.exception)


def test_cli_exit_code_2_on_bad_input(tmp_path):
    missing = subprocess.run(
        [str(REDUNDANCY), "parm", "evaluate", "--bundle", str(tmp_path / "none.pt")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "parm train" in missing.stderr
    bad_k = subprocess.run(
        [str(REDUNDANCY), "parm", "learned", "train", "--k", "1"], capture_output=True, text=True
    )
    assert bad_k.returncode == 2 and "field k" in bad_k.stderr
