"""LRC global merge (6,1,3,1)x2 -> (12,2,3,1) on stores: bytes = bound, decode, crash safety."""

import json
import os
import signal
import subprocess
import sys
from fractions import Fraction
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from redundancy.convertible.algebra import bounds
from redundancy.convertible.algebra.lrc import LRCGlobalMerge
from redundancy.convertible.spec import parse_lrc_spec
from redundancy.convertible.stores.layered import (
    LAYERED_NAME,
    decode_layered,
    encode_layered_store,
    load_layered,
)
from redundancy.convertible.stores.merge import convert_stores
from redundancy.convertible.stores.scalar import encode_store
from redundancy.erasure.store import shard_relpath
from redundancy.errors import DecodeError, IntegrityError, ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))
SPEC = "lrc-cvt:6,1,3,1:12,2,3,1"
STRIPE = 3 * 200  # bytes per shard per stripe (alpha = 3 layers of 200)


def _stores(tmp: Path, sizes: list[int], spec: str = SPEC, seed: int = 0):
    rng = np.random.default_rng(seed)
    files, stores = [], []
    for t, size in enumerate(sizes):
        src = tmp / f"file{t}.bin"
        src.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        encode_layered_store(src, tmp / f"store{t}", spec, stripe_size=STRIPE)
        files.append(src)
        stores.append(tmp / f"store{t}")
    return files, stores


def _shard(store: Path, index: int) -> Path:
    return store / shard_relpath(index)


def _direct_final(files: list[Path], stripes: int, last: int) -> list[bytes]:
    """Every final shard from encoding the merged data with the final code directly."""
    code = LRCGlobalMerge.build(parse_lrc_spec(SPEC))
    shards = [b""] * code.final.n
    for stripe in range(stripes):
        width = STRIPE if stripe < stripes - 1 else last
        data = []
        for f in files:
            raw = f.read_bytes()[stripe * 6 * STRIPE :][: 6 * width]
            data.append(np.frombuffer(raw.ljust(6 * width, b"\0"), np.uint8).reshape(6, width))
        coded = code.final_encode(np.vstack(data))
        shards = [s + row.tobytes() for s, row in zip(shards, coded, strict=True)]
    return shards


def test_merge_reads_the_bound_and_equals_direct_encoding(tmp_path):
    size = 6 * STRIPE * 3 + 1000  # three full stripes and a short one
    files, stores = _stores(tmp_path, [size, size - 7])
    report = convert_stores(stores, tmp_path / "m", to="lrc:12,4,2")
    manifest = load_layered(stores[0])[0]
    shard = manifest.shard_size
    m = parse_lrc_spec(SPEC)
    assert bounds.lrc_bandwidth_bound(m) == Fraction(22, 3)
    assert report.bytes_read == Fraction(22, 3) * shard  # counted from the shard files
    assert report.bytes_written == 2 * shard
    anchor = convert_stores(stores, tmp_path / "a", method="reencode")
    assert anchor.bytes_read == 12 * shard and anchor.bytes_written == 2 * shard
    direct = _direct_final(files, manifest.stripes, manifest.last_chunk)
    for index in range(18):  # data + locals are the initial shards, globals the new ones
        assert _shard(tmp_path / "m", index).read_bytes() == direct[index], index
        assert _shard(tmp_path / "a", index).read_bytes() == direct[index], index
    assert os.stat(_shard(tmp_path / "m", 7)).st_ino == os.stat(_shard(stores[1], 1)).st_ino
    outs = decode_layered(tmp_path / "m", tmp_path / "out")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]
    assert load_layered(tmp_path / "m")[0].bytes_read == report.bytes_read


def test_every_tolerated_erasure_pattern_decodes(tmp_path):
    files, stores = _stores(tmp_path, [6 * STRIPE, 6 * STRIPE - 5], seed=1)
    convert_stores(stores, tmp_path / "m")
    merged, hidden = tmp_path / "m", tmp_path / "hidden"
    hidden.mkdir()
    want = [f.read_bytes() for f in files]

    def decode_without(store: Path, lost: tuple[int, ...], out: Path) -> list[Path]:
        for i in lost:
            _shard(store, i).rename(hidden / str(i))
        try:
            return decode_layered(store, out, force=True)
        finally:
            for i in lost:
                (hidden / str(i)).rename(_shard(store, i))

    for lost in combinations(range(18), 3):  # final distance 4: any 3 lost shards
        outs = decode_without(merged, lost, tmp_path / "o")
        assert [o.read_bytes() for o in outs] == want, lost
    for lost in combinations(range(9), 2):  # initial distance 3: any 2 lost shards
        decode_without(stores[0], lost, tmp_path / "i.bin")
        assert (tmp_path / "i.bin").read_bytes() == want[0], lost
    with pytest.raises(DecodeError):  # a whole local group (3 data + its local) is too many
        decode_without(merged, (0, 1, 2, 12), tmp_path / "fail")
    assert not (tmp_path / "fail").exists() or not any((tmp_path / "fail").iterdir())


_KILLER = """
import os, signal, sys
from redundancy.convertible.stores.merge import convert_stores
def die(stripe):
    if stripe == 2:
        os.kill(os.getpid(), signal.SIGKILL)
convert_stores([sys.argv[1], sys.argv[2]], sys.argv[3], progress=die, pipeline=sys.argv[4] == "1")
"""


@pytest.mark.parametrize("pipeline", ["0", "1"])
def test_killed_conversion_keeps_old_code_and_rerun_finishes(tmp_path, pipeline):
    files, stores = _stores(tmp_path, [6 * STRIPE * 6, 6 * STRIPE * 6], seed=2)
    merged = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(stores[0]), str(stores[1]), str(merged), pipeline],
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    assert not (merged / LAYERED_NAME).exists()
    assert not _shard(merged, 16).exists()  # the new globals were only under temporary names
    for t in range(2):
        decode_layered(stores[t], tmp_path / f"old{t}.bin")
        assert (tmp_path / f"old{t}.bin").read_bytes() == files[t].read_bytes()
    report = convert_stores(stores, merged, retire=True)
    assert report.bytes_read == Fraction(22, 3) * load_layered(merged)[0].shard_size
    assert not any(p.name.endswith(".tmp") for p in merged.rglob("*"))
    assert not (stores[0] / LAYERED_NAME).exists() and not _shard(stores[0], 8).exists()
    outs = decode_layered(merged, tmp_path / "out")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]
    assert convert_stores(stores, merged).resumed


def test_missing_or_corrupt_shard_refused_or_degraded(tmp_path):
    files, stores = _stores(tmp_path, [6 * STRIPE * 2, 6 * STRIPE * 2], seed=3)
    _shard(stores[1], 7).unlink()  # a local parity: conversion reads one layer of it
    with pytest.raises(IntegrityError, match="shard 7 is missing"):
        convert_stores(stores, tmp_path / "m")
    assert not (tmp_path / "m" / LAYERED_NAME).exists() and not _shard(tmp_path / "m", 16).exists()
    report = convert_stores(stores, tmp_path / "m", allow_degraded=True)
    assert report.degraded and all("shard 7" in line for line in report.degraded)
    direct = _direct_final(files, 2, STRIPE)
    for index in (15, 16, 17):  # the lost local parity is rebuilt (CRC-checked), globals right
        assert _shard(tmp_path / "m", index).read_bytes() == direct[index]
    outs = decode_layered(tmp_path / "m", tmp_path / "out")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]


def test_corrupt_layer_read_is_refused_unread_layer_is_harmless(tmp_path):
    files, stores = _stores(tmp_path, [6 * STRIPE * 2, 6 * STRIPE * 2], seed=4)
    victim = _shard(stores[0], 0)  # node 0 (position 0) is read only on layer 0
    raw = bytearray(victim.read_bytes())
    raw[STRIPE + 250] ^= 1  # stripe 1, layer 1: not needed by the conversion
    victim.write_bytes(bytes(raw))
    convert_stores(stores, tmp_path / "ok")
    direct = _direct_final(files, 2, STRIPE)
    assert _shard(tmp_path / "ok", 16).read_bytes() == direct[16]
    raw[STRIPE + 10] ^= 1  # stripe 1, layer 0: read by the conversion
    victim.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="layer 0 of shard 0"):
        convert_stores(stores, tmp_path / "bad")
    assert not _shard(tmp_path / "bad", 16).exists()


def test_mismatched_stores_are_refused(tmp_path):
    _, stores = _stores(tmp_path, [6 * STRIPE, 6 * STRIPE])
    src = tmp_path / "x.bin"
    src.write_bytes(b"x" * (6 * STRIPE))
    encode_layered_store(src, tmp_path / "other", "lrc-cvt:6,1,3,1:18,2,3,1", stripe_size=STRIPE)
    with pytest.raises(ParameterError, match="different codes"):
        convert_stores([stores[0], tmp_path / "other"], tmp_path / "m")
    src.write_bytes(b"x" * (12 * STRIPE))
    encode_layered_store(src, tmp_path / "longer", SPEC, stripe_size=STRIPE)
    with pytest.raises(ParameterError, match="shard size"):
        convert_stores([stores[0], tmp_path / "longer"], tmp_path / "m")
    encode_store(src, tmp_path / "rs", "grs:6,1:12,1", stripe_size=STRIPE)
    with pytest.raises(ParameterError, match="LRC"):
        convert_stores([stores[0], tmp_path / "rs"], tmp_path / "m")
    with pytest.raises(ParameterError, match="to="):
        convert_stores(stores, tmp_path / "m", to="lrc:12,4,3")
    with pytest.raises(ParameterError, match="lambda=2"):
        convert_stores([*stores, stores[0]], tmp_path / "m")
    convert_stores(stores, tmp_path / "m")
    with pytest.raises(ParameterError, match="already merged"):
        convert_stores([tmp_path / "m", stores[0]], tmp_path / "m2")
    with pytest.raises(ParameterError, match="multiple of alpha"):
        encode_layered_store(src, tmp_path / "odd", SPEC, stripe_size=1000)
    assert not (tmp_path / "m2").exists()


def test_cli_encode_run_decode(tmp_path):
    rng = np.random.default_rng(5)
    paths = []
    for t in range(2):
        paths.append(tmp_path / f"f{t}.bin")
        paths[-1].write_bytes(rng.integers(0, 256, 5000 + t, dtype=np.uint8).tobytes())
        codes = ["--code", "lrc:6,2,1", "--to", "lrc:12,4,2"]
        out = ["--out", str(tmp_path / f"s{t}")]
        if t:  # the library writes the same store; one CLI encode keeps the test short
            encode_layered_store(paths[-1], tmp_path / f"s{t}", SPEC)
            continue
        subprocess.run([CLI, "convert", "encode", str(paths[-1]), *codes, *out], check=True)
    stores = [str(tmp_path / "s0"), str(tmp_path / "s1")]
    bad = subprocess.run(
        [CLI, "convert", "run", *stores, "--to", "rs:12,2"], capture_output=True, text=True
    )
    assert bad.returncode == 2, bad.stdout + bad.stderr
    run = subprocess.run(
        [
            CLI,
            "convert",
            "run",
            "--json",
            *stores,
            "--to",
            "lrc:12,4,2",
            "--out",
            str(tmp_path / "m"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(run.stdout)["shards_read"] == "7 1/3"
    subprocess.run([CLI, "convert", "decode", str(tmp_path / "m"), str(tmp_path / "o")], check=True)
    assert [(tmp_path / "o" / p.name).read_bytes() for p in paths] == [
        p.read_bytes() for p in paths
    ]
