"""Exact decodability checks of merged LRCs (issue 23, item 4).

The construction's check used to refuse codes with more than 20,000 erasure patterns (so two
lrc:12,2,2 stores could not merge into lrc:24,4,3: 31,465 sets of 4 lost shards); it now ranks
every pattern in batches. References: the per-pattern rank of ``VectorCode`` (another method),
hand-found failing patterns, and the maximally recoverable counts of ``erasure.recoverability``.
"""

from itertools import combinations
from math import comb

import numpy as np

from redundancy.convertible import spec
from redundancy.convertible.algebra.lrc import (
    LRCGlobalMerge,
    full_column_rank,
    recovered_patterns,
    tolerates,
)
from redundancy.erasure.recoverability import lrc_maximum_by_size
from redundancy.erasure.vector import VectorCode
from redundancy.gf256 import rank

WIDE = spec.lrc_merge("lrc:12,2,2", "lrc:24,4,3")


def test_batched_counts_equal_per_pattern_ranks():
    code = LRCGlobalMerge.build(spec.lrc_merge("lrc:6,2,1", "lrc:12,4,2"))
    codes = ((code.initial_generator, code.initial), (code.final_generator, code.final))
    for generator, layout in codes:
        vector = VectorCode(generator, code.alpha)
        for losses in range(min(layout.n - layout.k, 4) + 1):
            expected = sum(vector.decodes(lost) for lost in combinations(range(vector.n), losses))
            assert recovered_patterns(generator, layout.n, code.alpha, losses) == expected


def test_full_column_rank_matches_rank_on_random_tall_matrices():
    rng = np.random.default_rng(7)
    stack = rng.integers(0, 4, (300, 6, 4), dtype=np.uint8)  # small entries: many singular
    expected = [rank(matrix) == 4 for matrix in stack]
    assert full_column_rank(stack).tolist() == expected
    assert 0 < sum(expected) < 300


def test_wide_merge_check_is_exact_over_all_31465_patterns():
    """Seed 5's final code fails on exactly one set of 4 lost shards, which a sample would
    almost surely miss; seed 53 (the construction's choice) decodes every one."""
    assert comb(WIDE.lam * WIDE.k + 4 + WIDE.g_f, 4) == 31_465
    failing = LRCGlobalMerge(WIDE, 5)
    final = failing.final
    assert recovered_patterns(failing.final_generator, final.n, failing.alpha, 4) == 31_464
    assert not tolerates(failing.final_generator, final, failing.alpha, 4)
    vector = VectorCode(failing.final_generator, failing.alpha)
    assert not vector.decodes([7, 9, 11, 28]) and vector.decodes([7, 9, 11, 27])
    assert LRCGlobalMerge(WIDE, 53).verify()


def test_layered_lrc_12_2_2_against_the_maximally_recoverable_count():
    """The piggybacked lrc:12,2,2 decodes every 3 lost shards, and 1567 of the 1568 sets of 4
    that a maximally recoverable LRC(12,2,2) decodes (Azure's figure): one short of MR."""
    code = LRCGlobalMerge(WIDE, 53)
    maximum = lrc_maximum_by_size(12, 2, 2)
    counts = [
        recovered_patterns(code.initial_generator, 16, code.alpha, losses) for losses in range(5)
    ]
    assert maximum == [1, 16, 120, 560, 1568]
    assert counts == [1, 16, 120, 560, 1567]
