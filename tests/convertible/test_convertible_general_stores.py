"""General regime on stores: (5,3) x4 -> (6,4) x3 and [6,5] x12 -> [13,12] x5 read the bound."""

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
from redundancy.convertible.algebra.general import GeneralConversion
from redundancy.convertible.spec import parse_spec
from redundancy.convertible.stores.general import GENERAL_NAME, decode_general, load_general
from redundancy.convertible.stores.merge import convert_stores
from redundancy.convertible.stores.scalar import decode_any, encode_store
from redundancy.erasure.store import shard_relpath
from redundancy.errors import IntegrityError, ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))
SPEC = "grs:3,2:4,2"  # (5,3) x4 -> (6,4) x3
STRIPE = 256


def _stores(tmp: Path, sizes: list[int], spec: str = SPEC, seed: int = 0):
    rng = np.random.default_rng(seed)
    files, stores = [], []
    for t, size in enumerate(sizes):
        files.append(tmp / f"f{t}.bin")
        files[-1].write_bytes(rng.integers(0, 256, size, np.uint8).tobytes())
        encode_store(files[-1], tmp / f"s{t}", spec, stripe_size=STRIPE)
        stores.append(tmp / f"s{t}")
    return files, stores


def _direct(files: list[Path], spec: str, stripes: int) -> list[bytes]:
    """Every new parity, by encoding each final codeword's data (layout) directly."""
    family = parse_spec(spec)
    c, code = family.conversion, family.final_code()
    gen = GeneralConversion(family)
    out = [b""] * (c.lambda_f * c.r_f)
    for stripe in range(stripes):  # equal-size members with full stripes
        data = [
            np.frombuffer(f.read_bytes(), np.uint8)[stripe * c.k_i * STRIPE :][
                : c.k_i * STRIPE
            ].reshape(c.k_i, STRIPE)
            for f in files
        ]
        for u, final in enumerate(gen.final_data(data)):
            for j, row in enumerate(code.encode(final)):
                out[u * c.r_f + j] += row.tobytes()
    return out


@pytest.mark.parametrize(("spec", "count"), [(SPEC, 4), ("grs:5,1:12,1", 12)])
def test_reads_the_bound_and_equals_direct_encoding(tmp_path, spec, count):
    c = parse_spec(spec).conversion
    files, stores = _stores(tmp_path, [c.k_i * STRIPE * 2] * count, spec)
    report = convert_stores(stores, tmp_path / "g", to=f"rs:{c.k_f},{c.r_f}")
    bound = bounds.read_access_bound(c)
    assert report.shards_read == bound and report.bytes_read == bound * 2 * STRIPE
    assert (bound, c.lambda_i * c.k_i) in ((9, 12), (18, 60))
    anchor = convert_stores(stores, tmp_path / "a", method="reencode")
    assert anchor.bytes_read == c.lambda_i * c.k_i * 2 * STRIPE
    direct = _direct(files, spec, 2)
    for row, want in enumerate(direct):
        rel = shard_relpath(c.lcm + row)
        assert (tmp_path / "g" / rel).read_bytes() == want == (tmp_path / "a" / rel).read_bytes()
    outs = decode_general(tmp_path / "g", tmp_path / "out")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]


def test_unequal_members_and_any_two_losses_per_final_codeword(tmp_path):
    files, stores = _stores(tmp_path, [3 * STRIPE * 2, 700, 3 * STRIPE + 5, 1], seed=1)
    convert_stores(stores, tmp_path / "g")
    gen = load_general(tmp_path / "g")[1]
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    words = [
        [t * 3 + i for t, i in layout] + [12 + 2 * u, 13 + 2 * u]
        for u, layout in enumerate(gen.layout)
    ]
    for word in words:  # every pair of lost shards inside each final codeword
        for lost in combinations(word, 2):
            for i in lost:
                (tmp_path / "g" / shard_relpath(i)).rename(hidden / str(i))
            try:
                outs = decode_general(tmp_path / "g", tmp_path / "o", force=True)
                assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files], lost
            finally:
                for i in lost:
                    (hidden / str(i)).rename(tmp_path / "g" / shard_relpath(i))


_KILLER = """
import os, signal, sys
from redundancy.convertible.stores.merge import convert_stores
def die(stripe):
    if stripe == 1:
        os.kill(os.getpid(), signal.SIGKILL)
convert_stores(sys.argv[2:], sys.argv[1], progress=die)
"""


def test_killed_conversion_keeps_old_code_and_rerun_finishes(tmp_path):
    files, stores = _stores(tmp_path, [3 * STRIPE * 4] * 4, seed=2)
    out = tmp_path / "g"
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(out), *map(str, stores)], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / GENERAL_NAME).exists() and not (out / shard_relpath(12)).exists()
    for t in range(4):
        decode_any(stores[t], tmp_path / f"old{t}.bin")
        assert (tmp_path / f"old{t}.bin").read_bytes() == files[t].read_bytes()
    convert_stores(stores, out, retire=True)
    assert not (stores[0] / "manifest.json").exists()
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))
    outs = decode_general(out, tmp_path / "new")
    assert [o.read_bytes() for o in outs] == [f.read_bytes() for f in files]
    assert convert_stores(stores, out).resumed


def test_missing_shard_refused_or_degraded_and_bad_input(tmp_path):
    files, stores = _stores(tmp_path, [3 * STRIPE * 2] * 4, seed=3)
    victim = GeneralConversion.build(Conversion(3, 2, 4, 2)).reads[-1]  # a shard the plan reads
    (stores[victim[0]] / shard_relpath(victim[1])).unlink()
    with pytest.raises(IntegrityError, match=f"shard {victim[1]} is missing"):
        convert_stores(stores, tmp_path / "g")
    assert not (tmp_path / "g" / GENERAL_NAME).exists()
    report = convert_stores(stores, tmp_path / "g", allow_degraded=True)
    assert report.degraded
    direct = _direct(files, SPEC, 2)
    for row, want in enumerate(direct):
        assert (tmp_path / "g" / shard_relpath(12 + row)).read_bytes() == want
    with pytest.raises(ParameterError, match="lambda_I=4"):
        convert_stores(stores[:3], tmp_path / "x")
    with pytest.raises(ParameterError, match="nothing to convert"):  # the target is free
        convert_stores(stores, tmp_path / "x", to="rs:3,1")
    (tmp_path / "o").mkdir()
    _, other = _stores(tmp_path / "o", [100], "grs:3,2:6,2")  # a merge family
    with pytest.raises(ParameterError, match="different codes"):
        convert_stores([*stores[:3], other[0]], tmp_path / "x")


def test_cli_general_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    paths = []
    for t in range(4):
        paths.append(tmp_path / f"f{t}.bin")
        paths[-1].write_bytes(rng.integers(0, 256, 2000 + t, np.uint8).tobytes())
        if t:  # the library writes the same stores; one CLI encode keeps the test short
            encode_store(paths[-1], tmp_path / f"s{t}", SPEC, stripe_size=1 << 20)
            continue
        codes = ["--code", "rs:3,2", "--to", "rs:4,2", "--out", str(tmp_path / f"s{t}")]
        subprocess.run([CLI, "convert", "encode", str(paths[-1]), *codes], check=True)
    stores = [str(tmp_path / f"s{t}") for t in range(4)]
    out = ["--to", "rs:4,2", "--out", str(tmp_path / "g")]
    run = subprocess.run(
        [CLI, "convert", "run", "--json", *stores, *out], check=True, capture_output=True, text=True
    )
    assert json.loads(run.stdout)["shards_read"] == "9"
    subprocess.run([CLI, "convert", "decode", str(tmp_path / "g"), str(tmp_path / "o")], check=True)
    assert [(tmp_path / "o" / p.name).read_bytes() for p in paths] == [
        p.read_bytes() for p in paths
    ]
