"""One store format (issue 23): every store `redundancy convert` writes is an `ec` store.

LRC global merges and piggybacked merges (vector codes: ``sub_packetization``), split and
general-regime results (several codewords side by side: ``tolerated_losses``) are read by
`ec verify`, repaired by `ec repair` and decoded by `ec decode`, byte-exact against the original
files; and a store `ec encode --code rs:K,M` wrote converts by reading all its data (reported).
"""

import hashlib
import json
import subprocess
import sys
import zlib
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy import gf256
from redundancy.convertible.stores.layered import layered_family
from redundancy.convertible.stores.stripe_io import chunk_crc32, crc32_combine
from redundancy.erasure.codes import LinearCode
from redundancy.erasure.manifest import load_manifest
from redundancy.erasure.store import shard_relpath
from redundancy.erasure.vector import VectorCode
from redundancy.errors import IntegrityError

CLI = str(Path(sys.executable).with_name("redundancy"))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, check=False)


def _ok(*args: str) -> subprocess.CompletedProcess:
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    return result


def _files(tmp: Path, sizes: list[int], seed: int = 11) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for t, size in enumerate(sizes):
        path = tmp / f"file{t}.bin"
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        paths.append(path)
    return paths


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _encode(tmp: Path, files: list[Path], *options: str) -> list[Path]:
    stores = []
    for t, source in enumerate(files):
        store = tmp / f"s{t}"
        _ok("convert", "encode", str(source), *options, "--out", str(store))
        stores.append(store)
    return stores


def _lose_repair_decode(store: Path, lost: list[int], files: list[Path], out: Path) -> None:
    """Delete ``lost`` shards; `ec verify` names them, `ec decode` gives every file byte-exact,
    `ec repair` writes the very bytes that were lost, and `ec verify` is clean again."""
    paths = [store / shard_relpath(i) for i in lost]
    originals = [p.read_bytes() for p in paths]
    for path in paths:
        path.unlink()
    report = json.loads(_run("ec", "verify", "--json", str(store)).stdout)
    assert report["status"] == "damaged" and report["damaged"] == sorted(lost)
    _ok("ec", "decode", str(store), "--out", str(out) + ("/" if len(files) > 1 else ""))
    for source in files:
        decoded = out / source.name if len(files) > 1 else out
        assert _sha(decoded) == _sha(source)
    _ok("ec", "repair", str(store))
    assert [p.read_bytes() for p in paths] == originals
    assert _ok("ec", "verify", str(store)).returncode == 0


def test_lrc_merge_result_is_an_ec_store(tmp_path):
    files = _files(tmp_path, [20_000, 20_000])
    stores = _encode(
        tmp_path, files, "--code", "lrc:6,2,1", "--to", "lrc:12,4,2", "--stripe-size", "1536"
    )
    for store in stores:  # the initial layered stores too
        assert _ok("ec", "verify", str(store)).returncode == 0
    merged = tmp_path / "m"
    _ok("convert", "run", *map(str, stores), "--out", str(merged))
    manifest = load_manifest(merged)
    assert manifest.sub_packetization == 3 and manifest.tolerated_losses == 3  # g_F + l
    # a data shard of each member, a local parity and a global: g_F + l = 3 losses... plus one
    _lose_repair_decode(merged, [2, 8, 13, 17], files, tmp_path / "out")
    code = manifest.build_code()
    plan = code.repair_plan([4])  # data shard 4 is in local group {3, 4, 5} + local parity 13
    assert plan.reads == (3, 5, 13)


def test_lrc_merge_result_beyond_its_distance_is_refused_with_exit_3(tmp_path):
    files = _files(tmp_path, [9_000, 9_000])
    stores = _encode(
        tmp_path, files, "--code", "lrc:6,2,1", "--to", "lrc:12,4,2", "--stripe-size", "768"
    )
    merged = tmp_path / "m"
    _ok("convert", "run", *map(str, stores), "--out", str(merged))
    for i in (0, 1, 2, 12):  # a whole local group and its parity: 4 unknowns, 2 globals left
        (merged / shard_relpath(i)).unlink()
    result = _run("ec", "decode", str(merged), "--out", str(tmp_path / "out") + "/")
    assert result.returncode == 3 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / files[0].name).exists()


def test_piggyback_merge_result_is_an_ec_store(tmp_path):
    files = _files(tmp_path, [12_000, 11_999], seed=3)  # layered merges need equal shard sizes
    stores = _encode(
        tmp_path,
        files,
        *("--code", "rs:6,1", "--to", "rs:12,2", "--piggyback", "--stripe-size", "1024"),
    )
    merged = tmp_path / "m"
    _ok("convert", "run", *map(str, stores), "--out", str(merged))
    manifest = load_manifest(merged)
    assert manifest.sub_packetization == 2 and manifest.tolerated_losses is None  # MDS: r = 2
    _lose_repair_decode(merged, [7, 12], files, tmp_path / "out")
    one = tmp_path / "one.bin"
    _ok("ec", "decode", str(merged), "--member", files[1].name, "--out", str(one))
    assert _sha(one) == _sha(files[1])


def test_split_result_is_an_ec_store_of_two_codewords(tmp_path):
    (source,) = _files(tmp_path, [25_000])
    (store,) = _encode(tmp_path, [source], "--code", "rs:8,2", "--to", "rs:4,2")
    split = tmp_path / "split"
    _ok("convert", "run", str(store), "--out", str(split))
    assert load_manifest(split).tolerated_losses == 2
    # codeword 0 is data 0-3 + parities 8, 9; codeword 1 is data 4-7 + parities 10, 11:
    # two losses in each codeword decode
    _lose_repair_decode(split, [1, 9, 4, 11], [source], tmp_path / "back.bin")
    (split / shard_relpath(6)).unlink()  # a repair reads 4 shards of its own codeword only
    repaired = _ok("ec", "repair", str(split)).stdout
    shard = (split / shard_relpath(6)).stat().st_size
    assert f"rebuilt shards [6]: read {4 * shard} bytes" in repaired
    for i in (0, 2, 8):  # three losses in one codeword of r = 2: not recoverable
        (split / shard_relpath(i)).unlink()
    result = _run("ec", "decode", str(split), "--out", str(tmp_path / "lost.bin"))
    assert result.returncode == 3 and len(result.stderr.strip().splitlines()) == 1


def test_general_result_is_an_ec_store(tmp_path):
    files = _files(tmp_path, [5_000, 4_000, 5_000, 3_000], seed=8)
    stores = _encode(tmp_path, files, "--code", "rs:3,2", "--to", "rs:4,2", "--stripe-size", "512")
    out = tmp_path / "g"
    _ok("convert", "run", *map(str, stores), "--out", str(out))
    assert load_manifest(out).tolerated_losses == 2
    _lose_repair_decode(out, [0, 7, 12, 17], files, tmp_path / "decoded")


def test_forged_loss_claim_is_refused_with_exit_2(tmp_path):
    (source,) = _files(tmp_path, [6_000])
    (store,) = _encode(tmp_path, [source], "--code", "rs:8,2", "--to", "rs:4,2")
    split = tmp_path / "split"
    _ok("convert", "run", str(store), "--out", str(split))
    path = split / "manifest.json"
    manifest = json.loads(path.read_text())
    for forged in ({"tolerated_losses": 3}, {"tolerated_losses": None}, {"sub_packetization": 3}):
        path.write_text(json.dumps({**manifest, **forged}))
        result = _run("ec", "verify", str(split))
        assert result.returncode == 2 and "parity_matrix" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    path.write_text(json.dumps({**manifest, "sub_packetization": 32}))  # 12 x 32 symbols
    with pytest.raises(IntegrityError, match="384 symbols"):
        load_manifest(split)


def test_ec_encoded_stores_convert_by_reading_all_data(tmp_path):
    files = _files(tmp_path, [9_000, 6_000], seed=4)
    stores = []
    for t, source in enumerate(files):
        stores.append(tmp_path / f"e{t}")
        _ok("ec", "encode", str(source), "--code", "rs:6,3", "--out", str(stores[-1]))
    no_target = _run("convert", "run", *map(str, stores), "--out", str(tmp_path / "x"))
    assert no_target.returncode == 2 and "--to" in no_target.stderr
    assert len(no_target.stderr.strip().splitlines()) == 1
    merged = tmp_path / "m"
    result = _run("convert", "run", *map(str, stores), "--to", "rs:12,3", "--out", str(merged))
    assert result.returncode == 0, result.stderr
    assert "read every data shard" in result.stderr and "ec encode" in result.stderr
    again = ("convert", "run", *map(str, stores), "--to", "rs:12,3", "--out", str(tmp_path / "j"))
    merged_json = json.loads(_ok(*again, "--json").stdout)
    assert merged_json["method"] == "reencode" and merged_json["shards_read"] == "12"
    assert merged_json["notes"] and "rs:6,3" in merged_json["notes"][0]
    _lose_repair_decode(merged, [3, 13], files, tmp_path / "out")
    # the result is a convertible store: the next merge reads only r_F parities per codeword
    twin = tmp_path / "m2"
    _ok("convert", "run", *map(str, stores), "--to", "rs:12,3", "--out", str(twin))
    chain = ("convert", "run", str(merged), str(twin), "--to", "rs:24,3", "--out")
    chained = json.loads(_ok(*chain, str(tmp_path / "c"), "--json").stdout)
    assert chained["method"] == "optimal" and chained["shards_read"] == "6"
    assert chained["notes"] == []


def test_vector_code_decodes_exactly_when_the_surviving_layers_have_full_rank():
    """``decodes`` ranks columns of the parity-check matrix; the reference ranks the surviving
    generator rows (the definition), for every set of 4 of the 18 shards."""
    family = layered_family("lrc-cvt:6,1,3,1:12,2,3,1")
    code = VectorCode(family.final_generator, family.alpha)
    alpha = family.alpha
    outcomes = set()
    for lost in combinations(range(code.n), 4):
        keep = [i * alpha + a for i in range(code.n) if i not in lost for a in range(alpha)]
        expected = gf256.rank(family.final_generator[keep]) == code.k * alpha
        assert code.decodes(lost) == expected, lost
        outcomes.add(expected)
    assert outcomes == {True, False}


def test_block_code_repairs_from_its_own_codeword():
    parity = np.array([[1, 1], [1, 2]], dtype=np.uint8)  # two (4, 2) MDS codewords side by side
    rows = np.zeros((4, 4), dtype=np.uint8)
    rows[:2, :2], rows[2:, 2:] = parity, parity
    code = LinearCode(np.vstack([np.eye(4, dtype=np.uint8), rows]))
    assert code.repair_plan([3]).reads == (2, 6)  # codeword 1: data 2, 3 and parities 6, 7
    assert code.repair_plan([0, 5]).reads == (1, 4)  # both lost in codeword 0
    data = np.random.default_rng(0).integers(0, 256, (4, 16), dtype=np.uint8)
    shards = list(code.encode_all(data))
    shards[3] = shards[0] = None
    rebuilt = code.reconstruct(shards)
    assert np.array_equal(rebuilt[3], data[3]) and np.array_equal(rebuilt[0], data[0])


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32_combine_matches_zlib(first, second):
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(
        first + second
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(0, 40), st.randoms(use_true_random=False))
def test_chunk_crc32_of_layers_matches_zlib(layers, length, rng):
    parts = [bytes(rng.getrandbits(8) for _ in range(length)) for _ in range(layers)]
    assert chunk_crc32([zlib.crc32(p) for p in parts], length) == zlib.crc32(b"".join(parts))
