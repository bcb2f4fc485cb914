"""The command line as a script sees it: one-line errors, documented exit codes, lazy imports.

Every command of every system is walked: its help works, and bad input of each kind gives exactly
one line on stderr, no traceback, and exit code 2.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import pytest
import typer

from redundancy import cli

CLI = [sys.executable, "-m", "redundancy.cli"]
# Written out by hand (not read from the code): what a user is promised in the README.
EXPECTED_COMMANDS = {
    "reproduce", "abft", "parm", "learned-code", "convert", "coral", "dart", "ecrm", "ec",
    "regen", "shamir", "sneak",
}  # fmt: skip
HEAVY = {"torch", "ray", "sklearn", "numba", "scipy", "pandas", "xgboost", "lightgbm"}


def run_cli(args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, input=stdin, timeout=300, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr and "Value error," not in result.stderr


def listed_commands(help_text: str) -> set[str]:
    section = help_text.split("Commands:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^  (\S+)", section, re.M)}


def test_help_lists_exactly_the_promised_commands():
    for flag in ("--help", "-h"):
        result = run_cli([flag])
        assert result.returncode == 0
        assert listed_commands(result.stdout) == EXPECTED_COMMANDS
        assert "3 data not recoverable" in " ".join(result.stdout.split())  # exit codes


def test_no_arguments_prints_help_and_succeeds():
    result = run_cli([])
    assert result.returncode == 0 and listed_commands(result.stdout) == EXPECTED_COMMANDS


def test_version_matches_the_installed_distribution():
    result = run_cli(["--version"])
    assert result.returncode == 0
    assert result.stdout == f"redundancy {importlib.metadata.version('redundancy')}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["ec", "--help"],
        ["ec", "info", "--code", "rs:10,4"],
        ["ec", "encode", "/nonexistent/file.bin"],
    ],
)
def test_cheap_commands_import_no_heavy_library(argv):
    code = (
        "import sys\nfrom redundancy import cli\n"
        f"try:\n    cli.run({argv!r})\nexcept SystemExit:\n    pass\n"
        f"sys.stderr.write(repr(sorted({HEAVY!r} & set(sys.modules))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stderr.splitlines()[-1] == "[]", result.stderr


def leaf_commands() -> list[list[str]]:
    """Every runnable command path, read from the mounted Typer apps."""
    paths: list[list[str]] = [["reproduce"]]

    def walk(command, prefix: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            paths.append(prefix)
            return
        for name, sub in subcommands.items():
            if not getattr(sub, "hidden", False):
                walk(sub, [*prefix, name])

    for name in sorted(cli.mounted_commands()):
        walk(typer.main.get_command(cli._load_system_app(name)), [name])
    return paths


LEAVES = leaf_commands()


def test_every_system_has_commands():
    assert {path[0] for path in LEAVES} == EXPECTED_COMMANDS
    assert len(LEAVES) > 30


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_has_help_and_refuses_unknown_options_in_one_line(path, capfd):
    assert cli.run([*path, "--help"]) == 0
    help_text = capfd.readouterr().out
    assert help_text.startswith("Usage: redundancy " + " ".join(path))
    assert cli.run([*path, "--no-such-option"]) == 2
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert "--no-such-option" in captured.err


def test_unknown_command_names_the_command():
    result = run_cli(["ec", "enocde"])
    assert_one_line_error(result)
    assert "enocde" in result.stderr


BAD_INPUTS = [
    ["ec", "encode"],  # missing argument
    ["ec", "encode", "/nonexistent/f.bin"],  # missing file
    ["ec", "encode", "/tmp"],  # a folder where a file is expected
    ["ec", "info", "--code", "rs:x,4"],  # bad code spec
    ["ec", "info", "--code", "rs:0,4"],  # zero
    ["ec", "info", "--code", "rs:-3,4"],  # negative
    ["ec", "info", "--code", "bogus:1,2"],
    ["ec", "verify", "/nonexistent.ec"],
    ["reproduce", "nope"],
    ["reproduce", "--out", "/etc/hostname", "erasure"],
    ["coral", "plan", "--max-nodes", "0"],
    ["coral", "plan", "--max-nodes", "many"],  # wrong type
    ["coral", "simulate", "--duration", "nan"],
    ["coral", "simulate", "--duration", "inf"],
    ["coral", "compare", "--duration", "-5"],
    ["coral", "explain", "/nonexistent/plan.json"],
    ["coral", "plan", "/nonexistent/scenario.yaml"],
    ["shamir", "combine", "/nonexistent/shares.txt"],
    ["regen", "info", "--k", "0"],
    ["dart", "fit", "/nonexistent.csv"],
]


@pytest.mark.parametrize("argv", BAD_INPUTS, ids=" ".join)
def test_bad_input_is_one_line_and_exit_2(argv):
    assert_one_line_error(run_cli(argv))


def test_one_line_flattens_multi_line_messages():
    assert cli.one_line("first\n\n  second   part\n") == "first; second part"


def test_a_missing_extra_is_named_in_one_line():
    # torch made unimportable, as on a core-only install.
    code = (
        "import sys\nsys.modules['torch'] = None\nfrom redundancy import cli\n"
        "sys.exit(cli.run(['abft', 'plan']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert_one_line_error(result)
    assert "redundancy[ml]" in result.stderr
