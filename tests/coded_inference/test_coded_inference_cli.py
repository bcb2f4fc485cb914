"""The `redundancy parm` command: quick runs on digits, and bad input as exit code 2."""

import json
import signal
import subprocess
import sys
import time
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
            "-k",
            "4",
            "--encoder",
            "concatenation",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ParM (concatenation, k=4)" in result.stdout
    assert (out / "bundle.pt").is_file() and (out / "overall.png").is_file()
    again = runner.invoke(app, ["eval", "--bundle", str(out / "bundle.pt"), "--k", "4", "--json"])
    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)  # the whole of stdout is one JSON document
    methods = [r["method"] for r in document["results"]]
    assert methods == ["ParM (concatenation, k=4)", "cheap backup", "default prediction"]
    # the same scores as the training run wrote to results.json
    written = json.loads((out / "results.json").read_text())["results"]
    assert document["results"] == written
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
    assert again.exit_code == 0 and "learned code (mlp, k=2)" in again.stdout
    # a piped table is plain text: a header, a rule, one full line per method
    lines = again.stdout.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("method"))) :]
    assert table[1].startswith("----") and len(table) == 4


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
    assert bad_k.returncode == 2 and "-k/--k=1" in bad_k.stderr


def test_importing_the_cli_imports_no_library():
    script = (
        "import sys, redundancy.coded_inference.cli\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray', 'numpy', 'rich'}))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_serve_runs_until_ctrl_c_then_stops_cleanly():
    server = subprocess.Popen(
        [str(REDUNDANCY), "parm", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "serving" not in line and time.monotonic() < deadline:
            line = server.stderr.readline()
        assert "until Ctrl-C" in line, line
        time.sleep(6.0)  # longer than the old fixed 5 s
        assert server.poll() is None, "the server stopped by itself"
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, err
    assert "stopped" in err and out == ""
