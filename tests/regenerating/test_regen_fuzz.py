"""Fuzzing node files: any mutation decodes to the original file or raises the project's error.

A valid folder of node files is built once; each example copies it, mutates one node file (a
header value replaced, raw bytes flipped, or the file cut short) and decodes through the library
and the command line. Allowed: the original bytes, or a ``RedundancyError`` / exit 2 (3 when too
few good nodes are left). Never another exception, a temporary left behind, a partial output, or
a file written anywhere but the chosen output.
"""

import json
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redundancy.cli import run as cli_run
from redundancy.errors import RedundancyError
from redundancy.regenerating import RegenParams, decode_file, encode_file
from redundancy.regenerating.files import MAGIC, node_path

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.sampled_from(["kind", "n", "k", "d", "l", "b", "x"]), st.integers(-3, 300))
)
PARAMS = RegenParams("msr", 8, 3, 5, b=1)


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[Path, bytes]]:
    with tempfile.TemporaryDirectory() as tmp:
        data = np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes()
        (Path(tmp) / "f.bin").write_bytes(data)
        encode_file(Path(tmp) / "f.bin", Path(tmp) / "nodes", PARAMS, np.random.default_rng(0))
        yield Path(tmp) / "nodes", data


def _mutate_header(raw: bytes, key: str, value: object) -> bytes:
    (length,) = struct.unpack_from("<I", raw, len(MAGIC))
    start = len(MAGIC) + 4
    header = json.loads(raw[start : start + length])
    header[key] = value
    blob = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(blob)) + blob + raw[start + length :]


def _decode_both_ways(sandbox: Path, folder: Path, original: bytes) -> None:
    before = {p for p in sandbox.rglob("*") if p.is_file()}
    target = sandbox / "out.bin"
    try:
        decode_file(folder, target)
    except RedundancyError:
        assert not target.exists()
    else:
        assert target.read_bytes() == original
    target.unlink(missing_ok=True)
    code = cli_run(["regen", "decode", str(folder), "--out", str(target)])
    assert code in (0, 2, 3)
    assert not target.exists() if code else target.read_bytes() == original
    after = {p for p in sandbox.rglob("*") if p.is_file()}
    assert after - before <= {target}
    assert not [p for p in after if p.name.endswith(".tmp")]


@FUZZ
@given(
    node=st.integers(0, PARAMS.n - 1),
    key=st.sampled_from(["params", "index", "size", "stripes", "sha256", "other"]),
    value=VALUES,
)
def test_mutated_header_value(built, node, key, value):
    folder, original = built
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "nodes"
        shutil.copytree(folder, copy)
        path = node_path(copy, node)
        path.write_bytes(_mutate_header(path.read_bytes(), key, value))
        _decode_both_ways(Path(tmp), copy, original)


@FUZZ
@given(data=st.data())
def test_mutated_node_bytes(built, data):
    folder, original = built
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "nodes"
        shutil.copytree(folder, copy)
        for _ in range(data.draw(st.integers(1, 3))):
            path = node_path(copy, data.draw(st.integers(0, PARAMS.n - 1)))
            raw = bytearray(path.read_bytes())
            if not raw:
                continue
            if data.draw(st.booleans()):
                position = data.draw(st.integers(0, len(raw) - 1))
                raw[position] ^= data.draw(st.integers(1, 255))
            else:
                raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
            path.write_bytes(bytes(raw))
        _decode_both_ways(Path(tmp), copy, original)
