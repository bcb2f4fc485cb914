"""``redundancy ec`` as scripts use it: cheap start, data alone on stdout, JSON reports."""

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np

from redundancy.erasure import store

CLI = [sys.executable, "-m", "redundancy.cli"]


def run_cli(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, **kwargs)


def make_store(tmp: Path, code: str = "rs:3,2") -> Path:
    source = tmp / "f.bin"
    source.write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes())
    store.encode_file(source, tmp / "st", code, stripe_size=2048)
    return tmp / "st"


def test_cli_module_imports_no_library_code():
    heavy = ["numpy", "pydantic", "fsspec", "rich.progress", "redundancy.erasure.store"]
    heavy += ["redundancy.gf256", "torch", "sklearn", "numba", "scipy"]
    probe = (
        "import sys, redundancy.erasure.cli as c; assert c.MOUNT and c.NAME and c.app; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_progress_goes_to_stderr_even_on_a_terminal(tmp_path):
    # stderr is a terminal (progress bars shown), stdout a pipe: stdout must stay empty.
    source = tmp_path / "f.bin"
    source.write_bytes(bytes(3_000_000))
    for args in (["ec", "encode", "missing.bin"], ["ec", "encode", "f.bin", "--out", "st"]):
        leader, follower = pty.openpty()
        try:
            result = subprocess.run(
                [*CLI, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=follower
            )
        finally:
            os.close(follower)
            os.close(leader)
        assert result.stdout == b""


def test_verify_json_documents_each_outcome(tmp_path):
    root = make_store(tmp_path)
    intact = run_cli("ec", "verify", "st", "--json", cwd=tmp_path)
    document = json.loads(intact.stdout)
    assert intact.returncode == 0 and document["status"] == "intact"
    assert [s["state"] for s in document["shards"]] == ["ok"] * 5
    assert document["unexpected_files"] == [] and document["exit_code"] == 0
    (root / store.shard_relpath(2)).unlink()
    damaged = run_cli("ec", "verify", "st", "--json", cwd=tmp_path)
    document = json.loads(damaged.stdout)
    assert damaged.returncode == 1 and document["status"] == "damaged"
    assert document["damaged"] == [2] and document["shards"][2]["state"] == "missing"
    (root / store.shard_relpath(0)).unlink()
    (root / store.shard_relpath(4)).unlink()
    lost = run_cli("ec", "verify", "st", "--json", cwd=tmp_path)
    document = json.loads(lost.stdout)  # still exactly one JSON document on stdout
    assert lost.returncode == 3 and document["status"] == "unrecoverable"
    assert document["recoverable"] is False and document["damaged"] == [0, 2, 4]
    assert len(lost.stderr.splitlines()) == 1


def test_info_json_matches_hand_computed_figures(tmp_path):
    result = run_cli("ec", "info", "--code", "lrc:6,2,2", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["k"], document["n"]) == (6, 10)
    assert document["tolerates_any_lost"] == 3  # distance g + 2 = 4
    assert document["local_groups"] == [[0, 1, 2, 6], [3, 4, 5, 7]]
    # data and local parities read the 3 others of their group; a global parity reads k = 6.
    assert document["repair_reads"] == [3, 3, 3, 3, 3, 3, 3, 3, 6, 6]
    assert document["storage_overhead"] == round(10 / 6, 6)
    rs = json.loads(run_cli("ec", "info", "--code", "rs:10,4", "--json", cwd=tmp_path).stdout)
    assert rs["tolerates_any_lost"] == 4 and rs["repair_reads"] == [10] * 14


def test_tables_stay_whole_when_piped(tmp_path):
    make_store(tmp_path)
    result = run_cli("ec", "verify", "st", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["shard", "path", "state", "corrupt", "stripes"]
    rows = [line.split() for line in lines[3:8]]
    assert rows == [[str(i), store.shard_relpath(i), "ok"] for i in range(5)]
    assert lines[-1] == "all shards intact"
