"""Streamed and buffer-reusing encode: same bytes as the plain encode, for every code shape."""

from __future__ import annotations

import numpy as np
import pytest

from redundancy.errors import ParameterError
from redundancy.regenerating import RegeneratingCode, RegenParams
from redundancy.regenerating import code as code_module
from redundancy.regenerating import plan as plan_module
from redundancy.regenerating.files import encode_file, read_node

SHAPES = [("mbr", 6, 3, 4, 0), ("msr", 6, 3, 4, 0), ("msr", 8, 3, 5, 0), ("mbr", 7, 3, 5, 1)]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny blocks (7 stripes) so that every path crosses many block boundaries."""
    monkeypatch.setattr(plan_module, "_chunk", lambda sources: 7)
    monkeypatch.setattr(code_module, "block_stripes", lambda sources: 7)


def _reference(code: RegeneratingCode, data: bytes) -> np.ndarray:
    return code.encode(data, np.random.default_rng(5))


@pytest.mark.parametrize(("kind", "n", "k", "d", "keys"), SHAPES)
def test_blocks_and_out_match_plain_encode(small_blocks, kind, n, k, d, keys) -> None:
    code = RegeneratingCode(RegenParams(kind, n, k, d, keys))
    data = np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    expected = _reference(code, data)
    out = np.full(expected.shape, 0xAA, dtype=np.uint8)
    assert code.encode(data, np.random.default_rng(5), out=out) is out
    assert np.array_equal(out, expected)
    stripes, blocks = code.encode_blocks(data, np.random.default_rng(5))
    assert stripes == expected.shape[2]
    flat = expected.reshape(-1, stripes)
    seen = 0
    for start, stop, rows in blocks:
        assert start == seen and len(rows) == flat.shape[0]
        for r, row in enumerate(rows):
            assert np.array_equal(row, flat[r, start:stop])
        seen = stop
    assert seen == stripes


def test_encode_out_is_checked() -> None:
    code = RegeneratingCode(RegenParams("mbr", 6, 3, 4))
    good = code.encode(b"x" * 100)
    for bad in (np.empty(good.shape, np.int16), np.empty((*good.shape[:2], 1), np.uint8)):
        with pytest.raises(ParameterError):
            code.encode(b"x" * 100, out=bad)
    with pytest.raises(ParameterError):
        code.encode(b"x" * 100, out=np.empty(good.shape[::-1], np.uint8).T)


@pytest.mark.parametrize(("kind", "n", "k", "d", "keys"), SHAPES)
def test_streamed_files_match_plain_encode(small_blocks, tmp_path, kind, n, k, d, keys) -> None:
    params = RegenParams(kind, n, k, d, keys)
    data = np.random.default_rng(2).integers(0, 256, 777, dtype=np.uint8).tobytes()
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    paths = encode_file(source, tmp_path / "nodes", params, np.random.default_rng(5))
    expected = _reference(RegeneratingCode(params), data)
    for i, path in enumerate(paths):
        header, content = read_node(path)
        assert header["index"] == i and header["size"] == len(data)
        assert np.array_equal(content, expected[i])
