"""Constructions: verified MDS families, access-optimal merge/split, piggybacked bandwidth merge."""

from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy import gf256
from redundancy.convertible.algebra import bounds
from redundancy.convertible.algebra.access import ConvertibleFamily, merge_plan, split_plan
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.algebra.family import batched_det, verify_mds
from redundancy.convertible.algebra.piggyback import PiggybackMerge, measure
from redundancy.errors import ParameterError


def _decodes_from_every_k_subset(generator: np.ndarray) -> bool:
    n, k = generator.shape
    return all(gf256.rank(generator[list(rows)]) == k for rows in combinations(range(n), k))


def test_batched_det_matches_rank():
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 256, (200, 3, 3), dtype=np.uint8)
    blocks[:20, 2] = blocks[:20, 0]  # singular
    dets = batched_det(blocks)
    assert all((d != 0) == (gf256.rank(b) == 3) for d, b in zip(dets, blocks, strict=True))


@pytest.mark.parametrize(
    "conv",
    [
        Conversion.merge(3, 2, 2, 2),
        Conversion.merge(4, 3, 2, 2),
        Conversion.merge(2, 3, 3, 3),
        Conversion.merge(5, 2, 2, 1),
        Conversion(8, 3, 4, 2),
    ],
)
def test_converted_code_is_mds_exhaustively(conv):
    fam = ConvertibleFamily.build(conv)
    for code in (fam.initial_code(), fam.final_code()):
        assert _decodes_from_every_k_subset(code.generator)
        assert verify_mds(code)


def test_large_family_verified():
    fam = ConvertibleFamily.build(Conversion.merge(10, 4, 2, 4))
    assert verify_mds(fam.initial_code()) and verify_mds(fam.final_code())
    final = fam.final_code().generator
    rng = np.random.default_rng(0)
    for _ in range(200):  # sampled k-subsets of the (24, 20) code
        rows = rng.choice(final.shape[0], size=final.shape[1], replace=False)
        assert gf256.rank(final[np.sort(rows)]) == 20


@given(
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(2, 3),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
)
def test_merge_equals_direct_encoding_and_meets_bound(k, r_i, lam, r_f, seed):
    conv = Conversion.merge(k, r_i, lam, r_f)
    fam = ConvertibleFamily.build(conv)
    ic, fc = fam.initial_code(), fam.final_code()
    rng = np.random.default_rng(seed)
    data = [rng.integers(0, 256, (k, 16), dtype=np.uint8) for _ in range(lam)]
    words = [ic.encode_all(d) for d in data]
    plan = merge_plan(fam)
    out = plan.apply({s: words[s[0]][s[1]] for s in plan.reads})
    assert np.array_equal(np.vstack(list(out.values())), fc.encode(np.vstack(data)))
    assert len(plan.reads) == bounds.read_access_bound(conv)
    assert len(plan.reads) + len(plan.writes) == bounds.costs(conv).access


@pytest.mark.parametrize(
    "conv", [Conversion(6, 2, 3, 1), Conversion(12, 3, 4, 2), Conversion(8, 2, 4, 2)]
)
def test_split_equals_direct_encoding_and_meets_bound(conv):
    fam = ConvertibleFamily.build(conv)
    ic, fc = fam.initial_code(), fam.final_code()
    data = np.random.default_rng(1).integers(0, 256, (conv.k_i, 32), dtype=np.uint8)
    word = ic.encode_all(data)
    plan = split_plan(fam)
    out = plan.apply({s: word[s[1]] for s in plan.reads})
    for u in range(conv.lambda_f):
        expected = fc.encode(data[u * conv.k_f : (u + 1) * conv.k_f])
        assert np.array_equal(np.vstack([out[(u, j)] for j in range(conv.r_f)]), expected)
    assert len(plan.reads) == bounds.read_access_bound(conv)


def test_split_refuses_more_final_parities():
    with pytest.raises(ParameterError, match="r_F"):
        split_plan(ConvertibleFamily.build(Conversion(6, 1, 3, 2)))


def test_general_regime_family_builds_both_codes():
    fam = ConvertibleFamily.build(Conversion(5, 1, 12, 1))
    assert (fam.initial_code().n, fam.final_code().n) == (6, 13)


@pytest.mark.parametrize(
    "conv",
    [Conversion.merge(4, 1, 2, 2), Conversion.merge(5, 2, 2, 3), Conversion.merge(4, 1, 3, 3)],
)
def test_piggyback_meets_bandwidth_bound_and_is_mds(conv):
    code = PiggybackMerge.build(conv)
    assert code.verify_mds()
    assert code.bandwidth() == bounds.bandwidth_bound(conv)
    m = measure(conv, shard_bytes=code.alpha * 8)
    assert m.correct and m.units == bounds.bandwidth_bound(conv)
    assert m.units < conv.lambda_i * conv.k_i


def test_piggyback_nothing_cheaper_on_smallest_case():
    """(4,3) x2 -> (8,6), alpha 2: no set of fewer raw symbols than the bound converts."""
    code = PiggybackMerge.build(Conversion.merge(3, 1, 2, 2))
    c, a_n = code.conversion, code.alpha
    symbols = [
        (t, node, a) for t in range(c.lambda_i) for node in range(c.k_i + c.r_i) for a in range(a_n)
    ]
    targets = code.targets()
    bound = int(code.bandwidth() * a_n)
    assert bound == 10  # 5 shards of 2 layers, re-encode reads 6
    for subset in combinations(symbols, bound - 1):
        rows = code.read_rows(subset)
        if gf256.rank(np.vstack([rows, targets])) == gf256.rank(rows):
            pytest.fail(f"{subset} converts with fewer symbols than the bound")
    assert Fraction(bound, a_n) == bounds.bandwidth_bound(c)


def test_piggyback_regime_checked():
    with pytest.raises(ParameterError, match="r_F"):
        PiggybackMerge.build(Conversion.merge(4, 2, 2, 2))
