"""Feature binning: each column becomes at most ``max_bins`` ordered bins stored as uint8.

Trees split on bin indices, so a split ``bin <= t`` means ``x <= edges[t]`` on raw values.
Missing values (NaN) go to bin ``MISSING_BIN`` (255), apart from every value bin.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange

from redundancy.dart.histogram import MISSING_BIN
from redundancy.errors import ParameterError, check_range

_QUANTILE_SAMPLE = 200_000
_TRANSFORM_BLOCK = 2048  # rows binned per task (their slice of X stays in L2)
_EDGE_SLOTS = 256  # edges per feature in the search table, padded with +inf (255 are read)


@njit(parallel=True, cache=True, nogil=True)
def _transform(X, edge_table, out):
    """Bin ``X`` (n, F) into ``out`` (F, n) in parallel blocks of rows; NaN to MISSING_BIN.

    ``edge_table[j]`` holds feature j's edges padded with +inf to 255 entries, so the bin (the
    number of edges below the value, ``np.searchsorted(edges, x, "left")``) is a binary search
    of exactly eight halving steps with no data-dependent branch.
    """
    n = X.shape[0]
    n_blocks = (n + _TRANSFORM_BLOCK - 1) // _TRANSFORM_BLOCK
    for blk in prange(n_blocks):
        for i in range(blk * _TRANSFORM_BLOCK, min(n, (blk + 1) * _TRANSFORM_BLOCK)):
            for j in range(X.shape[1]):
                x = X[i, j]
                below = 0
                for half in (128, 64, 32, 16, 8, 4, 2, 1):
                    below += half if edge_table[j, below + half - 1] < x else 0
                out[j, i] = MISSING_BIN if x != x else below


class BinMapper:
    """Per-feature bin edges: midpoints of distinct values when few, else quantiles."""

    def __init__(self, max_bins: int = 255) -> None:
        self.max_bins = check_range("max_bins", max_bins, 2, 255)
        self.edges: list[np.ndarray] = []

    def fit(
        self, X: np.ndarray, seed: int = 0, sample_weight: np.ndarray | None = None
    ) -> BinMapper:
        """Choose edges from the training matrix ``X`` (n_samples, n_features).

        NaN is ignored, and so are rows of zero ``sample_weight``; quantiles are weighted (the
        inverted-CDF definition, so integer weights give the edges of duplicated rows).
        """
        rng = np.random.default_rng(seed)
        sample, weight = X, sample_weight
        if X.shape[0] > _QUANTILE_SAMPLE:
            pick = np.sort(rng.choice(X.shape[0], _QUANTILE_SAMPLE, replace=False))
            sample = X[pick]
            weight = None if sample_weight is None else sample_weight[pick]
        self.edges = _map_columns(lambda j: self._column_edges(sample[:, j], weight), X.shape[1])
        return self

    def _column_edges(self, col: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
        """Edges of one column: the column is sorted once, for its distinct values and quantiles
        (both as ``np.unique`` and ``np.quantile`` give them: only the order of work differs)."""
        keep = ~np.isnan(col) if weight is None else ~np.isnan(col) & (weight > 0)
        values = col[keep]
        order = None
        if weight is None:
            values = np.sort(values)
        else:  # weighted quantiles need the weights in the same order
            order = np.argsort(values, kind="stable")
            values = values[order]
        distinct = np.empty(len(values), dtype=bool)
        distinct[:1] = True
        np.not_equal(values[1:], values[:-1], out=distinct[1:])
        uniq = values[distinct]
        if len(uniq) <= self.max_bins:
            edges = (uniq[:-1] + uniq[1:]) / 2.0
        else:
            qs = np.linspace(0.0, 1.0, self.max_bins + 1)[1:-1]
            if weight is None:
                picked = np.quantile(values, qs, method="inverted_cdf")
            else:
                picked = _weighted_inverted_cdf(values, weight[keep][order], qs)
            edges = np.unique(picked)
            edges = edges[edges < uniq[-1]]  # the largest value needs a bin above the edges
        return np.ascontiguousarray(edges, dtype=np.float64)

    @property
    def n_bins(self) -> np.ndarray:
        """Number of bins of each feature (int64 array)."""
        return np.array([len(e) + 1 for e in self.edges], dtype=np.int64)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Bin ``X`` into a column-major (n_features, n_samples) uint8 matrix."""
        if X.shape[1] != len(self.edges):
            raise ParameterError(
                f"X has {X.shape[1]} features, but the bins were fitted on {len(self.edges)}"
            )
        table = np.full((len(self.edges), _EDGE_SLOTS), np.inf)
        for j, edges in enumerate(self.edges):
            table[j, : len(edges)] = edges
        out = np.empty((X.shape[1], X.shape[0]), dtype=np.uint8)
        _transform(np.ascontiguousarray(X, dtype=np.float64), table, out)
        return out


def _weighted_inverted_cdf(values: np.ndarray, weight: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """``np.quantile(..., method="inverted_cdf")`` of the rows each repeated ``weight`` times.

    ``values`` ascending, ``weight`` > 0 in the same order. Numpy's unweighted rule on n rows
    takes position ``n q - 1`` if that is a whole number, else the next one up; here n is the
    total weight and the position is found in the cumulative weights, with the same floating-point
    expression, so integer weights give exactly the edges of duplicated rows. (Numpy's own
    weighted rule compares cumulative fractions with q instead and can land one row off where
    ``n q`` is a whole number.)
    """
    cumulative = np.cumsum(weight)
    index = cumulative[-1] * qs - 1
    below = np.floor(index)
    position = np.maximum(np.where(index - below == 0, below, below + 1), 0)
    rows = np.minimum(np.searchsorted(cumulative, position, side="right"), len(values) - 1)
    return values[rows]


def _map_columns(column_edges, n_columns: int) -> list[np.ndarray]:
    """``column_edges(j)`` for every column, on numba's thread count (numpy's sorts release the
    GIL, so columns sort side by side)."""
    threads = min(numba.get_num_threads(), n_columns)
    if threads <= 1:
        return [column_edges(j) for j in range(n_columns)]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(column_edges, range(n_columns)))
