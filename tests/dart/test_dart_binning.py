"""Binning against plain numpy: edges as np.unique / np.quantile choose them, bins as
np.searchsorted gives them (the compiled, threaded binning must agree value for value)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from redundancy.dart.binning import BinMapper
from redundancy.dart.histogram import MISSING_BIN


def numpy_edges(col: np.ndarray, max_bins: int, weight: np.ndarray | None) -> np.ndarray:
    """Reference edges: midpoints of distinct values when few, else quantiles; integer weights
    as that many copies of each row (the semantics sample weights promise)."""
    values = col[~np.isnan(col)] if weight is None else np.repeat(col, weight.astype(int))
    values = values[~np.isnan(values)]
    uniq = np.unique(values)
    if len(uniq) <= max_bins:
        return (uniq[:-1] + uniq[1:]) / 2.0
    qs = np.linspace(0.0, 1.0, max_bins + 1)[1:-1]
    edges = np.unique(np.quantile(values, qs, method="inverted_cdf"))
    return edges[edges < uniq[-1]]


def numpy_bins(X: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    out = np.empty((X.shape[1], X.shape[0]), dtype=np.uint8)
    for j, e in enumerate(edges):
        out[j] = np.searchsorted(e, X[:, j], side="left")
        out[j][np.isnan(X[:, j])] = MISSING_BIN
    return out


def mixed_matrix(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.normal(size=n),  # many distinct values: quantile edges
            np.round(rng.normal(size=n) * 2),  # few distinct values: midpoints
            rng.exponential(size=n) ** 3,  # heavy tail
            np.full(n, 7.0),  # constant: no edge
            rng.integers(0, 300, n).astype(float),  # just above max_bins distinct values
        ]
    )
    X[rng.random(X.shape) < 0.1] = np.nan
    X[0, 0], X[1, 0], X[2, 2] = np.inf, -np.inf, -0.0
    return X


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("max_bins", [255, 16, 2])
def test_edges_and_bins_equal_numpy(threads, weighted, max_bins):
    X = mixed_matrix(seed=max_bins, n=5000)
    weight = np.random.default_rng(1).integers(0, 4, len(X)).astype(float) if weighted else None
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        bm = BinMapper(max_bins).fit(X, sample_weight=weight)
        got = bm.transform(X)
    finally:
        numba.set_num_threads(previous)
    want_edges = [numpy_edges(X[:, j], max_bins, weight) for j in range(X.shape[1])]
    for j, (have, want) in enumerate(zip(bm.edges, want_edges, strict=True)):
        np.testing.assert_array_equal(have, want, err_msg=f"feature {j}")
    np.testing.assert_array_equal(got, numpy_bins(X, want_edges))


finite_or_special = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300]),
)


@settings(max_examples=60, deadline=None)
@given(
    train=arrays(np.float64, st.tuples(st.integers(1, 60), st.just(2)), elements=finite_or_special),
    test=arrays(np.float64, st.tuples(st.integers(0, 40), st.just(2)), elements=finite_or_special),
    max_bins=st.integers(2, 255),
)
def test_transform_of_any_values_equals_searchsorted(train, test, max_bins):
    bm = BinMapper(max_bins)
    with np.errstate(all="ignore"):  # midpoints of huge values overflow as numpy's would
        bm.fit(train)
    np.testing.assert_array_equal(bm.transform(test), numpy_bins(test, bm.edges))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(260, 3000),
    seed=st.integers(0, 2**16),
    decimals=st.sampled_from([1, 2, 6]),
    max_bins=st.sampled_from([16, 63, 255]),
)
def test_integer_weights_give_the_edges_of_repeated_rows(n, seed, decimals, max_bins):
    """Weighted quantile edges equal numpy's unweighted ones on the rows repeated (numpy's own
    weighted inverted-CDF lands one row off where the total weight times q is whole)."""
    rng = np.random.default_rng(seed)
    col = np.round(rng.normal(size=n) * 3, decimals)
    col[rng.random(n) < 0.05] = np.nan
    weight = rng.integers(0, 5, n).astype(float)
    weight[0] = 1.0
    weighted = BinMapper(max_bins).fit(col[:, None], sample_weight=weight)
    repeated = np.repeat(col, weight.astype(int))[:, None]
    np.testing.assert_array_equal(weighted.edges[0], BinMapper(max_bins).fit(repeated).edges[0])


def test_weighted_edge_where_total_weight_times_q_is_whole():
    """1734 rows of weight 1 and q = 35/255: n q = 238 up to rounding; numpy's weighted rule and
    its unweighted rule disagree by one row there. The edge must be the unweighted (= repeated
    rows) one."""
    col = np.arange(1734, dtype=float)[::-1].copy()
    weight = np.ones(1734)
    got = BinMapper(255).fit(col[:, None], sample_weight=weight).edges[0]
    want = BinMapper(255).fit(col[:, None]).edges[0]
    np.testing.assert_array_equal(got, want)
