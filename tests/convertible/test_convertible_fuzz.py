"""Fuzzing convertible manifests: any mutation gives the right files or the project's error.

A valid merged store (``convertible.json``) and a valid LRC store (``layered.json``) are built
once; each example copies one, mutates its manifest (a JSON value replaced anywhere in the tree,
or the raw bytes flipped or cut), and decodes it through the library and the command line. Allowed
outcomes: the original files (byte for byte, under plain names inside the output folder), or a
``RedundancyError`` / exit 2 (3 when the data is not recoverable). Never: another exception, a
file outside the output folder, a leftover temporary, or a file that is not an original.
"""

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redundancy.cli import run as cli_run
from redundancy.convertible.stores.decode import decode
from redundancy.convertible.stores.layered import LAYERED_NAME, encode_layered_store
from redundancy.convertible.stores.merge import convert_stores
from redundancy.convertible.stores.scalar import MERGED_NAME, encode_store
from redundancy.errors import RedundancyError

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HOSTILE_NAMES = st.sampled_from(
    ["", ".", "..", "../x.bin", "../../x.bin", "/tmp/x.bin", "a\x00b", "a/../../x.bin", "f1.bin"]
) | st.text(alphabet="./\\ax\x00", max_size=8)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False)
    | HOSTILE_NAMES
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def _build(root: Path, kind: str) -> tuple[Path, list[bytes]]:
    rng = np.random.default_rng(7)
    sources = []
    for t in range(2):
        sources.append(root / f"f{t}.bin")
        sources[-1].write_bytes(rng.integers(0, 256, 1200 - 300 * t, np.uint8).tobytes())
    if kind == MERGED_NAME:
        for t, src in enumerate(sources):
            encode_store(src, root / f"s{t}", "grs:4,2:8,2", stripe_size=128)
    else:
        sources[1].write_bytes(sources[1].read_bytes() + bytes(300))  # LRC members: equal sizes
        for t, src in enumerate(sources):
            encode_layered_store(src, root / f"s{t}", "lrc-cvt:6,1,3,1:12,2,3,1", stripe_size=96)
    convert_stores([root / "s0", root / "s1"], root / "store")
    return root / "store", [s.read_bytes() for s in sources]


@pytest.fixture(scope="module", params=[MERGED_NAME, LAYERED_NAME])
def built(request) -> Iterator[tuple[Path, str, list[bytes]]]:
    with tempfile.TemporaryDirectory() as tmp:
        store, originals = _build(Path(tmp), request.param)
        yield store, request.param, originals


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in a JSON tree (keys and list indices from the root)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _replace(document: Any, where: tuple, value: Any) -> Any:
    if not where:
        return value
    *parents, last = where
    node = document
    for step in parents:
        node = node[step]
    node[last] = value
    return document


def _check_outcome(sandbox: Path, before: set[Path], out: Path, originals: list[bytes]) -> None:
    after = {p for p in sandbox.rglob("*") if p.is_file()}
    new = after - before
    assert all(out in p.parents for p in new), f"written outside the output: {new}"
    assert not [p for p in after if p.name.endswith(".tmp")], "temporary left behind"
    for path in new:
        assert path.parent == out and path.read_bytes() in originals


def _decode_both_ways(sandbox: Path, store: Path, originals: list[bytes]) -> None:
    before = {p for p in sandbox.rglob("*") if p.is_file()}
    out = sandbox / "out"
    try:
        paths = decode(store, out)
    except RedundancyError:
        pass
    else:
        assert sorted(p.read_bytes() for p in paths) == sorted(originals)
    _check_outcome(sandbox, before, out, originals)
    shutil.rmtree(out, ignore_errors=True)
    code = cli_run(["convert", "decode", str(store), str(out)])
    assert code in (0, 2, 3)
    _check_outcome(sandbox, before, out, originals)


@FUZZ
@given(data=st.data())
def test_mutated_manifest_values(built, data):
    store, kind, originals = built
    document = json.loads((store / kind).read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        places = _paths(document)
        names = [p for p in places if p and p[-1] in ("file_name", "path")]
        choices = st.sampled_from(places)
        if names:  # names and paths half the time: they are what an attacker edits
            choices = st.sampled_from(names) | choices
        where = data.draw(choices)
        value = data.draw(HOSTILE_NAMES if where in names else JSON_VALUES)
        document = _replace(document, where, value)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(store, copy)
        (copy / kind).write_text(json.dumps(document))
        _decode_both_ways(Path(tmp), copy, originals)


@FUZZ
@given(data=st.data())
def test_mutated_manifest_bytes(built, data):
    store, kind, originals = built
    raw = bytearray((store / kind).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))] if data.draw(st.booleans()) else raw
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(store, copy)
        (copy / kind).write_bytes(bytes(raw))
        _decode_both_ways(Path(tmp), copy, originals)
