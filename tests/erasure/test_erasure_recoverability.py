"""LRC recovers every erasure pattern that any code with its local groups can recover.

The maximum is computed here independently of the library: the rank of a random code with the
same local-group topology over the prime field GF(2^61 - 1), in plain Python integers (a random
code over a field that large has the generic rank with overwhelming probability). Our LRC's own
counts are checked by plain-Python GF(2^8) elimination with the bit-level multiply, not by the
library's batch kernel.
"""

import json
import random
import subprocess
import sys
import zlib
from itertools import combinations
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.erasure import LRC, parse_code
from redundancy.erasure.checksum import crc32
from redundancy.erasure.recoverability import lrc_maximum_by_size

PRIME = (1 << 61) - 1
PARAMETER_SETS = [(12, 2, 2), (6, 2, 2), (10, 2, 2), (14, 2, 2), (12, 3, 3), (12, 2, 3)]


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "redundancy.cli", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


def slow_mul(a: int, b: int) -> int:
    """GF(2^8) multiply from its definition: carry-less product reduced by 0x11d."""
    product = 0
    for bit in range(8):
        if b >> bit & 1:
            product ^= a << bit
    for bit in range(15, 7, -1):
        if product >> bit & 1:
            product ^= 0x11D << (bit - 8)
    return product


INVERSE = {a: next(x for x in range(1, 256) if slow_mul(a, x) == 1) for a in range(1, 256)}


def gf256_singular(matrix: list[list[int]]) -> bool:
    """Gaussian elimination over GF(2^8) with the bit-level multiply."""
    rows = [list(r) for r in matrix]
    for col in range(len(rows)):
        pivot = next((r for r in range(col, len(rows)) if rows[r][col]), None)
        if pivot is None:
            return True
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inverse = INVERSE[rows[col][col]]
        for r in range(col + 1, len(rows)):
            factor = slow_mul(rows[r][col], inverse)
            if factor:
                rows[r] = [a ^ slow_mul(factor, b) for a, b in zip(rows[r], rows[col], strict=True)]
    return False


def prime_rank(rows: list[list[int]]) -> int:
    """Rank over GF(PRIME) by Gaussian elimination on Python ints."""
    work = [list(r) for r in rows]
    rank, columns = 0, len(work[0]) if work else 0
    for col in range(columns):
        pivot = next((r for r in range(rank, len(work)) if work[r][col] % PRIME), None)
        if pivot is None:
            continue
        work[rank], work[pivot] = work[pivot], work[rank]
        inverse = pow(work[rank][col], PRIME - 2, PRIME)
        for r in range(rank + 1, len(work)):
            factor = work[r][col] * inverse % PRIME
            if factor:
                work[r] = [
                    (a - factor * b) % PRIME for a, b in zip(work[r], work[rank], strict=True)
                ]
        rank += 1
    return rank


def random_lrc_parities(k: int, l: int, g: int, seed: int) -> list[list[int]]:  # noqa: E741
    """Parity rows of a random code with LRC topology: groups of consecutive data (sizes as even
    as possible, larger first), one local row each with random nonzero entries on its group,
    g global rows with random nonzero entries everywhere."""
    draw = random.Random(seed)
    sizes = [k // l + (1 if j < k % l else 0) for j in range(l)]
    rows, start = [], 0
    for size in sizes:
        rows.append(
            [draw.randrange(1, PRIME) if start <= i < start + size else 0 for i in range(k)]
        )
        start += size
    rows += [[draw.randrange(1, PRIME) for _ in range(k)] for _ in range(g)]
    return rows


def counts_by_size(n: int, k: int, recoverable) -> list[int]:
    """Patterns of each size 0..n-k whose lost data is rebuilt from the surviving parities.

    With systematic data, a pattern is recoverable exactly when the surviving parity rows,
    restricted to the lost data columns, have full column rank.
    """
    counts = []
    for size in range(n - k + 1):
        count = 0
        for lost in combinations(range(n), size):
            data_lost = [i for i in lost if i < k]
            alive = [p - k for p in range(k, n) if p not in lost]
            count += not data_lost or recoverable(data_lost, alive)
        counts.append(count)
    return counts


@pytest.mark.parametrize(("k", "l", "g"), PARAMETER_SETS)
def test_lrc_recovers_the_prime_field_maximum_exhaustively(k, l, g):  # noqa: E741
    n = k + l + g
    parities = random_lrc_parities(k, l, g, seed=k * 100 + l * 10 + g)

    def generic(data_lost, alive):
        return prime_rank([[parities[p][c] for c in data_lost] for p in alive]) == len(data_lost)

    maximum = counts_by_size(n, k, generic)
    code = LRC(k, l, g)
    assert code.recovered_by_size() == maximum
    assert lrc_maximum_by_size(k, l, g) == maximum
    # Our GF(2^8) generator, with the bit-level field arithmetic, at the largest size (every
    # smaller recoverable pattern lies inside a recoverable pattern of this size).
    ours = code.generator[k:].tolist()
    top = 0
    for lost in combinations(range(n), n - k):
        data_lost = [i for i in lost if i < k]
        alive = [p - k for p in range(k, n) if p not in lost]
        top += not data_lost or not gf256_singular([[ours[p][c] for c in data_lost] for p in alive])
    assert top == maximum[-1]


def test_azure_figures_and_the_earlier_construction():
    # Huang et al. (ATC 2012): LRC(12,2,2) decodes 86% of 4-failure patterns = 1568 of 1820.
    assert LRC(12, 2, 2).recovered_by_size()[4] == 1568 == round(0.8615 * comb(16, 4))
    # The version-1 generator (kept to decode old stores) misses 13 of them, e.g. data {0,1,6,7}.
    legacy = LRC(12, 2, 2, version=1)
    assert legacy.recovered_by_size()[4] == 1555
    shards = [None if i in {0, 1, 6, 7} else np.zeros(4, np.uint8) for i in range(16)]
    assert LRC(12, 2, 2).reconstruct(shards)[0] is not None
    with pytest.raises(Exception, match="cannot rebuild"):
        legacy.reconstruct(shards)


def test_version_2_generator_is_pinned():
    # Stores are decoded by rebuilding the generator, so it must never change: pinned bytes.
    assert LRC(6, 2, 2).generator[6:].tolist() == PINNED_6_2_2
    assert parse_code("lrc:6,2,2", version=1).generator[8:].tolist() != PINNED_6_2_2[2:]


PINNED_6_2_2 = [
    [1, 1, 1, 0, 0, 0],
    [0, 0, 0, 1, 1, 1],
    [122, 133, 71, 167, 142, 244],
    [186, 122, 167, 71, 244, 142],
]


def test_info_prints_recovered_patterns_per_size(tmp_path):
    result = run_cli("ec", "info", "--code", "lrc:12,2,2", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    rows = {row["lost"]: row for row in document["recovered_patterns"]}
    assert rows[4] == {"lost": 4, "recovered": 1568, "maximum": 1568, "total": 1820}
    assert rows[3]["recovered"] == comb(16, 3)  # distance 4: any 3 lost
    assert document["maximally_recoverable"] is True and document["code_version"] == 2
    text = run_cli("ec", "info", "--code", "lrc:12,2,2", cwd=tmp_path).stdout
    assert "1568" in text and "maximally recoverable: yes" in text


def write_version_1_store(tmp_path):
    """A store as the earlier release wrote it: LRC version-1 parities, no code_version."""
    import zlib

    from redundancy.erasure import store

    source = tmp_path / "f.bin"
    source.write_bytes(np.random.default_rng(5).integers(0, 256, 30_000, np.uint8).tobytes())
    root = tmp_path / "st"
    store.encode_file(source, root, "lrc:6,2,2", stripe_size=1000)
    document = json.loads((root / "manifest.json").read_text())
    legacy = LRC(6, 2, 2, version=1)
    data = np.stack([np.fromfile(root / document["shards"][i]["path"], np.uint8) for i in range(6)])
    stripes = document["stripes"]
    for index, shard in enumerate(legacy.encode_all(data)):
        (root / document["shards"][index]["path"]).write_bytes(shard.tobytes())
        chunks = [shard[s * 1000 : (s + 1) * 1000] for s in range(stripes)]
        document["shards"][index]["crc32"] = [zlib.crc32(c) for c in chunks]
    del document["code_version"]
    (root / "manifest.json").write_text(json.dumps(document))
    return source, root, document


def test_a_version_1_store_still_decodes_and_is_never_decoded_with_the_wrong_generator(tmp_path):
    source, root, document = write_version_1_store(tmp_path)
    for lost in (0, 3, 4):  # needs both global parities
        (root / document["shards"][lost]["path"]).unlink()
    result = run_cli("ec", "decode", "st", "--out", "v1.bin", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "v1.bin").read_bytes() == source.read_bytes()
    # The same shards claimed as version 2: the wrong generator is caught, nothing is written.
    (root / "manifest.json").write_text(json.dumps({**document, "code_version": 2}))
    wrong = run_cli("ec", "decode", "st", "--out", "v2.bin", cwd=tmp_path)
    assert wrong.returncode == 3 and "SHA-256" in wrong.stderr
    assert not (tmp_path / "v2.bin").exists()
    (root / "manifest.json").write_text(json.dumps({**document, "code_version": 3}))
    newer = run_cli("ec", "decode", "st", "--out", "v3.bin", cwd=tmp_path)
    assert newer.returncode == 2 and "code_version 3" in newer.stderr
    assert newer.stderr.count("\n") == 1 and not (tmp_path / "v3.bin").exists()


@given(data=st.binary(max_size=5000), start=st.integers(0, 50), step=st.integers(1, 3))
@settings(max_examples=60, deadline=None)
def test_shard_checksum_is_zlibs_crc32_for_any_buffer(data, start, step):
    array = np.frombuffer(data, np.uint8)[start::step]  # strided views too
    assert crc32(array) == zlib.crc32(array.tobytes())
    assert crc32(data) == zlib.crc32(data)


def test_codes_too_large_to_search_keep_the_distance_verified_generator(tmp_path):
    # C(24, 8) = 735471 patterns of l + g lost shards: beyond the exhaustive search.
    assert np.array_equal(LRC(16, 4, 4).generator, LRC(16, 4, 4, version=1).generator)
    result = run_cli("ec", "info", "--code", "lrc:16,4,4", "--json", cwd=tmp_path)
    document = json.loads(result.stdout)
    assert document["recovered_patterns"] is None and document["maximally_recoverable"] is None
