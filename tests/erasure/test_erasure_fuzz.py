"""Fuzzing the store's parsers of untrusted data: the manifest and the shard files.

Whatever a mutation does, only the project's errors come out, the CLI exits 2 (bad input) or 3
(not recoverable) with one line, nothing is written outside the destination, and a decode either
produces the original bytes or leaves no output at all.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redundancy.erasure import store
from redundancy.errors import DecodeError, RedundancyError

CODE, K, M = "rs:3,2", 3, 2
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[bytes, Path]:
    """A small healthy store (4 stripes of 256 bytes per shard) and the bytes it holds."""
    folder = tmp_path_factory.mktemp("pristine")
    source = folder / "f.bin"
    source.write_bytes(np.random.default_rng(17).integers(0, 256, 3000, np.uint8).tobytes())
    store.encode_file(source, folder / "st", CODE, stripe_size=256)
    return source.read_bytes(), folder / "st"


def fresh_workspace(pristine_store: Path) -> Path:
    """A new folder holding a copy of the store (``st``) and an empty destination (``out``)."""
    work = Path(tempfile.mkdtemp(dir=pristine_store.parent.parent))
    shutil.copytree(pristine_store, work / "st")
    (work / "out").mkdir()
    return work


def snapshot(folder: Path, skip: str | None = None) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (skip is None or p.relative_to(folder).parts[0] != skip)
    }


# --------------------------------------------------------------------------- mutations
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from(["", ".", "..", "../x.bin", "/etc/passwd", "a/b", "node-000", "rs:3,2"])
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
TOP_KEYS = ["format", "code", "file_name", "file_size", "file_mode", "stripe_size", "stripes"]
TOP_KEYS += ["sha256", "shards"]
SHARD_KEYS = ["index", "path", "crc32"]


@st.composite
def structural_mutation(draw):
    """(description, function editing the parsed manifest in place)."""
    kind = draw(st.sampled_from(["set", "delete", "set-shard", "delete-shard", "crc", "reorder"]))
    value = draw(json_values)
    key = draw(st.sampled_from(TOP_KEYS))
    shard = draw(st.integers(0, K + M - 1))
    shard_key = draw(st.sampled_from(SHARD_KEYS))
    position = draw(st.integers(0, 3))

    def edit(m: dict) -> None:
        if kind == "set":
            m[key] = value
        elif kind == "delete":
            m.pop(key, None)
        elif kind == "set-shard":
            m["shards"][shard][shard_key] = value
        elif kind == "delete-shard":
            del m["shards"][shard]
        elif kind == "crc":
            m["shards"][shard]["crc32"][position] = value
        else:
            m["shards"].reverse()

    return f"{kind} {key}/{shard}.{shard_key}[{position}] = {value!r}", edit


@st.composite
def byte_mutation(draw, size: int):
    """Byte-level edits of the manifest text: flips, deletions, insertions."""
    edits = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "delete", "insert"]),
                st.integers(0, size - 1),
                st.integers(0, 255),
            ),
            min_size=1,
            max_size=4,
        )
    )

    def edit(raw: bytearray) -> bytearray:
        for op, where, byte in edits:
            where = min(where, len(raw) - 1)
            if op == "flip" and raw:
                raw[where] ^= byte or 1
            elif op == "delete" and raw:
                del raw[where]
            else:
                raw.insert(where, byte)
        return raw

    return edits, edit


def check_every_command(work: Path, original: bytes) -> None:
    """decode, verify and repair on ``work/st``: project errors only, no litter, no escape."""
    outside = snapshot(work.parent, skip=work.name)
    store_before = snapshot(work / "st")
    try:
        store.decode_store(work / "st", work / "out")
    except RedundancyError:
        assert list((work / "out").iterdir()) == []  # no partial output, no temporary
    else:
        produced = list((work / "out").iterdir())
        assert len(produced) == 1 and produced[0].read_bytes() == original
    assert snapshot(work / "st") == store_before  # decode never writes into the store
    try:
        report = store.verify_store(work / "st")
    except RedundancyError:
        report = None
    try:
        store.repair_store(work / "st")
    except RedundancyError:
        pass
    else:
        assert report is not None
    assert snapshot(work.parent, skip=work.name) == outside
    assert not [p for p in (work / "st").rglob(".*.tmp")]


@FUZZ
@given(mutation=structural_mutation())
def test_structural_manifest_mutations(pristine, mutation):
    original, pristine_store = pristine
    _, edit = mutation
    work = fresh_workspace(pristine_store)
    data = json.loads((work / "st" / "manifest.json").read_text())
    edit(data)
    (work / "st" / "manifest.json").write_text(json.dumps(data))
    check_every_command(work, original)
    shutil.rmtree(work)


@FUZZ
@given(data=st.data())
def test_byte_level_manifest_mutations(pristine, data):
    original, pristine_store = pristine
    work = fresh_workspace(pristine_store)
    manifest = work / "st" / "manifest.json"
    raw = bytearray(manifest.read_bytes())
    _, edit = data.draw(byte_mutation(len(raw)))
    manifest.write_bytes(bytes(edit(raw)))
    check_every_command(work, original)
    shutil.rmtree(work)


SHARD_OPS = st.sampled_from(["keep", "flip", "truncate", "extend", "random", "delete", "empty"])


@FUZZ
@given(ops=st.lists(st.tuples(SHARD_OPS, st.integers(0, 2000)), min_size=K + M, max_size=K + M))
def test_shard_mutations_never_substitute_data(pristine, ops):
    original, pristine_store = pristine
    work = fresh_workspace(pristine_store)
    rng = np.random.default_rng(len(ops))
    for index, (op, where) in enumerate(ops):
        path = work / "st" / store.shard_relpath(index)
        raw = bytearray(path.read_bytes())
        if op == "flip":
            raw[where % len(raw)] ^= 0x5A
        elif op == "truncate":
            del raw[where % len(raw) :]
        elif op == "extend":
            raw += bytes(where % 7 + 1)
        elif op == "random":
            raw = bytearray(rng.integers(0, 256, len(raw), np.uint8).tobytes())
        elif op == "empty":
            raw = bytearray()
        if op == "delete":
            path.unlink()
        else:
            path.write_bytes(bytes(raw))
    # Which shards each stripe loses, worked out from the edits alone (shards hold 1000 bytes:
    # stripes of 256, 256, 256 and 232 bytes).
    lost_in_stripe: list[set[int]] = [set() for _ in range(4)]
    for index, (op, where) in enumerate(ops):
        if op == "flip":
            lost_in_stripe[(where % 1000) // 256].add(index)
        elif op != "keep":
            for lost in lost_in_stripe:
                lost.add(index)
    broken = set().union(*lost_in_stripe)
    report = store.verify_store(work / "st")
    assert set(report.damaged) == broken  # every edit is seen (flips always change a CRC)
    # An MDS code: a stripe decodes exactly when at most m of its chunks are lost.
    assert report.recoverable == all(len(lost) <= M for lost in lost_in_stripe)
    if report.recoverable:
        store.decode_store(work / "st", work / "out")
        assert (work / "out" / "f.bin").read_bytes() == original
        assert store.repair_store(work / "st").rebuilt == sorted(broken)
        assert store.verify_store(work / "st").healthy
    else:
        with pytest.raises(DecodeError):
            store.decode_store(work / "st", work / "out")
        assert list((work / "out").iterdir()) == []
        with pytest.raises(DecodeError):
            store.repair_store(work / "st")
    assert not [p for p in (work / "st").rglob(".*.tmp")]
    shutil.rmtree(work)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=structural_mutation())
def test_cli_on_mutated_manifests_exits_with_one_line(pristine, mutation):
    original, pristine_store = pristine
    _, edit = mutation
    work = fresh_workspace(pristine_store)
    data = json.loads((work / "st" / "manifest.json").read_text())
    edit(data)
    (work / "st" / "manifest.json").write_text(json.dumps(data))
    for args, allowed in (
        (["ec", "decode", "st", "--out", "out"], {0, 2, 3}),
        (["ec", "verify", "st", "--json"], {0, 1, 2, 3}),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "redundancy.cli", *args], cwd=work, capture_output=True
        )
        assert result.returncode in allowed, result.stderr
        if result.returncode in (2, 3):
            lines = result.stderr.decode().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        if args[1] == "decode" and result.returncode == 0:
            assert [p.read_bytes() for p in (work / "out").iterdir()] == [original]
        elif args[1] == "decode":
            assert list((work / "out").iterdir()) == []
        if args[1] == "verify" and result.returncode != 2:
            assert json.loads(result.stdout)["exit_code"] == result.returncode
    shutil.rmtree(work)
