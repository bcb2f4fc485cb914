"""Encoding a stream of unknown length (a pipe, standard input) into a store."""

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.erasure import store
from redundancy.errors import ParameterError

CLI = [sys.executable, "-m", "redundancy.cli"]


class Trickle(io.RawIOBase):
    """A pipe-like reader: ``readinto`` returns at most a few (random) bytes at a time."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._data, self._at, self._rng = data, 0, random.Random(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        take = min(len(buffer), len(self._data) - self._at, self._rng.randint(1, 700))
        buffer[:take] = self._data[self._at : self._at + take]
        self._at += take
        return take


def shard_bytes(root: Path) -> list[bytes]:
    manifest = json.loads((root / "manifest.json").read_text())
    return [(root / entry["path"]).read_bytes() for entry in manifest["shards"]]


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(0, 5000),
    stripe=st.integers(1, 300),
    spec=st.sampled_from(["rs:3,2", "rs:4,1", "lrc:4,2,1"]),
    seed=st.integers(0, 2**16),
)
def test_a_stream_gives_the_store_a_file_of_the_same_bytes_gives(
    tmp_path_factory, size, stripe, spec, seed
):
    tmp = tmp_path_factory.mktemp("stream")
    data = random.Random(seed).randbytes(size)
    (tmp / "data.bin").write_bytes(data)
    from_file = store.encode_file(tmp / "data.bin", tmp / "file.ec", spec, stripe)
    from_stream = store.encode_stream(
        Trickle(data, seed), "data.bin", tmp / "pipe.ec", spec, stripe
    )
    assert shard_bytes(tmp / "pipe.ec") == shard_bytes(tmp / "file.ec")
    assert from_stream.sha256 == from_file.sha256
    assert (from_stream.file_size, from_stream.stripes) == (from_file.file_size, from_file.stripes)
    assert from_stream.file_mode is None
    store.decode_store(tmp / "pipe.ec", tmp / "back.bin")
    assert (tmp / "back.bin").read_bytes() == data


def test_stream_on_a_stripe_boundary_has_no_empty_last_stripe(tmp_path):
    data = bytes(range(256)) * 8  # 2048 bytes = 2 stripes of 4 x 256
    manifest = store.encode_stream(io.BytesIO(data), "b.bin", tmp_path / "b.ec", "rs:4,2", 256)
    assert manifest.stripes == 2
    assert all(len(shard) == 512 for shard in shard_bytes(tmp_path / "b.ec"))


def test_stream_name_must_be_a_plain_file_name(tmp_path):
    with pytest.raises(ParameterError, match="name"):
        store.encode_stream(io.BytesIO(b"x"), "../escape", tmp_path / "s.ec", "rs:2,1")
    assert not (tmp_path / "s.ec" / "manifest.json").exists()


def test_cli_encodes_standard_input_and_decodes_it_byte_exact(tmp_path):
    data = random.Random(7).randbytes(300_000)
    encoded = subprocess.run(
        [*CLI, "ec", "encode", "-", "--out", "backup.ec", "--code", "rs:4,2"],
        input=data,
        cwd=tmp_path,
        capture_output=True,
    )
    assert encoded.returncode == 0, encoded.stderr
    assert encoded.stdout == b""
    assert (
        json.loads((tmp_path / "backup.ec" / "manifest.json").read_text())["file_name"] == "backup"
    )
    decoded = subprocess.run(
        [*CLI, "ec", "decode", "backup.ec", "--out", "-"], cwd=tmp_path, capture_output=True
    )
    assert decoded.returncode == 0 and decoded.stdout == data


def test_cli_standard_input_needs_an_output_store(tmp_path):
    result = subprocess.run(
        [*CLI, "ec", "encode", "-"], input=b"abc", cwd=tmp_path, capture_output=True, text=False
    )
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1 and "--out" in result.stderr.decode()
    assert list(tmp_path.iterdir()) == []
