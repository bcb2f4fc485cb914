"""The shared conversion engine: CRC, counted reads, and pipeline on/off giving identical stores."""

import tempfile
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.convertible.stores.layered import (
    decode_layered,
    encode_layered_store,
    layered_family,
    load_layered,
)
from redundancy.convertible.stores.merge import convert_stores
from redundancy.convertible.stores.scalar import decode_any, encode_store
from redundancy.convertible.stores.stripe_io import CountingReader, ParityWriter, Phases, crc32
from redundancy.erasure.store import shard_relpath


@given(st.binary(max_size=5000), st.integers(1, 4))
def test_crc32_matches_zlib(data, step):
    array = np.frombuffer(data, np.uint8)
    assert crc32(array) == zlib.crc32(data)
    strided = array[::step]  # not contiguous when step > 1
    assert crc32(strided) == zlib.crc32(strided.tobytes())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=5), st.integers(1, 3))
def test_parity_writer_writes_and_checksums_exactly_the_chunks(sizes, layers):
    """Chunk j of every stripe lands at the end of file j, with its CRC-32 per layer."""
    rng = np.random.default_rng(sum(sizes) + layers)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"out-{j}.bin" for j in range(2)]
        expected = [b"", b""]
        with paths[0].open("wb") as first, paths[1].open("wb") as second:
            writer = ParityWriter([first, second], layers, Phases())
            for size in sizes:
                chunks = [rng.integers(0, 256, size * layers, dtype=np.uint8) for _ in range(2)]
                writer.write(chunks)
                expected = [e + c.tobytes() for e, c in zip(expected, chunks, strict=True)]
        assert [p.read_bytes() for p in paths] == expected
        assert writer.bytes_written == 2 * layers * sum(sizes)
        for j in range(2):
            start = 0
            for stripe, size in enumerate(sizes):
                whole = expected[j][start : start + size * layers]
                start += size * layers
                parts = [whole[a * size : (a + 1) * size] for a in range(layers)]
                want = zlib.crc32(whole) if layers == 1 else [zlib.crc32(p) for p in parts]
                assert writer.crc32[j][stripe] == want


def test_counting_reader_counts_what_it_read(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(100)))
    reader = CountingReader(Phases())
    out = np.empty(30, np.uint8)
    assert reader.read_into(path, 10, out) and out.tolist() == list(range(10, 40))
    assert not reader.read_into(path, 90, out)  # short: only 10 bytes left
    assert not reader.read_into(tmp_path / "missing", 0, out)
    assert reader.bytes_read == 40
    reader.close()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("shard-*.bin"))}


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 6000), st.integers(0, 2**32 - 1))
def test_layered_merges_any_size_pipeline_on_or_off(size, seed):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files, stores = [], []
        for t, spec in enumerate(["lrc-cvt:6,1,3,1:12,2,3,1"] * 2):
            files.append(work / f"f{t}.bin")
            files[-1].write_bytes(rng.integers(0, 256, size, np.uint8).tobytes())
            encode_layered_store(files[-1], work / f"s{t}", spec, stripe_size=3 * 64)
            stores.append(work / f"s{t}")
        on = convert_stores(stores, work / "on")
        off = convert_stores(stores, work / "off", pipeline=False)
        shard = load_layered(stores[0])[0].shard_size
        family = layered_family("lrc-cvt:6,1,3,1:12,2,3,1")
        assert on.bytes_read == off.bytes_read == family.units * shard == Fraction(22, 3) * shard
        assert _tree(work / "on") == _tree(work / "off")
        outs = decode_layered(work / "on", work / "out")
        assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 9000), st.integers(1, 9000))
def test_mds_merge_of_unequal_stores_pipeline_on_or_off(size_a, size_b):
    rng = np.random.default_rng(size_a * 7 + size_b)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = []
        for t, size in enumerate((size_a, size_b)):
            files.append(work / f"f{t}.bin")
            files[-1].write_bytes(rng.integers(0, 256, size, np.uint8).tobytes())
            encode_store(files[-1], work / f"s{t}", "grs:4,2:8,2", stripe_size=256)
        stores = [work / "s0", work / "s1"]
        on = convert_stores(stores, work / "on")
        off = convert_stores(stores, work / "off", pipeline=False)
        assert on.bytes_read == off.bytes_read
        for j in (8, 9):
            rel = shard_relpath(j)
            assert (work / "on" / rel).read_bytes() == (work / "off" / rel).read_bytes()
        outs = decode_any(work / "on", work / "out")
        assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]
