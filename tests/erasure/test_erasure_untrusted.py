"""A store is untrusted input: hostile manifests and shards never write outside, never substitute
data, never leave litter (issue 17, erasure store)."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from redundancy.erasure import store
from redundancy.erasure.manifest import load_manifest
from redundancy.errors import DecodeError, IntegrityError, ParameterError

CLI = [sys.executable, "-m", "redundancy.cli"]
SOURCE_BYTES = 30_000


def make_file(folder: Path, size: int = SOURCE_BYTES, seed: int = 0, name: str = "f.bin") -> Path:
    path = folder / name
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def make_store(tmp: Path, code: str = "rs:3,2", stripe: int = 4096) -> tuple[Path, Path]:
    source = make_file(tmp)
    root = tmp / "st"
    store.encode_file(source, root, code, stripe_size=stripe)
    return source, root


def edit_manifest(root: Path, edit) -> None:
    data = json.loads((root / "manifest.json").read_text())
    edit(data)
    (root / "manifest.json").write_text(json.dumps(data))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), symbolic links not followed."""
    return {
        p.relative_to(folder).as_posix(): (b"->" if p.is_symlink() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def run_cli(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, **kwargs)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert result.returncode == code, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert "Traceback" not in stderr and stderr.startswith("error: ")
    return stderr


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


# --------------------------------------------------------------------------- 1. names
BAD_NAMES = [
    "../escaped.bin",
    "/tmp/absolute.bin",
    "sub/name.bin",
    "",
    ".",
    "..",
    "nul\x00byte",
    "back\\slash",
    "new\nline",
    "x" * 256,
    "\udc80",  # a lone surrogate: not encodable as a file name
    7,
    None,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_file_name_that_is_not_a_plain_name_is_refused(tmp_path, name):
    _, root = make_store(tmp_path)
    edit_manifest(root, lambda m: m.update(file_name=name))
    before = snapshot(tmp_path)
    with pytest.raises(IntegrityError, match="file_name"):
        store.decode_store(root)
    with pytest.raises(IntegrityError, match="file_name"):
        store.decode_store(root, tmp_path / "out")
    assert snapshot(tmp_path) == before


def test_cli_decode_inside_the_store_cannot_escape(tmp_path):
    # The reproduction: file_name "../escaped.bin", `ec decode .` run inside the store.
    source, root = make_store(tmp_path)
    (tmp_path / "escaped.bin").write_bytes(b"the user's own file")
    for bad in ("../escaped.bin", str(tmp_path / "escaped.bin")):
        edit_manifest(root, lambda m, bad=bad: m.update(file_name=bad))
        before = snapshot(tmp_path)
        result = run_cli("ec", "decode", ".", cwd=root)
        assert "file_name" in assert_one_line_error(result, 2)
        assert snapshot(tmp_path) == before
    edit_manifest(root, lambda m: m.update(file_name="f.bin"))
    assert run_cli("ec", "decode", ".", "--out", "back.bin", cwd=root).returncode == 0
    assert (root / "back.bin").read_bytes() == source.read_bytes()


BAD_SHARD_PATHS = [
    "/etc/passwd",
    "../outside.bin",
    "node-000/../../outside.bin",
    "node-000//shard-000.bin",
    "./node-000/shard-000.bin",
    "node-000/",
    "",
    "node-000/shard\x00.bin",
    "node-000\\shard-000.bin",
    ".hidden/shard-000.bin",
    "node-000/.shard-001.bin.abc123.tmp",
    "/".join(["d"] * 17),
]


@pytest.mark.parametrize("path", BAD_SHARD_PATHS)
def test_shard_path_outside_or_odd_is_refused_by_every_command(tmp_path, path):
    _, root = make_store(tmp_path)
    edit_manifest(root, lambda m: m["shards"][1].update(path=path))
    before = snapshot(tmp_path)
    for command in (
        lambda: store.decode_store(root, tmp_path / "out.bin"),
        lambda: store.verify_store(root),
        lambda: store.repair_store(root),
        lambda: store.repair_store(root, only=[1]),
    ):
        with pytest.raises(IntegrityError, match=r"shards\.1"):
            command()
    assert snapshot(tmp_path) == before


def test_symlinked_node_folder_leading_outside_is_refused(tmp_path):
    _, root = make_store(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(root / "node-001")
    (root / "node-001").symlink_to(outside, target_is_directory=True)
    with pytest.raises(IntegrityError, match="outside the store"):
        store.repair_store(root)
    with pytest.raises(IntegrityError, match="outside the store"):
        store.decode_store(root, tmp_path / "out.bin")
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "out.bin").exists()


def test_symlinked_shard_file_leading_outside_is_never_read(tmp_path):
    _, root = make_store(tmp_path)
    secret = tmp_path / "secret.bin"
    shard = root / store.shard_relpath(0)
    secret.write_bytes(shard.read_bytes())  # even with matching checksums it is not read
    shard.unlink()
    shard.symlink_to(secret)
    with pytest.raises(IntegrityError, match="outside the store"):
        store.verify_store(root)


# --------------------------------------------------------------------------- 3. duplicates
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["shards"][1].update(path=m["shards"][0]["path"]), "share one file"),
        (lambda m: m["shards"][1].update(path=m["shards"][0]["path"].upper()), "share one file"),
        (lambda m: m["shards"][1].update(path="node-000"), "also a folder"),
        (lambda m: m["shards"][1].update(path="manifest.json"), "manifest itself"),
    ],
)
def test_two_shards_on_one_file_are_refused(tmp_path, edit, message):
    _, root = make_store(tmp_path)
    (root / store.shard_relpath(0)).unlink()
    edit_manifest(root, edit)
    before = snapshot(tmp_path)
    for command in (
        lambda: store.repair_store(root),
        lambda: store.verify_store(root),
        lambda: store.decode_store(root, tmp_path / "out.bin"),
    ):
        with pytest.raises(IntegrityError, match=message):
            command()
    assert snapshot(tmp_path) == before
    result = run_cli("ec", "repair", "st", cwd=tmp_path)
    assert message in assert_one_line_error(result, 2)


# --------------------------------------------------------------------------- 4. sizes
@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.update(stripe_size=10**15), "at stripe_size"),
        (lambda m: m.update(file_size=10**18), "at file_size"),
        (lambda m: m.update(file_size=2**64 + 1), "file_size"),
        (lambda m: m.update(stripes=0), "checksums"),
        (lambda m: m.update(stripes=10**12), "checksums"),
        (lambda m: m.update(stripe_size=0), "at stripe_size"),
        (lambda m: m.update(file_size="30000"), "file_size"),
        (lambda m: m.update(file_size=30000.0), "file_size"),
        (lambda m: m.update(file_size=True), "file_size"),
        (lambda m: m.update(file_mode=-1), "file_mode"),
        (lambda m: m["shards"][0]["crc32"].__setitem__(0, 2**32), "checksums must be CRC-32"),
        (lambda m: m["shards"][0].update(index=300), "index"),
    ],
)
def test_absurd_or_mistyped_sizes_are_refused_before_any_write(tmp_path, edit, field):
    _, root = make_store(tmp_path)
    edit_manifest(root, edit)
    before = snapshot(tmp_path)
    for command in (
        lambda: store.decode_store(root, tmp_path / "out.bin"),
        lambda: store.repair_store(root, only=[0]),
    ):
        with pytest.raises(IntegrityError, match=field):
            command()
    assert snapshot(tmp_path) == before


def test_consistent_but_enormous_sizes_are_refused_before_any_write(tmp_path):
    # 32 TiB at 1 GiB stripes: a well-formed manifest no shard file can back.
    _, root = make_store(tmp_path, code="rs:2,1")
    size, stripe = 1 << 45, 1 << 30
    stripes = size // (2 * stripe)
    edit_manifest(
        root,
        lambda m: m.update(
            file_size=size,
            stripe_size=stripe,
            stripes=stripes,
            shards=[dict(s, crc32=[0] * stripes) for s in m["shards"]],
        ),
    )
    before = snapshot(tmp_path)
    with pytest.raises(ParameterError, match="needs 35184372088832 bytes"):
        store.decode_store(root, tmp_path / "out.bin")
    result = run_cli("ec", "decode", "st", "--out", "-", cwd=tmp_path)
    assert_one_line_error(result, 3)  # every shard has the wrong size
    assert result.stdout == b""
    with pytest.raises(DecodeError, match="wrong-size"):
        store.repair_store(root, only=[0])
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- 2. decode output
def test_decode_into_a_folder_uses_the_original_name(tmp_path):
    source, root = make_store(tmp_path)
    (tmp_path / "out").mkdir()
    result = run_cli("ec", "decode", "st", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "f.bin").read_bytes() == source.read_bytes()
    store.decode_store(root, f"{tmp_path}/new-folder/")
    assert (tmp_path / "new-folder" / "f.bin").read_bytes() == source.read_bytes()


def test_decode_refuses_to_replace_a_file_without_force(tmp_path):
    source, root = make_store(tmp_path)
    target = tmp_path / "existing.bin"
    target.write_bytes(b"keep me")
    result = run_cli("ec", "decode", "st", "--out", "existing.bin", cwd=tmp_path)
    assert "--force" in assert_one_line_error(result, 2)
    assert target.read_bytes() == b"keep me"
    # The default destination (beside the store) is the original file itself: refused too.
    assert "--force" in assert_one_line_error(run_cli("ec", "decode", "st", cwd=tmp_path), 2)
    result = run_cli("ec", "decode", "st", "--out", "existing.bin", "--force", cwd=tmp_path)
    assert result.returncode == 0
    assert target.read_bytes() == source.read_bytes()
    with pytest.raises(ParameterError, match="exists"):
        store.decode_store(root, target)


def test_decode_to_stdout_is_byte_exact(tmp_path):
    source, _ = make_store(tmp_path)
    result = run_cli("ec", "decode", "st", "--out", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == source.read_bytes()
    assert not (tmp_path / "-").exists()


def test_decoded_file_gets_the_original_mode_under_the_umask(tmp_path, umask_022):
    source = make_file(tmp_path)
    source.chmod(0o640)
    store.encode_file(source, tmp_path / "st", "rs:2,1")
    store.decode_store(tmp_path / "st", tmp_path / "a.bin")
    assert (tmp_path / "a.bin").stat().st_mode & 0o7777 == 0o640
    edit_manifest(tmp_path / "st", lambda m: m.pop("file_mode"))  # older manifests lack it
    store.decode_store(tmp_path / "st", tmp_path / "b.bin")
    assert (tmp_path / "b.bin").stat().st_mode & 0o7777 == 0o644
    edit_manifest(tmp_path / "st", lambda m: m.update(file_mode=0o6777))  # setuid, setgid
    store.decode_store(tmp_path / "st", tmp_path / "c.bin")
    assert (tmp_path / "c.bin").stat().st_mode & 0o7777 == 0o755


# --------------------------------------------------------------------------- 5. killed runs
KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from redundancy.erasure import store

def stop_after_first_stripe(_done):
    os.kill(os.getpid(), signal.SIGSTOP)  # the parent SIGKILLs us here, mid-way

if sys.argv[1] == "encode":
    store.encode_file(Path(sys.argv[2]), sys.argv[3], "rs:3,2", 1024, True, stop_after_first_stripe)
else:
    store.repair_store(sys.argv[3], progress=stop_after_first_stripe)
"""


def kill_mid_way(*args: str) -> None:
    """Run encode/repair in a child that stops after its first stripe, then SIGKILL it."""
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, *args])
    _, status = os.waitpid(child.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), "the child finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL


def temporaries(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".*.tmp"))


def test_killed_repair_litter_is_listed_by_verify_and_removed_by_the_next_repair(tmp_path):
    source, root = make_store(tmp_path, stripe=1024)
    (root / store.shard_relpath(1)).unlink()
    (root / store.shard_relpath(4)).unlink()
    kill_mid_way("repair", str(source), str(root))
    litter = temporaries(root)
    assert len(litter) == 2 and all(
        name.startswith((".shard-001", ".shard-004")) for name in litter
    )
    # A user's own file is listed but never removed; a lookalike not of our pattern neither.
    (root / "notes.txt").write_text("mine")
    (root / "node-001" / ".shard-001.bin.keep").write_text("mine")
    result = run_cli("ec", "verify", "st", "--json", cwd=tmp_path, text=True)
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "damaged" and document["damaged"] == [1, 4]
    assert {Path(p).name for p in document["unexpected_files"]} == {
        *litter,
        "notes.txt",
        ".shard-001.bin.keep",
    }
    report = store.repair_store(root)
    assert report.rebuilt == [1, 4] and len(report.removed_temporaries) == 2
    assert temporaries(root) == []
    assert (root / "notes.txt").exists() and (root / "node-001" / ".shard-001.bin.keep").exists()
    assert store.verify_store(root).unexpected_files == [
        "node-001/.shard-001.bin.keep",
        "notes.txt",
    ]
    (root / "notes.txt").unlink()
    (root / "node-001" / ".shard-001.bin.keep").unlink()
    assert run_cli("ec", "verify", "st", cwd=tmp_path).returncode == 0
    store.decode_store(root, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


def test_killed_overwriting_encode_leaves_litter_the_next_encode_removes(tmp_path):
    source, root = make_store(tmp_path, stripe=1024)
    kill_mid_way("encode", str(source), str(root))
    assert len(temporaries(root)) == 5
    result = run_cli("ec", "verify", "st", cwd=tmp_path)
    assert "no manifest" in assert_one_line_error(result, 2)  # the overwrite removed it first
    store.encode_file(source, root, "rs:3,2", stripe_size=1024)
    assert temporaries(root) == []
    assert store.verify_store(root).healthy


def test_sigkill_of_the_encode_command_then_verify_and_reencode(tmp_path):
    # The reproduction with the real command: SIGKILL `ec encode` while it writes.
    source = make_file(tmp_path, size=4_000_000, seed=3)
    command = [*CLI, "ec", "encode", "f.bin", "--out", "st", "--code", "rs:2,1"]
    child = subprocess.Popen([*command, "--stripe-size", "64"], cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in (tmp_path / "st").rglob(".*.tmp")):
        assert child.poll() is None, "encode finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert len(temporaries(tmp_path / "st")) == 3
    assert run_cli("ec", "verify", "st", cwd=tmp_path).returncode == 2  # no manifest yet
    small = make_file(tmp_path, size=5000, seed=4, name="small.bin")
    result = run_cli("ec", "encode", "small.bin", "--out", "st", "--code", "rs:2,1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert temporaries(tmp_path / "st") == []
    assert run_cli("ec", "verify", "st", cwd=tmp_path).returncode == 0
    store.decode_store(tmp_path / "st", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == small.read_bytes()
    assert source.exists()


def test_overwrite_with_fewer_shards_removes_the_old_ones(tmp_path):
    source, root = make_store(tmp_path, code="rs:4,3")
    store.encode_file(source, root, "rs:2,1", overwrite=True)
    assert store.verify_store(root).healthy
    assert sorted(p.name for p in root.rglob("*.bin")) == [
        "shard-000.bin",
        "shard-001.bin",
        "shard-002.bin",
    ]


# --------------------------------------------------------------------------- 6. exit codes
def test_verify_and_decode_exit_codes(tmp_path):
    _, root = make_store(tmp_path)
    assert run_cli("ec", "verify", "st", cwd=tmp_path).returncode == 0
    (root / store.shard_relpath(0)).unlink()
    assert run_cli("ec", "verify", "st", cwd=tmp_path).returncode == 1
    (root / store.shard_relpath(3)).unlink()
    (root / store.shard_relpath(4)).unlink()
    result = run_cli("ec", "verify", "st", cwd=tmp_path, text=True)
    assert "NOT recoverable" in assert_one_line_error(result, 3)
    assert "missing" in result.stdout  # the report is still printed
    result = run_cli("ec", "decode", "st", "--out", "x.bin", cwd=tmp_path, text=True)
    assert "cannot rebuild" in assert_one_line_error(result, 3)
    assert not (tmp_path / "x.bin").exists()
    assert_one_line_error(run_cli("ec", "repair", "st", cwd=tmp_path), 3)
    assert_one_line_error(run_cli("ec", "verify", "nowhere", cwd=tmp_path), 2)
    (root / "manifest.json").write_text("{not json")
    assert_one_line_error(run_cli("ec", "verify", "st", cwd=tmp_path), 2)


# --------------------------------------------------------------------------- 7. SHA-256
def test_wrong_sha256_in_a_well_formed_manifest_leaves_no_output(tmp_path):
    _, root = make_store(tmp_path)
    edit_manifest(root, lambda m: m.update(sha256=hashlib.sha256(b"something else").hexdigest()))
    with pytest.raises(DecodeError, match="SHA-256"):
        store.decode_store(root, tmp_path / "out.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "st"]
    result = run_cli("ec", "decode", "st", "--out", "-", cwd=tmp_path)
    assert "SHA-256" in assert_one_line_error(result, 3)
    assert result.stdout == b""  # not one unverified byte reaches stdout


def test_changed_shard_with_fixed_checksums_is_caught_by_sha256(tmp_path):
    _, root = make_store(tmp_path, stripe=4096)
    shard = root / store.shard_relpath(1)
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    edit_manifest(root, lambda m: m["shards"][1]["crc32"].__setitem__(0, zlib.crc32(raw[:4096])))
    assert load_manifest(root).shards[1].crc32[0] == zlib.crc32(raw[:4096])
    assert store.verify_store(root).healthy  # checksums alone cannot see it
    with pytest.raises(DecodeError, match="SHA-256"):
        store.decode_store(root, tmp_path / "out.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "st"]
