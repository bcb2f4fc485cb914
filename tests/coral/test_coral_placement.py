"""Placement: the DP equals the reference ILP; hand-checkable layouts."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.coral.planner.placement import best_placement, place_dp, place_ilp, stage_throughput


def _table(rates, layers, cuts):
    """tp[c, j] = rate_c / j for j <= cut_c (memory), else 0."""
    tp = np.zeros((len(rates), layers + 1))
    for c, (rate, cut) in enumerate(zip(rates, cuts, strict=True)):
        tp[c, 1 : cut + 1] = rate / np.arange(1, cut + 1)
    return tp


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    counts=st.lists(st.integers(1, 2), min_size=1, max_size=3),
    layers=st.integers(2, 7),
    seed=st.integers(0, 10_000),
)
def test_dp_matches_ilp(counts, layers, seed):
    rng = np.random.default_rng(seed)
    rates = rng.uniform(1, 10, size=len(counts))
    cuts = rng.integers(1, layers + 1, size=len(counts))
    tp = _table(rates, layers, cuts)
    stages = int(rng.integers(1, min(sum(counts), layers) + 1))
    dp, ilp = place_dp(counts, tp, stages), place_ilp(counts, tp, stages)
    assert np.isclose(dp.throughput, ilp.throughput, rtol=1e-6, atol=1e-5)  # HiGHS tolerances
    if dp.throughput > 0:  # the DP's layout really achieves its value and uses every node
        assert sum(dp.stage_layers) == layers
        assert np.sum(dp.stage_counts, axis=0).tolist() == list(counts)
        achieved = min(
            stage_throughput(tp, c, j)
            for c, j in zip(dp.stage_counts, dp.stage_layers, strict=True)
        )
        assert np.isclose(achieved, dp.throughput)


def test_model_that_fits_only_split_across_two_nodes():
    tp = _table([4.0], 6, [3])  # one node holds at most 3 of the 6 layers
    tables = np.stack([tp, tp, tp])  # S = 0 (unused), 1, 2
    assert place_dp([2], tp, 1).throughput == 0
    best = best_placement([2], tables)
    assert best.stages == 2 and best.stage_layers == (3, 3)
    assert np.isclose(best.throughput, 4.0 / 3)


def test_fast_and_slow_gpu_get_proportionate_layers():
    tp = _table([6.0, 2.0], 8, [8, 8])  # the first GPU is 3x faster
    for solve in (place_dp, place_ilp):
        result = solve([1, 1], tp, 2)
        layers = dict(
            zip((c.index(1) for c in result.stage_counts), result.stage_layers, strict=True)
        )
        assert layers == {0: 6, 1: 2}
        assert np.isclose(result.throughput, 1.0)
