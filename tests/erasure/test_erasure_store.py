"""The file store: real files round-trip; damage is named, repaired exactly, never decoded."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy.erasure import store
from redundancy.errors import DecodeError, IntegrityError, ParameterError

CLI = [sys.executable, "-m", "redundancy.cli"]


def make_file(tmp: Path, size: int, seed: int = 0) -> Path:
    import numpy as np

    path = tmp / "input.bin"
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def shard_path(root: Path, manifest, index: int) -> Path:
    return root / manifest.shards[index].path


@given(
    size=st.integers(0, 5000),
    stripe=st.integers(1, 700),
    spec=st.sampled_from(["rs:3,2", "rs:1,1", "rs-vand:4,2", "lrc:4,2,1"]),
)
def test_round_trip_any_size_and_stripe(tmp_path_factory, size, stripe, spec):
    tmp = tmp_path_factory.mktemp("rt")
    source = make_file(tmp, size, seed=size)
    manifest = store.encode_file(source, tmp / "st", spec, stripe_size=stripe)
    store.decode_store(tmp / "st", tmp / "out.bin")
    assert (tmp / "out.bin").read_bytes() == source.read_bytes()
    assert manifest.file_size == size


def test_lost_and_corrupt_shards_are_named_repaired_and_decoded(tmp_path):
    source = make_file(tmp_path, 100_003)
    root = tmp_path / "st"
    manifest = store.encode_file(source, root, "rs:4,2", stripe_size=4096)
    shard_path(root, manifest, 1).unlink()
    corrupt = shard_path(root, manifest, 4)
    raw = bytearray(corrupt.read_bytes())
    raw[5000] ^= 0x40  # stripe 1
    corrupt.write_bytes(bytes(raw))
    report = store.verify_store(root)
    states = {s.index: (s.state, s.corrupt_stripes) for s in report.shards if s.state != "ok"}
    assert states == {1: ("missing", []), 4: ("corrupt", [1])}
    assert report.recoverable
    store.decode_store(root, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
    untouched = shard_path(root, manifest, 0).stat().st_mtime_ns
    result = store.repair_store(root)
    assert result.rebuilt == [1, 4]
    assert store.verify_store(root).healthy
    assert shard_path(root, manifest, 0).stat().st_mtime_ns == untouched


def test_corrupt_data_shard_is_never_decoded_into_output(tmp_path):
    source = make_file(tmp_path, 50_000)
    root = tmp_path / "st"
    manifest = store.encode_file(source, root, "rs:4,1", stripe_size=2048)
    for index in (0, 2):  # two corrupt shards with one parity: unrecoverable
        path = shard_path(root, manifest, index)
        raw = bytearray(path.read_bytes())
        raw[10] ^= 1
        path.write_bytes(bytes(raw))
    with pytest.raises(DecodeError, match=r"stripe 0.*0 \(corrupt\).*2 \(corrupt\)"):
        store.decode_store(root, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_lrc_repair_reads_only_the_local_group(tmp_path):
    source = make_file(tmp_path, 60_000)
    root = tmp_path / "st"
    manifest = store.encode_file(source, root, "lrc:6,2,2", stripe_size=1000)
    shard_path(root, manifest, 0).unlink()
    result = store.repair_store(root)
    shard_bytes = manifest.shard_size(6)
    assert result.bytes_read == 3 * shard_bytes  # 2 group data shards + the local parity
    assert result.bytes_written == shard_bytes


def test_truncated_shard_is_an_erasure(tmp_path):
    source = make_file(tmp_path, 10_000)
    root = tmp_path / "st"
    manifest = store.encode_file(source, root, "rs:2,1", stripe_size=1000)
    path = shard_path(root, manifest, 0)
    path.write_bytes(path.read_bytes()[:-1])
    assert store.verify_store(root).shards[0].state == "wrong-size"
    store.decode_store(root, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(code="rs:5,1"), "lists 3 shards"),
        (lambda m: m.update(stripes=99), "checksums"),
        (lambda m: m.update(format="other/9"), "format"),
        (lambda m: m["shards"][0].update(path="../../etc/passwd"), "inside the store"),
        (lambda m: m.update(file_name="../escaped.bin"), "plain file name"),
        (lambda m: m.update(sha256="xyz"), "sha256"),
        (lambda m: m.update(file_size=-1), "file_size"),
    ],
)
def test_bad_manifest_is_rejected_with_the_field(tmp_path, edit, message):
    source = make_file(tmp_path, 5000)
    root = tmp_path / "st"
    store.encode_file(source, root, "rs:2,1", stripe_size=1000)
    data = json.loads((root / "manifest.json").read_text())
    edit(data)
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match=message):
        store.decode_store(root, tmp_path / "out.bin")


def test_manifest_that_is_not_json_or_absent(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        store.verify_store(tmp_path)
    with pytest.raises(IntegrityError, match="no manifest"):
        store.verify_store(tmp_path / "nowhere")


def test_wrong_sizes_in_manifest_are_caught(tmp_path):
    source = make_file(tmp_path, 5000)
    root = tmp_path / "st"
    store.encode_file(source, root, "rs:2,1", stripe_size=1000)
    data = json.loads((root / "manifest.json").read_text())
    data["file_size"] = 4500  # still 3 stripes: shards no longer have the implied size
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(DecodeError, match="wrong-size"):
        store.decode_store(root, tmp_path / "out.bin")


def test_encode_refuses_to_clobber_and_bad_inputs(tmp_path):
    source = make_file(tmp_path, 100)
    store.encode_file(source, tmp_path / "st", "rs:2,1")
    with pytest.raises(ParameterError, match="already holds"):
        store.encode_file(source, tmp_path / "st", "rs:2,1")
    with pytest.raises(ParameterError, match="no such file"):
        store.encode_file(tmp_path / "missing", tmp_path / "s2")
    with pytest.raises(ParameterError, match="stripe_size=0"):
        store.encode_file(source, tmp_path / "s3", stripe_size=0)
    with pytest.raises(ParameterError, match="out of range"):
        store.repair_store(tmp_path / "st", only=[7])
    assert not (tmp_path / "s3").exists() or not any((tmp_path / "s3").rglob("*.bin"))


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, env=env)


def test_cli_encode_damage_verify_repair_decode(tmp_path):
    source = make_file(tmp_path, 30_000)
    assert (
        run_cli(
            "ec",
            "encode",
            str(source),
            "--code",
            "rs:3,2",
            "--out",
            "st",
            "--stripe-size",
            "4096",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    (tmp_path / "st" / store.shard_relpath(2)).unlink()
    result = run_cli("ec", "verify", "st", cwd=tmp_path)
    assert result.returncode == 1 and "missing" in result.stdout
    assert run_cli("ec", "repair", "st", cwd=tmp_path).returncode == 0
    assert run_cli("ec", "verify", "st", cwd=tmp_path).returncode == 0
    assert run_cli("ec", "decode", "st", "--out", "back.bin", cwd=tmp_path).returncode == 0
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    for i in (0, 1, 3):
        (tmp_path / "st" / store.shard_relpath(i)).unlink()
    result = run_cli("ec", "decode", "st", "--out", "x.bin", cwd=tmp_path)
    assert result.returncode == 3 and "cannot rebuild" in result.stderr  # not recoverable
    assert run_cli("ec", "verify", "st", cwd=tmp_path).returncode == 3


@pytest.mark.parametrize(
    "args",
    [
        ["ec", "info", "--code", "rs:0,1"],
        ["ec", "info", "--code", "zz:1"],
        ["ec", "encode", "nope.bin"],
        ["ec", "encode", "."],
        ["ec", "decode", "nowhere"],
        ["ec", "verify", "nowhere"],
        ["ec", "verify", "nowhere", "--json"],
        ["ec", "repair", "nowhere", "--only", "x"],
        ["ec", "encode"],
        ["ec", "encode", "a.bin", "--stripe-size", "ten"],
        ["ec", "nosuchcommand"],
        ["reproduce", "no-such-system"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, args):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_store_on_an_fsspec_url_round_trips_and_repairs(tmp_path):
    import fsspec

    source = make_file(tmp_path, 40_000, seed=5)
    url = "memory://ec-test/store"
    manifest = store.encode_file(source, url, "lrc:4,2,1", stripe_size=3000)
    fs = fsspec.filesystem("memory")
    fs.rm(f"/ec-test/store/{manifest.shards[1].path}")
    report = store.verify_store(url)
    assert report.damaged == [1] and report.recoverable
    assert store.repair_store(url).rebuilt == [1]
    assert store.verify_store(url).healthy
    store.decode_store(url, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert not [p for p in fs.find("/ec-test") if p.endswith(".tmp")]
    fs.rm("/ec-test", recursive=True)


def test_unknown_url_protocol_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match="not usable"):
        store.verify_store("nosuchproto://bucket/store")


def test_store_functions_accept_a_code_the_spec_parser_does_not_know(tmp_path):
    from redundancy.erasure import LinearCode, ReedSolomon

    source = make_file(tmp_path, 9000, seed=9)
    root = tmp_path / "st"
    store.encode_file(source, root, "rs:3,2", stripe_size=1000)
    data = json.loads((root / "manifest.json").read_text())
    data["code"] = "custom:3,2"
    (root / "manifest.json").write_text(json.dumps(data))
    custom = LinearCode(ReedSolomon(3, 2).generator, name="custom")
    with pytest.raises(ParameterError, match="kind must be"):
        store.verify_store(root)
    (root / store.shard_relpath(0)).unlink()
    assert store.verify_store(root, code=custom).damaged == [0]
    assert store.repair_store(root, code=custom).rebuilt == [0]
    store.decode_store(root, tmp_path / "out.bin", code=custom)
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
    with pytest.raises(IntegrityError, match="lists 5 shards"):
        store.verify_store(root, code=ReedSolomon(3, 3))


@pytest.mark.parametrize(
    ("spec", "lost"),
    [("rs:4,2", [1]), ("rs:4,2", [0, 2]), ("lrc:6,2,2", [0]), ("lrc:6,2,2", [3, 7])],
)
def test_decode_rebuilds_data_shards_missing_before_the_run(tmp_path, spec, lost):
    source = make_file(tmp_path, 70_001, seed=7)  # last stripe shorter than the others
    root = tmp_path / "st"
    manifest = store.encode_file(source, root, spec, stripe_size=1500)
    for index in lost:
        shard_path(root, manifest, index).unlink()
    store.decode_store(root, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
