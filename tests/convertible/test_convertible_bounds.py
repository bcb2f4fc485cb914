"""Cost model: the REFERENCES examples, the regimes, and an exhaustive check of the access bound."""

from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy import gf256
from redundancy.convertible.algebra import bounds
from redundancy.convertible.algebra.access import ConvertibleFamily, merge_plan, split_plan
from redundancy.convertible.algebra.bounds import Conversion, LRCMerge
from redundancy.convertible.spec import parse_lrc_merge
from redundancy.errors import ParameterError


def test_merge_access_example():
    c = bounds.costs(Conversion.merge(10, 4, 2, 4))
    assert (c.access, c.reencode_access) == (12, 24)
    assert (c.read_access, c.write_access) == (8, 4)
    assert c.bandwidth == 8


def test_general_regime_example():
    conv = Conversion(5, 1, 12, 1)
    assert conv.regime == "general"
    assert (conv.lambda_i, conv.lambda_f) == (12, 5)
    assert bounds.read_access_bound(conv) == 18
    assert bounds.costs(conv).reencode_read == 60


def test_lrc_global_merge_example():
    m = parse_lrc_merge("6,1,3,1", "12,2,3,1")
    assert bounds.lrc_bandwidth_bound(m) == Fraction(22, 3)
    assert bounds.format_units(bounds.lrc_bandwidth_bound(m)) == "7 1/3"
    assert bounds.lrc_mds_only_bandwidth(m) == 8
    assert bounds.lrc_reencode_bandwidth(m) == 12


def test_bandwidth_regimes():
    assert bounds.bandwidth_bound(Conversion.merge(6, 3, 2, 2)) == 4  # r_F <= r_I
    assert bounds.bandwidth_bound(Conversion.merge(6, 1, 2, 2)) == 8  # piggyback regime
    assert bounds.bandwidth_bound(Conversion.merge(2, 1, 2, 3)) == 4  # r_F > k_I: all data


def test_split_regime_bound_matches_general_formula():
    conv = Conversion(12, 3, 4, 2)
    assert conv.regime == "split"
    assert bounds.read_access_bound(conv) == 2 * 4 + 2


@given(st.integers(1, 12), st.integers(0, 5), st.integers(2, 4), st.integers(0, 5))
def test_bounds_never_exceed_reencode(k, r_i, lam, r_f):
    c = bounds.costs(Conversion.merge(k, r_i, lam, r_f))
    assert c.read_access <= c.reencode_read
    assert c.bandwidth <= c.read_access
    assert c.write_access == r_f


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Conversion(4, 2, 4, 2),
        lambda: Conversion.merge(4, 2, 1, 2),
        lambda: Conversion(0, 2, 4, 2),
        lambda: LRCMerge(7, 1, 2, 3, 1, 2),
        lambda: parse_lrc_merge("6,1,3,1", "12,2,2,1"),
        lambda: bounds.bandwidth_bound(Conversion(12, 3, 4, 2)),
    ],
)
def test_bad_parameters_raise(bad):
    with pytest.raises(ParameterError):
        bad()


def _spans(basis: np.ndarray, targets: np.ndarray) -> bool:
    return gf256.rank(np.vstack([basis, targets])) == gf256.rank(basis) if len(basis) else False


@pytest.mark.parametrize(
    "conv", [Conversion.merge(3, 2, 2, 2), Conversion.merge(2, 2, 3, 1), Conversion(6, 2, 3, 1)]
)
def test_no_read_set_smaller_than_the_bound_converts(conv):
    """Exhaustive: every set of fewer shards than the bound misses a final parity."""
    fam = ConvertibleFamily.build(conv)
    ic, fc = fam.initial_code(), fam.final_code()
    c = conv
    shards = [(t, i) for t in range(c.lambda_i) for i in range(ic.n)]
    width = c.lambda_i * c.k_i

    def row(t: int, i: int) -> np.ndarray:
        out = np.zeros(width, dtype=np.uint8)
        out[t * c.k_i : (t + 1) * c.k_i] = ic.generator[i]
        return out

    targets = np.vstack(
        [
            np.concatenate(
                [np.zeros(u * c.k_f, np.uint8), p, np.zeros(width - (u + 1) * c.k_f, np.uint8)]
            )
            for u in range(c.lambda_f)
            for p in fc.parity_matrix
        ]
    )
    bound = bounds.read_access_bound(conv)
    for size in range(1, bound):
        for subset in combinations(shards, size):
            assert not _spans(np.vstack([row(*s) for s in subset]), targets)
    plan = merge_plan(fam) if c.regime == "merge" else split_plan(fam)
    assert len(plan.reads) == bound
    assert _spans(np.vstack([row(*s) for s in plan.reads]), targets)
