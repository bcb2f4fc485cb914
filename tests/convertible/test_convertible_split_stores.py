"""Split (10,8) -> 2 x (6,4) on real stores: reads the access bound, decodes, crash safety."""

import json
import signal
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from redundancy.convertible.algebra import bounds
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.spec import parse_spec
from redundancy.convertible.stores.merge import convert_stores
from redundancy.convertible.stores.scalar import decode_any, encode_store
from redundancy.convertible.stores.split import SPLIT_NAME, decode_split, load_split
from redundancy.erasure.store import shard_relpath
from redundancy.errors import IntegrityError, ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))
SPEC = "grs:8,2:4,2"
STRIPE = 512


def _store(tmp: Path, size: int, seed: int = 0, name: str = "store") -> tuple[Path, Path]:
    src = tmp / f"{name}.bin"
    src.write_bytes(np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes())
    encode_store(src, tmp / name, SPEC, stripe_size=STRIPE)
    return src, tmp / name


def _direct_parities(src: Path, stripes: int) -> list[bytes]:
    """Parities of each half of every stripe, encoded directly with the final code."""
    code = parse_spec(SPEC).final_code()
    raw, out = src.read_bytes(), [b""] * 4
    for stripe in range(stripes):
        block = raw[stripe * 8 * STRIPE : (stripe + 1) * 8 * STRIPE]
        width = STRIPE if len(block) == 8 * STRIPE else -(-len(block) // 8)
        data = np.frombuffer(block.ljust(8 * width, b"\0"), np.uint8).reshape(8, width)
        for u in range(2):
            parity = code.encode(data[4 * u : 4 * u + 4])
            for j in range(2):
                out[2 * u + j] += parity[j].tobytes()
    return out


def test_split_reads_the_bound_and_equals_direct_encoding(tmp_path):
    src, store = _store(tmp_path, 8 * STRIPE * 3 + 999)
    conv = Conversion(8, 2, 4, 2)
    assert conv.regime == "split" and bounds.read_access_bound(conv) == 6
    report = convert_stores([store], tmp_path / "s", to="rs:4,2")
    shard = (store / shard_relpath(0)).stat().st_size
    assert report.shards_read == 6 and report.bytes_read == 6 * shard
    assert report.shards_written == 4 and report.bytes_written == 4 * shard
    anchor = convert_stores([store], tmp_path / "a", method="reencode")
    assert anchor.bytes_read == 8 * shard
    direct = _direct_parities(src, 4)
    for row in range(4):
        ours = (tmp_path / "s" / shard_relpath(8 + row)).read_bytes()
        assert ours == direct[row] == (tmp_path / "a" / shard_relpath(8 + row)).read_bytes()
    assert decode_split(tmp_path / "s", tmp_path / "out.bin")[0].read_bytes() == src.read_bytes()


def test_each_final_codeword_survives_any_two_losses(tmp_path):
    src, store = _store(tmp_path, 8 * STRIPE * 2 - 77, seed=1)
    convert_stores([store], tmp_path / "s")
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    first, second = [0, 1, 2, 3, 8, 9], [4, 5, 6, 7, 10, 11]
    for lost_a in combinations(first, 2):  # every pair in each codeword, both at once
        for lost_b in combinations(second, 2):
            lost = lost_a + lost_b
            for i in lost:
                (tmp_path / "s" / shard_relpath(i)).rename(hidden / str(i))
            try:
                out = decode_split(tmp_path / "s", tmp_path / "o.bin", force=True)[0]
                assert out.read_bytes() == src.read_bytes(), lost
            finally:
                for i in lost:
                    (hidden / str(i)).rename(tmp_path / "s" / shard_relpath(i))


_KILLER = """
import os, signal, sys
from redundancy.convertible.stores.merge import convert_stores
def die(stripe):
    if stripe == 2:
        os.kill(os.getpid(), signal.SIGKILL)
convert_stores([sys.argv[1]], sys.argv[2], progress=die)
"""


def test_killed_split_keeps_old_code_and_rerun_finishes(tmp_path):
    src, store = _store(tmp_path, 8 * STRIPE * 6, seed=2)
    out = tmp_path / "s"
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(store), str(out)], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / SPLIT_NAME).exists() and not (out / shard_relpath(8)).exists()
    decode_any(store, tmp_path / "old.bin")
    assert (tmp_path / "old.bin").read_bytes() == src.read_bytes()
    convert_stores([store], out, retire=True)
    assert not (store / "manifest.json").exists()
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))
    assert decode_split(out, tmp_path / "new.bin")[0].read_bytes() == src.read_bytes()
    assert convert_stores([store], out).resumed
    assert load_split(out)[0].bytes_read == 6 * STRIPE * 6


def test_missing_parity_refused_or_degraded_and_bad_input(tmp_path):
    src, store = _store(tmp_path, 8 * STRIPE * 2, seed=3)
    (store / shard_relpath(9)).unlink()  # the second old parity: the split reads it
    with pytest.raises(IntegrityError, match="shard 9 is missing"):
        convert_stores([store], tmp_path / "s")
    assert not (tmp_path / "s" / SPLIT_NAME).exists()
    report = convert_stores([store], tmp_path / "s", allow_degraded=True)
    assert report.degraded
    direct = _direct_parities(src, 2)
    assert (tmp_path / "s" / shard_relpath(11)).read_bytes() == direct[3]
    with pytest.raises(ParameterError, match="nothing to convert"):  # the target is free
        convert_stores([store], tmp_path / "t", to="rs:8,1")
    _, other = _store(tmp_path, 100, name="other")
    with pytest.raises(ParameterError):  # two stores of a split family: not a merge
        convert_stores([store, other], tmp_path / "u")


def test_cli_split_round_trip(tmp_path):
    src = tmp_path / "f.bin"
    src.write_bytes(np.random.default_rng(4).integers(0, 256, 9000, np.uint8).tobytes())
    codes = ["--code", "rs:8,2", "--to", "rs:4,2", "--out", str(tmp_path / "st")]
    subprocess.run([CLI, "convert", "encode", str(src), *codes], check=True)
    run = subprocess.run(
        [
            CLI,
            "convert",
            "run",
            "--json",
            str(tmp_path / "st"),
            "--to",
            "rs:4,2",
            "--out",
            str(tmp_path / "s"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(run.stdout)["shards_read"] == "6"
    subprocess.run([CLI, "convert", "decode", str(tmp_path / "s"), str(tmp_path / "o")], check=True)
    assert (tmp_path / "o").read_bytes() == src.read_bytes()
