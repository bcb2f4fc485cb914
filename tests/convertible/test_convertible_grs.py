"""Explicit GRS convertible codes at production parameters, checked by an independent GF(2^8).

The field arithmetic below is written here from the definition (carry-less multiplication modulo
x^8 + x^4 + x^3 + x^2 + 1), not taken from ``redundancy.gf256``; MDS is checked on the parity
block P of each systematic code (MDS iff every square submatrix of P is nonsingular), exhaustively
where the minors number a few ten thousands and on seeded random minors beyond.
"""

from __future__ import annotations

import random
from itertools import combinations

import numpy as np
import pytest

from redundancy.convertible.algebra.access import ConvertibleFamily, merge_plan, split_plan
from redundancy.convertible.algebra.bounds import Conversion, read_access_bound
from redundancy.convertible.algebra.general import GeneralConversion
from redundancy.convertible.algebra.grs import GRSCode
from redundancy.convertible.spec import family_spec
from redundancy.errors import ParameterError


def _mul(a: int, b: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return out


MUL = [[_mul(a, b) for b in range(256)] for a in range(256)]
INV = [0] + [next(b for b in range(1, 256) if MUL[a][b] == 1) for a in range(1, 256)]


def _nonsingular(rows: list[list[int]]) -> bool:
    """Gaussian elimination over GF(2^8) on a copy of a square matrix."""
    m = [list(r) for r in rows]
    size = len(m)
    for col in range(size):
        pivot = next((r for r in range(col, size) if m[r][col]), None)
        if pivot is None:
            return False
        m[col], m[pivot] = m[pivot], m[col]
        scale = INV[m[col][col]]
        m[col] = [MUL[scale][v] for v in m[col]]
        for r in range(col + 1, size):
            f = m[r][col]
            if f:
                m[r] = [v ^ MUL[f][p] for v, p in zip(m[r], m[col], strict=True)]
    return True


def _matvec(parity: np.ndarray, data: list[list[int]]) -> list[list[int]]:
    """Parity rows times data shards (one list of byte values per shard)."""
    out = []
    for row in parity.tolist():
        acc = [0] * len(data[0])
        for coef, shard in zip(row, data, strict=True):
            acc = [a ^ MUL[coef][v] for a, v in zip(acc, shard, strict=True)]
        out.append(acc)
    return out


def _minors(parity: np.ndarray):
    r, k = parity.shape
    for size in range(1, min(r, k) + 1):
        for rows in combinations(range(r), size):
            for cols in combinations(range(k), size):
                yield [[int(parity[i, j]) for j in cols] for i in rows]


def _random_minors(parity: np.ndarray, count: int, seed: int):
    rng = random.Random(seed)
    r, k = parity.shape
    for _ in range(count):
        size = rng.randint(1, min(r, k))
        rows, cols = sorted(rng.sample(range(r), size)), sorted(rng.sample(range(k), size))
        yield [[int(parity[i, j]) for j in cols] for i in rows]


def _assert_mds(parity: np.ndarray, exhaustive: bool) -> None:
    minors = _minors(parity) if exhaustive else _random_minors(parity, 1500, seed=parity.size)
    for minor in minors:
        assert _nonsingular(minor), f"singular minor {minor}"


# (k_I, r_I, k_F, r_F), exhaustive MDS check of the final parity block?
TABLE = [
    ((6, 3, 12, 3), True),  # rs:6,3 x2 -> rs:12,3
    ((12, 3, 24, 3), False),  # ... -> rs:24,3
    ((10, 4, 20, 4), True),  # (14,10) x2 -> (24,20): all 10,625 minors
    ((12, 4, 24, 4), True),  # rs:12,4 x2 -> rs:24,4 = (16,12) x2 -> (28,24): 20,474 minors
    ((10, 4, 30, 4), False),  # (14,10) x3 -> (34,30)
    ((6, 5, 12, 5), False),  # r = 5
    ((12, 6, 24, 6), False),  # r = 6
    ((12, 6, 24, 5), False),  # fewer final parities
    ((17, 3, 34, 3), False),
    ((20, 4, 40, 4), False),
    ((6, 3, 10, 4), False),  # more final parities: data is read
    ((100, 4, 200, 4), False),  # wide
    ((24, 4, 12, 4), False),  # split
    ((20, 4, 10, 3), False),  # split, fewer parities
    ((10, 4, 15, 4), False),  # general: (14,10) x3 -> (19,15) x2
    ((12, 4, 20, 4), False),  # general: x5 -> x3
    ((6, 3, 4, 2), False),  # general, k_F < k_I
]


def _plan(conv: Conversion):
    fam = ConvertibleFamily.build(conv)
    if conv.regime == "merge":
        return (
            fam,
            merge_plan(fam),
            [[(t, i) for t in range(conv.lambda_i) for i in range(conv.k_i)]],
        )
    if conv.regime == "split":
        lay = [[(0, u * conv.k_f + a) for a in range(conv.k_f)] for u in range(conv.lambda_f)]
        return fam, split_plan(fam), lay
    gen = GeneralConversion.build(conv)
    return fam, gen.plan(), [list(x) for x in gen.layout]


@pytest.mark.parametrize(("params", "exhaustive"), TABLE, ids=lambda p: str(p))
def test_both_codes_mds_and_conversion_reads_the_bound(params, exhaustive):
    conv = Conversion(*params)
    fam, plan, layout = _plan(conv)
    initial, final = fam.parities
    assert initial.shape == (conv.r_i, conv.k_i) and final.shape == (conv.r_f, conv.k_f)
    _assert_mds(final, exhaustive)
    _assert_mds(initial, exhaustive and conv.k_i * conv.r_i <= 60)
    assert len(plan.reads) == read_access_bound(conv)
    assert len(plan.writes) == conv.lambda_f * conv.r_f
    # Encode random data with the initial code, run the plan, compare with direct final encoding.
    rng = random.Random(sum(params))
    width = 16
    data = [
        [[rng.randrange(256) for _ in range(width)] for _ in range(conv.k_i)]
        for _ in range(conv.lambda_i)
    ]
    words = [d + _matvec(initial, d) for d in data]
    fetched = {key: np.array(words[key[0]][key[1]], dtype=np.uint8) for key in plan.reads}
    got = plan.apply(fetched)
    for u, shards in enumerate(layout):
        expected = _matvec(final, [data[t][i] for t, i in shards])
        for j in range(conv.r_f):
            assert got[(u, j)].tolist() == expected[j]


def test_chained_merges_return_to_the_base_code():
    """rs:6,3 -> rs:12,3 -> rs:24,3: each final code is the next initial code (multipliers 1)."""
    first = ConvertibleFamily.build(Conversion(6, 3, 12, 3))
    second = ConvertibleFamily.build(Conversion(12, 3, 24, 3))
    assert np.array_equal(first.parities[1], second.parities[0])
    rng = random.Random(5)
    data = [[[rng.randrange(256) for _ in range(8)] for _ in range(6)] for _ in range(4)]
    p1 = merge_plan(first)
    p2 = merge_plan(second)
    words = [d + _matvec(first.parities[0], d) for d in data]
    reads = 0
    merged = []
    for pair in ((0, 1), (2, 3)):
        fetched = {(t, i): np.array(words[pair[t]][i], np.uint8) for t, i in p1.reads}
        reads += len(fetched)
        parity = p1.apply(fetched)
        merged.append(data[pair[0]] + data[pair[1]] + [parity[(0, j)].tolist() for j in range(3)])
    fetched = {(t, i): np.array(merged[t][i], np.uint8) for t, i in p2.reads}
    reads += len(fetched)
    final = p2.apply(fetched)
    flat = [shard for d in data for shard in d]
    expected = _matvec(second.parities[1], flat)
    assert [final[(0, j)].tolist() for j in range(3)] == expected
    assert reads == 2 * 6 + 6  # 3 parities per codeword per step: the bound at each step


def test_field_size_refusal_names_the_largest_parameters():
    with pytest.raises(ParameterError, match=r"k \+ r <= 255"):
        family_spec("rs:126,4", "rs:252,4")
    with pytest.raises(ParameterError, match="rs:251,4"):
        GRSCode.base(252, 4)
    assert family_spec("rs:125,4", "rs:250,4") == "grs:125,4:250,4"


def test_initial_code_does_not_depend_on_the_target():
    a = ConvertibleFamily.build(Conversion(10, 4, 20, 4)).parities[0]
    b = ConvertibleFamily.build(Conversion(10, 4, 30, 3)).parities[0]
    c = ConvertibleFamily.build(Conversion(10, 4, 15, 4)).parities[0]
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_initial_store_is_an_ec_store_repaired_by_ec_then_merged(tmp_path):
    """ec's verify and repair (given the family's code) handle a grs store; the merge then runs."""
    from redundancy.convertible.spec import parse_spec
    from redundancy.convertible.stores.merge import convert_stores
    from redundancy.convertible.stores.scalar import decode_merged, encode_store
    from redundancy.erasure import store as ec_store

    rng = np.random.default_rng(2)
    stores, files = [], []
    for t in range(2):
        files.append(tmp_path / f"f{t}.bin")
        files[-1].write_bytes(rng.integers(0, 256, 5000 + 700 * t, dtype=np.uint8).tobytes())
        stores.append(tmp_path / f"s{t}")
        encode_store(files[-1], stores[-1], "grs:12,4:24,4", stripe_size=128)
    code = parse_spec("grs:12,4:24,4").initial_code()
    for index in (0, 5, 12, 15):  # four shards lost: an MDS [16,12] code still recovers
        (stores[0] / ec_store.shard_relpath(index)).unlink()
    assert ec_store.verify_store(stores[0], code=code).shards[0].state == "missing"
    ec_store.repair_store(stores[0], code=code)
    assert all(s.state == "ok" for s in ec_store.verify_store(stores[0], code=code).shards)
    report = convert_stores(stores, tmp_path / "m", to="rs:24,4")
    assert report.shards_read == 8  # r_F parities of each store: the bound
    outputs = decode_merged(tmp_path / "m", tmp_path / "out")
    assert [p.read_bytes() for p in outputs] == [f.read_bytes() for f in files]
