"""Conversion on real stores: bytes read equal the bound, decode after, crash safety, bad input."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from redundancy.convertible.algebra import bounds
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.stores.merge import convert_stores
from redundancy.convertible.stores.scalar import decode_any, encode_store, load_merged
from redundancy.erasure import store as ec_store
from redundancy.errors import IntegrityError, ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))  # the venv's console script
SPEC = "grs:4,2:8,2"
STRIPE = 1024


def _stores(tmp: Path, sizes: list[int], spec: str = SPEC) -> tuple[list[Path], list[Path]]:
    rng = np.random.default_rng(len(sizes) * 7 + sizes[0])
    files, stores = [], []
    for t, size in enumerate(sizes):
        src = tmp / f"file{t}.bin"
        src.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        encode_store(src, tmp / f"store{t}", spec, stripe_size=STRIPE)
        files.append(src)
        stores.append(tmp / f"store{t}")
    return files, stores


def test_initial_store_is_ec_format_and_decodes(tmp_path):
    files, stores = _stores(tmp_path, [10_000, 5_000])
    manifest = ec_store.load_manifest(stores[0])
    assert manifest.code == SPEC and len(manifest.shards) == 6
    (stores[0] / manifest.shards[1].path).unlink()
    (stores[0] / manifest.shards[4].path).unlink()
    decode_any(stores[0], tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == files[0].read_bytes()


def test_merge_reads_exactly_the_bound_and_decodes(tmp_path):
    size = 4 * STRIPE * 3  # three full stripes per member
    files, stores = _stores(tmp_path, [size, size])
    report = convert_stores(stores, tmp_path / "merged", to="rs:8,2")
    conv = Conversion.merge(4, 2, 2, 2)
    shard = size // 4
    assert report.shards_read == bounds.read_access_bound(conv)
    assert report.bytes_read == bounds.read_access_bound(conv) * shard
    assert report.bytes_written == bounds.write_access_bound(conv) * shard
    anchor = convert_stores(stores, tmp_path / "anchor", method="reencode")
    assert anchor.bytes_read == bounds.costs(conv).reencode_read * shard
    merged = tmp_path / "merged"
    for j in (8, 9):
        a = (merged / ec_store.shard_relpath(j)).read_bytes()
        assert a == (tmp_path / "anchor" / ec_store.shard_relpath(j)).read_bytes()
    outs = decode_any(merged, tmp_path / "out")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]


@pytest.mark.parametrize("lost", [(0, 1), (3, 8), (8, 9), (2, 6)])
def test_merged_store_survives_any_two_losses(tmp_path, lost):
    files, stores = _stores(tmp_path, [9_000, 3_333])
    convert_stores(stores, tmp_path / "m")
    for index in lost:
        (tmp_path / "m" / ec_store.shard_relpath(index)).unlink()
    outs = decode_any(tmp_path / "m", tmp_path / "out")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]


def test_missing_parity_refused_or_degraded(tmp_path):
    files, stores = _stores(tmp_path, [6_000, 6_000])
    (stores[1] / ec_store.shard_relpath(4)).unlink()
    with pytest.raises(IntegrityError, match="shard 4 is missing"):
        convert_stores(stores, tmp_path / "m")
    assert not (tmp_path / "m" / "convertible.json").exists()
    report = convert_stores(stores, tmp_path / "m", allow_degraded=True)
    assert report.degraded
    outs = decode_any(tmp_path / "m", tmp_path / "out")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]


def test_corrupt_parity_never_written(tmp_path):
    _, stores = _stores(tmp_path, [6_000, 6_000])
    victim = stores[0] / ec_store.shard_relpath(5)
    raw = bytearray(victim.read_bytes())
    raw[10] ^= 1
    victim.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="checksum"):
        convert_stores(stores, tmp_path / "m")
    assert not (tmp_path / "m" / ec_store.shard_relpath(8)).exists()


def test_bad_inputs(tmp_path):
    _, stores = _stores(tmp_path, [5_000, 5_000])
    other = tmp_path / "other"
    src = tmp_path / "x.bin"
    src.write_bytes(b"x" * 100)
    encode_store(src, other, "grs:4,2:8,1", stripe_size=STRIPE)
    with pytest.raises(ParameterError, match="different codes"):
        convert_stores([stores[0], other], tmp_path / "m")
    with pytest.raises(ParameterError, match="merges"):  # any target, but it must fit lambda
        convert_stores(stores, tmp_path / "m", to="rs:12,2")
    with pytest.raises(ParameterError, match="lambda"):
        convert_stores(stores[:1], tmp_path / "m")
    with pytest.raises(ParameterError, match="merges"):
        convert_stores([*stores, stores[0]], tmp_path / "m")
    encode_store(src, tmp_path / "big", SPEC, stripe_size=2048)
    with pytest.raises(ParameterError, match="stripe sizes"):
        convert_stores([stores[0], tmp_path / "big"], tmp_path / "m")
    ec_store.encode_file(src, tmp_path / "plain", "rs:4,2")
    with pytest.raises(ParameterError, match="records no target"):  # converts with --to
        convert_stores([stores[0], tmp_path / "plain"], tmp_path / "m")
    ec_store.encode_file(src, tmp_path / "plain-lrc", "lrc:4,2,1")
    with pytest.raises(ParameterError, match="which no conversion reads"):
        convert_stores([stores[0], tmp_path / "plain-lrc"], tmp_path / "m")


_KILLER = """
import os, signal, sys
from redundancy.convertible.stores.merge import convert_stores
def die(stripe):
    if stripe == 2:
        os.kill(os.getpid(), signal.SIGKILL)
convert_stores([sys.argv[1], sys.argv[2]], sys.argv[3], progress=die)
"""


def test_killed_conversion_leaves_old_code_and_rerun_finishes(tmp_path):
    files, stores = _stores(tmp_path, [4 * STRIPE * 6, 4 * STRIPE * 5])
    merged = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(stores[0]), str(stores[1]), str(merged)],
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    assert not (merged / "convertible.json").exists()
    for t in range(2):  # the old code is intact and decodable
        decode_any(stores[t], tmp_path / f"old{t}.bin")
        assert (tmp_path / f"old{t}.bin").read_bytes() == files[t].read_bytes()
    convert_stores(stores, merged, retire=True)
    assert not any(p.name.endswith(".tmp") for p in merged.rglob("*"))
    assert not (stores[0] / "manifest.json").exists()
    outs = decode_any(merged, tmp_path / "out")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]
    assert convert_stores(stores, merged).resumed
    assert load_merged(merged)[0].bytes_read > 0


def test_cli_end_to_end_and_exit_codes(tmp_path):
    files, _ = _stores(tmp_path, [7_000, 3_000])
    run = subprocess.run(
        [
            CLI,
            "convert",
            "run",
            "--json",
            str(tmp_path / "store0"),
            str(tmp_path / "store1"),
            "--to",
            "rs:8,2",
            "--out",
            str(tmp_path / "m"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(run.stdout)["shards_read"] == "4"
    subprocess.run([CLI, "convert", "decode", str(tmp_path / "m"), str(tmp_path / "o")], check=True)
    assert (tmp_path / "o" / "file1.bin").read_bytes() == files[1].read_bytes()
    for args in (
        ["cost", "--to", "rs:20"],
        ["run", str(tmp_path / "store0"), str(tmp_path / "store1"), "--to", "rs:12,4"],
    ):
        bad = subprocess.run([CLI, "convert", *args], capture_output=True, text=True)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
    assert subprocess.run([CLI, "convert", "lrc-cost"], capture_output=True).returncode == 0
