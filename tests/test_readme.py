"""The README's quick tour runs verbatim in a fresh folder: every shell and Python block."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    """Fenced blocks of ``language`` in the README, except the set-up one (``make ...``)."""
    found = re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.M | re.S)
    return [b for b in found if not b.lstrip().startswith("make ")]


def test_readme_has_a_tour():
    assert blocks("bash") and blocks("python")


def run_shell(script: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("index", range(len(blocks("bash"))))
def test_shell_block_runs_verbatim(index, tmp_path):
    result = run_shell(blocks("bash")[index], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    if index == 0:  # the tour: what its comments promise
        assert "exit 1: damage found" in result.stdout
        assert "identical" in result.stdout
        assert "my real secret" in result.stdout
        assert (tmp_path / "copy.tar").read_bytes() == (tmp_path / "photos.tar").read_bytes()


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block_runs_verbatim(index, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", blocks("python")[index]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
