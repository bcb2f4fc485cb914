"""Losses as (base score, gradient, hessian, value) on margins ``F`` of shape (n, n_outputs)."""

from __future__ import annotations

import itertools

import numpy as np
from numba import njit, prange

from redundancy.errors import ParameterError

_EPS = 1e-6


class SquaredError:
    """0.5 (y - F)^2: gradient F - y, hessian 1. ``value`` is the RMSE."""

    n_outputs = 1

    def base_score(self, y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        return np.array([float(np.average(y, weights=sample_weight))])

    def grad_hess(self, y: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return F - y[:, None], np.ones_like(F)

    def value(self, y: np.ndarray, F: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        return float(np.sqrt(np.average((F[:, 0] - y) ** 2, weights=sample_weight)))


@njit(parallel=True, cache=True, nogil=True)
def _logistic_from_exp(y, e, g, h):
    """Log-loss gradient and hessian from ``e = exp(-F)``: p = 1 / (1 + e), g = p - y,
    h = max(p (1 - p), eps)."""
    for i in prange(len(y)):
        p = 1.0 / (1.0 + e[i])
        g[i] = p - y[i]
        h[i] = max(p * (1.0 - p), _EPS)


class Logistic:
    """Binary log-loss on labels {0, 1}; margin is the log-odds. ``value`` is the mean log-loss."""

    n_outputs = 1

    def base_score(self, y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        p = float(np.clip(np.average(y, weights=sample_weight), _EPS, 1 - _EPS))
        return np.array([np.log(p / (1 - p))])

    def grad_hess(self, y: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # numpy's exp (vectorised), the rest in one compiled pass: the same numbers as
        # p = 1 / (1 + exp(-F)); g = p - y; h = max(p (1 - p), eps) in numpy, in a third the time
        e = np.exp(-F[:, 0])
        g = np.empty((len(y), 1))
        h = np.empty((len(y), 1))
        _logistic_from_exp(np.ascontiguousarray(y, dtype=np.float64), e, g[:, 0], h[:, 0])
        return g, h

    def value(self, y: np.ndarray, F: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        f = F[:, 0]
        return float(np.average(np.logaddexp(0.0, f) - y * f, weights=sample_weight))


def softmax(F: np.ndarray) -> np.ndarray:
    """Row-wise softmax of margins."""
    z = np.exp(F - F.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class Softmax:
    """Multiclass cross-entropy on labels 0..K-1, one tree per class per round."""

    def __init__(self, n_classes: int) -> None:
        self.n_outputs = n_classes

    def base_score(self, y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        counts = np.bincount(y.astype(np.int64), sample_weight, minlength=self.n_outputs)
        prior = counts / counts.sum()
        return np.log(np.clip(prior, _EPS, None))

    def grad_hess(self, y: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = softmax(F)
        g = p.copy()
        g[np.arange(len(y)), y.astype(np.int64)] -= 1.0
        return g, np.maximum(p * (1 - p), _EPS)

    def value(self, y: np.ndarray, F: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        p = softmax(F)[np.arange(len(y)), y.astype(np.int64)]
        return float(-np.average(np.log(np.clip(p, 1e-15, None)), weights=sample_weight))


# Ranks come from scores snapped to this grid, ties kept in row order: DART subtracts dropped
# rounds from the running margin, so scores equal in exact arithmetic (documents that differ only
# in dropped trees) carry rounding noise, and ordering them by that noise would make the gradients
# depend on summation order (e.g. a weighted fit against its repeated-rows twin).
_RANK_GRID = 1e-9


@njit(parallel=True, cache=True, nogil=True)
def _lambdarank(y, s, ptr, sigma, g, h):
    for q in prange(len(ptr) - 1):
        a = ptr[q]
        b = ptr[q + 1]
        order = np.argsort(-np.round(s[a:b] / _RANK_GRID), kind="mergesort")
        rank = np.empty(b - a, np.int64)
        for r in range(b - a):
            rank[order[r]] = r
        ideal = np.sort(y[a:b])[::-1]
        max_dcg = 0.0
        for r in range(b - a):
            max_dcg += (2.0 ** ideal[r] - 1.0) / np.log2(r + 2.0)
        if max_dcg <= 0.0:
            continue
        for i in range(a, b):
            for j in range(a, b):
                if y[i] <= y[j]:
                    continue
                gain = 2.0 ** y[i] - 2.0 ** y[j]
                disc = 1.0 / np.log2(rank[i - a] + 2.0) - 1.0 / np.log2(rank[j - a] + 2.0)
                delta = abs(gain * disc) / max_dcg
                rho = 1.0 / (1.0 + np.exp(sigma * (s[i] - s[j])))
                g[i] -= sigma * rho * delta
                g[j] += sigma * rho * delta
                hh = sigma * sigma * rho * (1.0 - rho) * delta
                h[i] += hh
                h[j] += hh


def ndcg(
    y: np.ndarray,
    s: np.ndarray,
    ptr: np.ndarray,
    k: int | None = None,
    group_weight: np.ndarray | None = None,
) -> float:
    """Mean NDCG@k over query groups ``ptr`` (groups with no relevant item count as 1),
    weighted by ``group_weight`` (one per group) if given."""
    scores = []
    for a, b in itertools.pairwise(ptr):
        rel = y[a:b][np.argsort(-s[a:b], kind="stable")][:k]
        ideal = np.sort(y[a:b])[::-1][:k]
        disc = 1.0 / np.log2(np.arange(len(rel)) + 2.0)
        best = float(np.sum((2.0**ideal - 1) * disc))
        scores.append(float(np.sum((2.0**rel - 1) * disc)) / best if best > 0 else 1.0)
    return float(np.average(scores, weights=group_weight))


class LambdaRank:
    """LambdaRank with |delta NDCG| pair weights inside query groups. ``value`` is 1 - NDCG."""

    n_outputs = 1

    def __init__(self, group: np.ndarray, sigma: float = 1.0) -> None:
        self.ptr = group_pointer(group)
        self.sigma = sigma

    def base_score(self, y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        return np.zeros(1)

    def grad_hess(self, y: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = np.zeros(len(y))
        h = np.zeros(len(y))
        _lambdarank(y.astype(np.float64), F[:, 0].copy(), self.ptr, self.sigma, g, h)
        return g[:, None], np.maximum(h, _EPS)[:, None]

    def value(self, y: np.ndarray, F: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        """1 - NDCG, the groups weighted by ``sample_weight`` (per row, the same within a group)."""
        group_weight = None if sample_weight is None else sample_weight[self.ptr[:-1]]
        return 1.0 - ndcg(y, F[:, 0], self.ptr, group_weight=group_weight)


def group_pointer(group: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive query groups from their sizes (must be >= 1 each)."""
    sizes = np.asarray(group)
    if sizes.ndim != 1 or len(sizes) == 0:
        raise ParameterError("group must be a non-empty 1-D array of query-group sizes")
    if not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes < 1):
        raise ParameterError("group sizes must be integers >= 1 (empty groups are not allowed)")
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
