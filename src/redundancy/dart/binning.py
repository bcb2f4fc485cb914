"""Feature binning: each column becomes at most ``max_bins`` ordered bins stored as uint8.

Trees split on bin indices, so a split ``bin <= t`` means ``x <= edges[t]`` on raw values.
Missing values (NaN) go to bin ``MISSING_BIN`` (255), apart from every value bin.
"""

from __future__ import annotations

import numpy as np

from redundancy.dart.tree import MISSING_BIN
from redundancy.errors import ParameterError, check_range

_QUANTILE_SAMPLE = 200_000


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
        self.edges = []
        for j in range(X.shape[1]):
            col = sample[:, j]
            keep = ~np.isnan(col) if weight is None else ~np.isnan(col) & (weight > 0)
            values = col[keep]
            uniq = np.unique(values)
            if len(uniq) <= self.max_bins:
                edges = (uniq[:-1] + uniq[1:]) / 2.0
            else:
                qs = np.linspace(0.0, 1.0, self.max_bins + 1)[1:-1]
                w = None if weight is None else weight[keep]
                edges = np.unique(np.quantile(values, qs, weights=w, method="inverted_cdf"))
                edges = edges[edges < uniq[-1]]  # the largest value needs a bin above the edges
            self.edges.append(np.ascontiguousarray(edges, dtype=np.float64))
        return self

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
        out = np.empty((X.shape[1], X.shape[0]), dtype=np.uint8)
        for j, edges in enumerate(self.edges):
            out[j] = np.searchsorted(edges, X[:, j], side="left")
            out[j][np.isnan(X[:, j])] = MISSING_BIN
        return out
