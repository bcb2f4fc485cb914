"""The shamir and sneak CLIs: defaults run, files round-trip, bad input exits 2 with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from redundancy.secret_sharing.cli import shamir_app, sneak_app
from redundancy.secret_sharing.reproduce import run

BIN = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script
runner = CliRunner()


def test_split_combine_files(tmp_path):
    shares = tmp_path / "shares.txt"
    result = runner.invoke(
        shamir_app, ["split", "top secret", "-n", "4", "-k", "2", "--out", str(shares)]
    )
    assert result.exit_code == 0, result.output
    lines = shares.read_text().splitlines()
    assert len(lines) == 4
    two = tmp_path / "two.txt"
    two.write_text("\n".join(lines[2:]) + "\n")
    out = tmp_path / "secret.bin"
    assert runner.invoke(shamir_app, ["combine", str(two), "--out", str(out)]).exit_code == 0
    assert out.read_bytes() == b"top secret"


def test_defaults_run():
    assert "sss1:gf256:k=3:i=5" in runner.invoke(shamir_app, ["split"]).output
    check = runner.invoke(sneak_app, ["check", "rgg:60:16", "-k", "2"])
    assert check.exit_code == 0 and "k-propagating: yes" in check.output
    result = runner.invoke(sneak_app, ["run", "rgg:60:16", "-k", "2"])
    assert result.exit_code == 0 and "share check: ok" in result.output


def test_bad_input_exits_2(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text(runner.invoke(shamir_app, ["split"]).output.splitlines()[0] + "\n")
    for args in (
        ["shamir", "combine", str(one)],
        ["shamir", "split", "-k", "1"],
        ["sneak", "run", "er:100:4"],
        ["sneak", "run", "--runtime", "mpi"],
    ):
        proc = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("error:")


def test_reproduce_quick(tmp_path):
    rows = run(quick=True, out_dir=tmp_path)
    assert len(rows) == 12 and (tmp_path / "sneak_vs_smt.png").exists()
    assert all(r.ours.startswith("SNEAK 5;") for r in rows if r.metric.startswith("random"))
