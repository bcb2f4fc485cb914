"""Node files and the `redundancy regen` command: round trips, repair, bad input -> exit 2."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from redundancy.errors import ConfigError, DecodeError, IntegrityError, ParameterError
from redundancy.regenerating import RegenParams, decode_file, encode_file, repair_file
from redundancy.regenerating.cli import app
from redundancy.regenerating.files import node_path, read_node

REDUNDANCY = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script
runner = CliRunner()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path


@pytest.mark.parametrize(
    "params", [RegenParams("mbr", 6, 3, 4, l=1), RegenParams("msr", 8, 3, 5, b=1)], ids=str
)
def test_file_round_trip_and_repair(tmp_path, source, params: RegenParams) -> None:
    folder = tmp_path / "nodes"
    paths = encode_file(source, folder, params, np.random.default_rng(0))
    original = paths[2].read_bytes()
    paths[2].unlink()
    path, report = repair_file(folder, 2)
    assert path.read_bytes() == original
    assert len(report.contacted) == params.d + params.b
    for j in (0, 4):
        node_path(folder, j).unlink()
    report = decode_file(folder, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()


def test_mismatched_and_damaged_node_files(tmp_path, source) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    encode_file(source, a, RegenParams("mbr", 6, 3, 4), np.random.default_rng(0))
    encode_file(source, b, RegenParams("mbr", 6, 3, 5), np.random.default_rng(0))
    with pytest.raises(DecodeError, match="not found"):
        repair_file(a, 0, [1, 2, 9], force=True)
    with pytest.raises(ParameterError, match="failed=7"):
        repair_file(a, 7)
    node_path(a, 1).write_bytes(node_path(b, 1).read_bytes())
    with pytest.raises(IntegrityError, match="different encoding"):
        decode_file(a, tmp_path / "out.bin")
    node_path(b, 0).write_bytes(node_path(b, 0).read_bytes()[:-3])
    with pytest.raises(IntegrityError, match="payload"):
        read_node(node_path(b, 0))
    with pytest.raises(ParameterError, match="no such folder"):
        decode_file(tmp_path / "missing", tmp_path / "out.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DecodeError, match="no node files"):
        decode_file(tmp_path / "empty", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_too_few_helpers(tmp_path, source) -> None:
    folder = tmp_path / "n"
    encode_file(source, folder, RegenParams("mbr", 6, 3, 4))
    for j in (0, 1, 2):
        node_path(folder, j).unlink()
    with pytest.raises(DecodeError, match="d=4"):
        repair_file(folder, 0)


def test_config_file(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("kind: msr\nn: 7\nk: 3\nd: 4\nl: 1\n")
    assert RegenParams.load(config) == RegenParams("msr", 7, 3, 4, l=1)
    config.write_text("kind: msr\nwidth: 3\n")
    with pytest.raises(ConfigError, match="width"):
        RegenParams.load(config)


def test_cli_round_trip(tmp_path, source) -> None:
    folder = tmp_path / "data.bin.regen"
    result = runner.invoke(app, ["encode", str(source), "--kind", "msr", "--n", "7", "--d", "5"])
    assert result.exit_code == 0, result.output
    node_path(folder, 3).unlink()
    result = runner.invoke(app, ["repair", str(folder), "--node", "3"])
    assert result.exit_code == 0 and "downloaded" in result.output
    result = runner.invoke(app, ["decode", str(folder), "--out", str(tmp_path / "back.bin")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


def test_cli_info_defaults_and_secure() -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0 and "RS(6,3)" in result.output
    result = runner.invoke(
        app, ["info", "--kind", "msr", "--n", "9", "--k", "4", "--d", "6", "--l", "1"]
    )
    assert result.exit_code == 0 and "hidden from any 1 nodes" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["info", "--kind", "msr", "--d", "3"],
        ["encode", "/nonexistent/file"],
        ["decode", "/nonexistent-regen-dir"],
    ],
)
def test_cli_bad_input_exits_2(args: list[str]) -> None:
    done = subprocess.run([REDUNDANCY, "regen", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "error" in done.stderr.lower()
