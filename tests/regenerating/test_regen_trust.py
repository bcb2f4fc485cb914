"""Hostile node files and the `regen` command line: headers checked, outputs never replaced.

Node files are untrusted: a header that lies about its index, sizes or parameters must be refused
with the project's error (exit 2) before anything is written; data that cannot be recovered is
exit 3; outputs are never replaced without --force; `-` is stdout; -n/-k and --n/--k both work.
"""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from redundancy.cli import run as cli_run
from redundancy.errors import DecodeError, IntegrityError, ParameterError
from redundancy.regenerating import RegenParams, decode_file, encode_file, repair_file
from redundancy.regenerating.files import MAGIC, node_path

CLI = str(Path(sys.executable).with_name("redundancy"))
PARAMS = RegenParams("mbr", 6, 3, 4)


@pytest.fixture
def encoded(tmp_path: Path) -> tuple[Path, bytes]:
    data = np.random.default_rng(11).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (tmp_path / "data.bin").write_bytes(data)
    encode_file(tmp_path / "data.bin", tmp_path / "nodes", PARAMS, np.random.default_rng(0))
    return tmp_path / "nodes", data


def split_node(raw: bytes) -> tuple[dict, bytes]:
    """(header, payload) of a node file's bytes, parsed here independently of the library."""
    (length,) = struct.unpack_from("<I", raw, len(MAGIC))
    start = len(MAGIC) + 4
    return json.loads(raw[start : start + length]), raw[start + length :]


def join_node(header: dict, payload: bytes) -> bytes:
    blob = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(blob)) + blob + payload


def rewrite_header(path: Path, **changes: object) -> None:
    header, payload = split_node(path.read_bytes())
    path.write_bytes(join_node({**header, **changes}, payload))


def test_two_files_claiming_one_index_are_refused(encoded, tmp_path):
    folder, _ = encoded
    rewrite_header(node_path(folder, 5), index=0)  # node 5's data, claiming to be node 0
    with pytest.raises(IntegrityError, match="both claim to be node 0"):
        decode_file(folder, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"index": 6},  # outside 0..n-1
        {"index": -1},
        {"index": True},
        {"index": "2"},
        {"size": 10**15},  # absurd size: stripes no longer match
        {"size": -5},
        {"stripes": 10**12},
        {"sha256": "../../etc/passwd"},
        {"extra": "field"},
        {"params": {"kind": "mbr", "n": 6, "k": 3, "d": 99, "l": 0, "b": 0}},
        {"params": "mbr"},
    ],
    ids=str,
)
def test_lying_header_fields_are_refused(encoded, tmp_path, changes):
    folder, _ = encoded
    rewrite_header(node_path(folder, 1), **changes)
    with pytest.raises(IntegrityError):
        decode_file(folder, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_absurd_size_agreed_by_every_node_is_refused(encoded, tmp_path):
    folder, _ = encoded
    for index in range(PARAMS.n):
        rewrite_header(node_path(folder, index), size=10**15)
    with pytest.raises(IntegrityError, match="stripes"):
        decode_file(folder, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_header_length_past_the_end_is_refused(encoded, tmp_path):
    folder, _ = encoded
    path = node_path(folder, 2)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, len(MAGIC), 2**32 - 1)
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="past the end"):
        decode_file(folder, tmp_path / "out.bin")


def test_outputs_are_not_replaced_without_force(encoded, tmp_path):
    folder, data = encoded
    target = tmp_path / "out.bin"
    target.write_bytes(b"mine")
    with pytest.raises(ParameterError, match="--force"):
        decode_file(folder, target)
    assert target.read_bytes() == b"mine"
    decode_file(folder, target, force=True)
    assert target.read_bytes() == data
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(ParameterError, match="--force"):
        encode_file(tmp_path / "data.bin", folder, RegenParams("mbr", 4, 2, 3))
    before = node_path(folder, 3).read_bytes()
    with pytest.raises(ParameterError, match="--force"):
        repair_file(folder, 3)
    assert repair_file(folder, 3, force=True)[0].read_bytes() == before
    # --force re-encodes with n=4 and removes the old encoding's nodes 4 and 5
    encode_file(tmp_path / "data.bin", folder, RegenParams("mbr", 4, 2, 3), force=True)
    assert sorted(p.name for p in folder.iterdir()) == [f"node00{i}.regen" for i in range(4)]
    decode_file(folder, target, force=True)
    assert target.read_bytes() == data


def test_too_many_liars_is_not_recoverable_exit_3(encoded, tmp_path):
    folder, _ = encoded
    for index in (0, 1):  # b = 0: corrupt payloads of two of the k nodes read
        header, payload = split_node(node_path(folder, index).read_bytes())
        flipped = bytes(x ^ 0x5A for x in payload)
        node_path(folder, index).write_bytes(join_node(header, flipped))
    with pytest.raises(DecodeError, match="SHA-256"):
        decode_file(folder, tmp_path / "out.bin")
    assert cli_run(["regen", "decode", str(folder), "--out", str(tmp_path / "o.bin")]) == 3
    assert not (tmp_path / "o.bin").exists()


def test_cli_short_and_long_flags_stdout_and_json(tmp_path):
    src = tmp_path / "f.bin"
    src.write_bytes(np.random.default_rng(5).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    encode = [CLI, "regen", "encode", str(src), "--kind", "msr", "-n", "7", "-k", "3", "--d", "5"]
    subprocess.run(encode, check=True, capture_output=True)
    folder = tmp_path / "f.bin.regen"
    assert len(list(folder.glob("node*.regen"))) == 7
    done = subprocess.run([CLI, "regen", "decode", str(folder), "--out", "-"], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == src.read_bytes() and not Path("-").exists()
    info = subprocess.run(
        [CLI, "regen", "info", "--kind", "msr", "--n", "9", "-k", "4", "--d", "6", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(info.stdout)
    # MSR(9, 4, 6): alpha = d - k + 1 = 3, B = k alpha = 12 (hand-computed)
    assert document["per_stripe"]["alpha (stored per node)"] == 3
    assert document["per_stripe"]["B (file symbols)"] == 12
    node_path(folder, 2).unlink()
    repaired = subprocess.run(
        [CLI, "regen", "repair", str(folder), "--node", "2", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(json.loads(repaired.stdout)["contacted"]) == 5  # d helpers
    for bad in (
        ["regen", "repair", str(folder), "--node", "2", "--helpers", "one,two"],
        ["regen", "decode", str(folder), "--out", str(src)],  # exists: no --force
        ["regen", "info", "--size", "0"],
    ):
        result = subprocess.run([CLI, *bad], capture_output=True, text=True)
        assert result.returncode == 2, (bad, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
