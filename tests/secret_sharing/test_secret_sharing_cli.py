"""The shamir and sneak CLIs as a user and a script see them: only the user's secret is shared,
stdout is byte-exact, forged shares are named, exit codes mean something, files are private and
never replaced silently, and hostile share files or graphs never write outside --out."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from redundancy.errors import RedundancyError
from redundancy.secret_sharing import Share, split
from redundancy.secret_sharing import cli as ss_cli
from redundancy.secret_sharing.cli import shamir_app, sneak_app
from redundancy.secret_sharing.reproduce import run

BIN = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script
runner = CliRunner()


def cli(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN, *args], input=stdin, capture_output=True, timeout=60, cwd=cwd, check=False
    )


def exit_code(result) -> int:
    """What the top-level CLI exits with for a CliRunner result (it maps errors to exit_code)."""
    if isinstance(result.exception, RedundancyError):
        return result.exception.exit_code
    return result.exit_code


def invoke(app, *args: str, stdin: bytes = b""):
    """In-process run (fast): (exit code as the CLI maps it, stdout bytes, stderr bytes)."""
    result = runner.invoke(app, list(args), input=stdin)
    if result.exception is not None and not isinstance(
        result.exception, RedundancyError | SystemExit
    ):
        raise result.exception
    return exit_code(result), result.stdout_bytes, result.stderr_bytes


def test_piped_secret_is_shared_not_a_built_in_phrase():
    """The issue's reproduction: split stdin, keep two shares, combine from stdin."""
    shares = cli("shamir", "split", "-n", "3", "-k", "2", stdin=b"my real secret")
    assert shares.returncode == 0, shares.stderr
    two = b"".join(shares.stdout.splitlines(keepends=True)[:2])
    combined = cli("shamir", "combine", "-", stdin=two)
    assert combined.returncode == 0 and combined.stdout == b"my real secret"


def test_secret_sources(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x00from a file\xff")
    for args, stdin in (([str(secret)], b""), (["--file", str(secret)], b""), (["-"], None)):
        data = secret.read_bytes() if stdin is None else stdin
        code, shares, _ = invoke(shamir_app, "split", *args, "--k", "2", "--n", "2", stdin=data)
        assert code == 0
        assert invoke(shamir_app, "combine", "-", stdin=shares)[1] == secret.read_bytes()
    _, demo, _ = invoke(shamir_app, "split", "--demo", "-n", "2", "-k", "2")
    assert invoke(shamir_app, "combine", "-", stdin=demo)[1] == ss_cli.DEMO_SECRET


@pytest.mark.parametrize(
    ("args", "stdin", "match"),
    [
        ([], b"", b"no secret given"),  # nothing piped, no --demo
        (["my secret"], b"", b"never from the command line"),  # not a file: refused, not shared
        (["--demo", "-"], b"x", b"--demo"),
    ],
)
def test_split_refuses_without_a_real_secret(args, stdin, match):
    result = runner.invoke(shamir_app, ["split", *args], input=stdin)
    assert exit_code(result) == 2 and result.stdout_bytes == b""
    assert match.decode() in str(result.exception)


def test_prompt_without_echo_on_a_terminal(monkeypatch):
    typed = iter(["typed secret", "typed secret"])
    monkeypatch.setattr(ss_cli, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    result = runner.invoke(shamir_app, ["split", "-n", "2", "-k", "2"])
    assert result.exit_code == 0, result.output
    shares = [line for line in result.stdout.splitlines() if line.startswith("sss1:")]
    assert runner.invoke(shamir_app, ["combine", "-"], input="\n".join(shares)).stdout_bytes == (
        b"typed secret"
    )
    mismatch = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(mismatch))
    assert exit_code(runner.invoke(shamir_app, ["split"])) == 2


def test_combine_stdout_is_byte_exact(tmp_path):
    secret = bytes(range(256)) + b"no newline at the end"
    (tmp_path / "s.bin").write_bytes(secret)
    assert cli("shamir", "split", "s.bin", "--out", "s.txt", cwd=tmp_path).returncode == 0
    out = cli("shamir", "combine", "s.txt", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout == secret and out.stderr == b""


def test_files_are_private_and_not_replaced_without_force(tmp_path):
    (tmp_path / "s.bin").write_bytes(b"secret")
    assert cli("shamir", "split", "s.bin", "--out", "s.txt", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE(os.stat(tmp_path / "s.txt").st_mode) == 0o600
    before = (tmp_path / "s.txt").read_bytes()
    again = cli("shamir", "split", "s.bin", "--out", "s.txt", cwd=tmp_path)
    assert again.returncode == 2 and b"--force" in again.stderr
    assert (tmp_path / "s.txt").read_bytes() == before
    assert (
        cli("shamir", "split", "s.bin", "--out", "s.txt", "--force", cwd=tmp_path).returncode == 0
    )
    assert (tmp_path / "s.txt").read_bytes() != before
    assert cli("shamir", "combine", "s.txt", "--out", "g.bin", cwd=tmp_path).returncode == 0
    assert (tmp_path / "g.bin").read_bytes() == b"secret"
    assert stat.S_IMODE(os.stat(tmp_path / "g.bin").st_mode) == 0o600
    assert cli("shamir", "combine", "s.txt", "--out", "g.bin", cwd=tmp_path).returncode == 2


def forged_line(share: Share) -> str:
    payload = bytes([share.payload[0] ^ 1]) + share.payload[1:]
    return Share(**{**share.__dict__, "payload": payload}).to_text()


def test_forged_share_is_named_and_tolerated_on_request(tmp_path):
    shares = split(b"vault key", n=5, k=3)
    lines = [forged_line(shares[0])] + [s.to_text() for s in shares[1:]]
    (tmp_path / "s.txt").write_text("\n".join(lines) + "\n")
    strict = cli("shamir", "combine", "s.txt", cwd=tmp_path)
    assert strict.returncode == 2 and strict.stdout == b""
    assert b"[1]" in strict.stderr and strict.stderr.count(b"\n") == 1
    code, out, err = invoke(shamir_app, "combine", str(tmp_path / "s.txt"), "--tolerate-bad")
    assert code == 0 and out == b"vault key" and b"share i=1 ignored" in err
    (tmp_path / "k.txt").write_text("\n".join(lines[:3]) + "\n")  # k shares, one forged
    assert invoke(shamir_app, "combine", str(tmp_path / "k.txt"))[0] == 3
    (tmp_path / "few.txt").write_text("\n".join(lines[1:3]) + "\n")
    assert invoke(shamir_app, "combine", str(tmp_path / "few.txt"), "--tolerate-bad")[0] == 3


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"sss1:gf256:k=2:i=1:"]))
def test_fuzzed_share_files_exit_2_and_write_nothing(tmp_path, data, prefix):
    share_file = tmp_path / "fuzz.txt"
    share_file.write_bytes(prefix + data)
    target = tmp_path / "out" / "secret.bin"
    result = runner.invoke(shamir_app, ["combine", str(share_file), "--out", str(target)])
    assert exit_code(result) in (2, 3)  # malformed, or well formed but too few shares
    assert isinstance(result.exception, RedundancyError)
    assert not (tmp_path / "out").exists()


def test_sneak_refuses_thresholds_it_cannot_serve(tmp_path):
    edges = tmp_path / "g.txt"
    edges.write_text("D a\nD b\n")
    for args in (["run", str(edges), "-k", "3"], ["run", "rgg:30:12", "-k", "1"]):
        code, out, _ = invoke(sneak_app, *args)
        assert code == 2 and out == b"", args


def test_sneak_shares_rebuild_the_secret_through_shamir_combine(tmp_path, monkeypatch):
    """End to end through the CLI: a 32-byte key disseminated by SNEAK, any k files combine."""
    key = os.urandom(32)
    (tmp_path / "key.bin").write_bytes(key)
    out = cli(
        "sneak", "run", "rgg:30:12", "-k", "3", "--file", "key.bin", "--out", "sh", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    files = sorted((tmp_path / "sh").iterdir())
    assert len(files) == 30
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    combined = cli("shamir", "combine", *map(str, files[:3]))
    assert combined.returncode == 0 and combined.stdout == key
    for chosen in (files[-3:], files[::10]):
        assert invoke(shamir_app, "combine", *map(str, chosen)) == (0, key, b"")
    assert invoke(shamir_app, "combine", *map(str, files[:2]))[0] == 3
    monkeypatch.chdir(tmp_path)
    assert invoke(sneak_app, "run", "rgg:30:12", "-k", "3", "--out", "sh")[0] == 2  # no --force


def test_hostile_node_names_stay_inside_the_share_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph = tmp_path / "g.txt"
    graph.write_text("D ../../escape\nD /etc/evil\nD ..\n../../escape /etc/evil\n.. /etc/evil\n")
    assert invoke(sneak_app, "run", str(graph), "-k", "2", "--out", "dir")[0] == 0
    inside = sorted(p.name for p in (tmp_path / "dir").iterdir())
    assert len(inside) == 3 and all(name.startswith("share-") for name in inside)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "g.txt"]


def test_json_reports_are_the_whole_of_stdout():
    code, out, _ = invoke(sneak_app, "check", "rgg:60:16", "--k", "2", "--json")
    assert code == 0 and json.loads(out)["k_propagating"] is True
    code, out, _ = invoke(sneak_app, "run", "rgg:60:16", "-k", "2", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["missing"] == [] and summary["share_check"].startswith("ok")
    assert summary["secret_bytes"] == 32 and summary["sneak"]["random_symbols"] == 2 * 7
    code, out, _ = invoke(sneak_app, "check", "er:100:4", "-k", "3", "--json")
    assert code == 1 and json.loads(out)["k_propagating"] is False


def test_tables_go_to_stdout_notes_to_stderr():
    code, out, err = invoke(sneak_app, "run", "rgg:60:16", "-k", "2")
    assert code == 0 and b"symbols sent" in out and b"share check: ok" in out
    assert b"random 32-byte key" in err and b"key" not in out.lower()


def test_cli_module_is_cheap_to_import():
    code = (
        "import sys, redundancy.secret_sharing.cli; "
        "heavy = {'networkx', 'numpy', 'rich', 'redundancy.secret_sharing.shamir'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_input_exits_2(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text(split(b"x", n=5, k=3)[0].to_text() + "\n")
    assert cli("shamir", "combine", str(one)).returncode == 3  # too few shares: not recoverable
    proc = cli("sneak", "run", "er:100:4")
    assert proc.returncode == 2 and proc.stderr.count(b"\n") == 1
    for app, args in (
        (shamir_app, ["split", "--demo", "-k", "1"]),
        (sneak_app, ["run", "--runtime", "mpi"]),
        (shamir_app, ["combine", str(tmp_path)]),
        (shamir_app, ["combine", str(tmp_path / "missing.txt")]),
    ):
        assert invoke(app, *args)[:2] == (2, b""), args


def test_reproduce_quick(tmp_path):
    rows = run(quick=True, out_dir=tmp_path)
    assert len(rows) == 12 and (tmp_path / "sneak_vs_smt.png").exists()
    assert all(r.ours.startswith("SNEAK 5;") for r in rows if r.metric.startswith("random"))
