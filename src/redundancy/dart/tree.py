"""Histogram regression-tree learner compiled with numba.

Leaf-wise (best-first) growth on binned features: gradient/hessian histograms built in parallel
over features, the larger child's histogram obtained by subtraction from its parent, L2-regularised
Newton leaf values ``-G / (H + lambda)``. Trees are flat arrays; ``left == -1`` marks a leaf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange


@dataclass
class Tree:
    """One fitted tree as flat node arrays: split on bin ``threshold``, leaf output ``value``."""

    feature: np.ndarray  # int32, -1 at leaves
    threshold: np.ndarray  # int32 bin index: go left when bin <= threshold
    left: np.ndarray  # int32 child index, -1 at leaves
    right: np.ndarray  # int32
    value: np.ndarray  # float64 leaf value (0 at internal nodes)
    gain: np.ndarray  # float64 split gain (0 at leaves)

    @property
    def n_leaves(self) -> int:
        """Number of leaves."""
        return int(np.sum(self.left == -1))

    def apply(self, xb: np.ndarray) -> np.ndarray:
        """Node index (uint16) reached by each column of the binned matrix ``xb``."""
        out = np.empty(xb.shape[1], dtype=np.uint16)
        _apply(xb, self.feature, self.threshold, self.left, self.right, out)
        return out


# Nodes with fewer rows build their histogram on one thread: a parallel region per small node
# costs more in synchronisation than it saves, badly so when the cores are shared.
PARALLEL_MIN_ROWS = 65_536


@njit(cache=True, nogil=True)
def _feature_hist(col, rows, start, end, g, h, nb, hf):
    for b in range(nb):
        hf[b, 0] = 0.0
        hf[b, 1] = 0.0
        hf[b, 2] = 0.0
    for i in range(start, end):
        r = rows[i]
        b = col[r]
        hf[b, 0] += g[r]
        hf[b, 1] += h[r]
        hf[b, 2] += 1.0


@njit(parallel=True, cache=True, nogil=True)
def _build_hist_parallel(xb, rows, start, end, g, h, n_bins, hist):
    for f in prange(xb.shape[0]):
        _feature_hist(xb[f], rows, start, end, g, h, n_bins[f], hist[f])


@njit(cache=True, nogil=True)
def _build_hist(xb, rows, start, end, g, h, n_bins, hist):
    if end - start >= PARALLEL_MIN_ROWS:
        _build_hist_parallel(xb, rows, start, end, g, h, n_bins, hist)
    else:
        for f in range(xb.shape[0]):
            _feature_hist(xb[f], rows, start, end, g, h, n_bins[f], hist[f])


@njit(cache=True, nogil=True)
def _best_split(hist, n_bins, sg, sh, cnt, lam, min_leaf, min_hess, out):
    """Best (gain, feature, bin, G_left, H_left, n_left) into ``out``; gain -inf if none."""
    parent = sg * sg / (sh + lam)
    out[0] = -np.inf
    for f in range(hist.shape[0]):
        gl = 0.0
        hl = 0.0
        cl = 0.0
        for b in range(n_bins[f] - 1):
            gl += hist[f, b, 0]
            hl += hist[f, b, 1]
            cl += hist[f, b, 2]
            if cl < min_leaf or hl < min_hess:
                continue
            if cnt - cl < min_leaf or sh - hl < min_hess:
                break
            gr = sg - gl
            gain = 0.5 * (gl * gl / (hl + lam) + gr * gr / (sh - hl + lam) - parent)
            if gain > out[0]:
                out[0] = gain
                out[1] = f
                out[2] = b
                out[3] = gl
                out[4] = hl
                out[5] = cl


@njit(cache=True, nogil=True)
def _grow(
    xb,
    g,
    h,
    n_bins,
    max_leaves,
    max_depth,
    min_leaf,
    min_hess,
    lam,
    min_gain,
    hist_pool,
    node_of_row,
):
    n = xb.shape[1]
    max_nodes = 2 * max_leaves - 1
    feature = np.full(max_nodes, -1, np.int32)
    threshold = np.zeros(max_nodes, np.int32)
    left = np.full(max_nodes, -1, np.int32)
    right = np.full(max_nodes, -1, np.int32)
    value = np.zeros(max_nodes)
    gain = np.zeros(max_nodes)
    start = np.zeros(max_nodes, np.int64)
    end = np.zeros(max_nodes, np.int64)
    depth = np.zeros(max_nodes, np.int64)
    slot = np.zeros(max_nodes, np.int64)
    sums = np.zeros((max_nodes, 3))
    cand = np.full((max_nodes, 6), -np.inf)
    rows = np.arange(n)
    sums[0, 0] = g.sum()
    sums[0, 1] = h.sum()
    sums[0, 2] = n
    end[0] = n
    splittable = max_leaves > 1 and n >= 2 * min_leaf
    if splittable:
        _build_hist(xb, rows, 0, n, g, h, n_bins, hist_pool[0])
        _best_split(
            hist_pool[0], n_bins, sums[0, 0], sums[0, 1], n, lam, min_leaf, min_hess, cand[0]
        )
    n_nodes = 1
    n_leaves = 1
    next_slot = 1
    while n_leaves < max_leaves:
        best = -1
        best_gain = min_gain
        for nd in range(n_nodes):
            if left[nd] == -1 and cand[nd, 0] > best_gain:
                best = nd
                best_gain = cand[nd, 0]
        if best == -1:
            break
        f = np.int64(cand[best, 1])
        b = np.int64(cand[best, 2])
        s = start[best]
        e = end[best]
        i = s
        j = e - 1
        col = xb[f]
        while i <= j:
            if col[rows[i]] <= b:
                i += 1
            else:
                tmp = rows[i]
                rows[i] = rows[j]
                rows[j] = tmp
                j -= 1
        lc = n_nodes
        rc = n_nodes + 1
        n_nodes += 2
        n_leaves += 1
        feature[best] = f
        threshold[best] = b
        left[best] = lc
        right[best] = rc
        gain[best] = cand[best, 0]
        start[lc] = s
        end[lc] = i
        start[rc] = i
        end[rc] = e
        depth[lc] = depth[best] + 1
        depth[rc] = depth[best] + 1
        for k in range(3):
            sums[lc, k] = cand[best, 3 + k]
            sums[rc, k] = sums[best, k] - cand[best, 3 + k]
        can_l = (max_depth <= 0 or depth[lc] < max_depth) and sums[lc, 2] >= 2 * min_leaf
        can_r = (max_depth <= 0 or depth[rc] < max_depth) and sums[rc, 2] >= 2 * min_leaf
        if not (can_l or can_r) or n_leaves >= max_leaves:
            continue
        small, large = (lc, rc) if i - s <= e - i else (rc, lc)
        slot[large] = slot[best]
        slot[small] = next_slot
        next_slot += 1
        hs = hist_pool[slot[small]]
        hl = hist_pool[slot[large]]
        _build_hist(xb, rows, start[small], end[small], g, h, n_bins, hs)
        for ff in range(xb.shape[0]):
            for bb in range(n_bins[ff]):
                for k in range(3):
                    hl[ff, bb, k] -= hs[ff, bb, k]
        for c, can in ((lc, can_l), (rc, can_r)):
            if can:
                _best_split(
                    hist_pool[slot[c]],
                    n_bins,
                    sums[c, 0],
                    sums[c, 1],
                    sums[c, 2],
                    lam,
                    min_leaf,
                    min_hess,
                    cand[c],
                )
    for nd in range(n_nodes):
        if left[nd] == -1:
            value[nd] = -sums[nd, 0] / (sums[nd, 1] + lam)
            for i in range(start[nd], end[nd]):
                node_of_row[rows[i]] = nd
    return (
        feature[:n_nodes].copy(),
        threshold[:n_nodes].copy(),
        left[:n_nodes].copy(),
        right[:n_nodes].copy(),
        value[:n_nodes].copy(),
        gain[:n_nodes].copy(),
    )


@njit(parallel=True, cache=True, nogil=True)
def _apply(xb, feature, threshold, left, right, out):
    for i in prange(xb.shape[1]):
        nd = 0
        while left[nd] != -1:
            nd = left[nd] if xb[feature[nd], i] <= threshold[nd] else right[nd]
        out[i] = nd


@njit(parallel=True, cache=True, nogil=True)
def _predict_flat(xb, offsets, feature, threshold, left, right, value, weight, klass, out):

    for i in prange(xb.shape[1]):
        for t in range(len(offsets) - 1):
            o = offsets[t]
            nd = 0
            while left[o + nd] != -1:
                nd = left[o + nd] if xb[feature[o + nd], i] <= threshold[o + nd] else right[o + nd]
            out[i, klass[t]] += weight[t] * value[o + nd]


@dataclass(frozen=True)
class TreeParams:
    """Tree-growth limits shared by every tree of an ensemble."""

    max_leaves: int = 31
    max_depth: int = 0  # 0 = unlimited
    min_samples_leaf: int = 20
    min_child_weight: float = 1e-3
    reg_lambda: float = 1.0
    min_split_gain: float = 0.0


class TreeLearner:
    """Grows trees on one binned training matrix, reusing its histogram buffers."""

    def __init__(self, xb: np.ndarray, n_bins: np.ndarray, params: TreeParams) -> None:
        self.xb = np.ascontiguousarray(xb)
        self.n_bins = np.ascontiguousarray(n_bins, dtype=np.int64)
        self.params = params
        max_bins = int(self.n_bins.max()) if len(self.n_bins) else 1
        self._hist = np.zeros((params.max_leaves, xb.shape[0], max_bins, 3))

    def fit(self, g: np.ndarray, h: np.ndarray) -> tuple[Tree, np.ndarray]:
        """Grow one tree on gradients ``g`` and hessians ``h``; return it and each row's node."""
        p = self.params
        node_of_row = np.zeros(self.xb.shape[1], dtype=np.uint16)
        arrays = _grow(
            self.xb,
            np.ascontiguousarray(g, dtype=np.float64),
            np.ascontiguousarray(h, dtype=np.float64),
            self.n_bins,
            p.max_leaves,
            p.max_depth,
            p.min_samples_leaf,
            p.min_child_weight,
            p.reg_lambda,
            p.min_split_gain,
            self._hist,
            node_of_row,
        )
        return Tree(*arrays), node_of_row


def predict_trees(
    xb: np.ndarray, trees: list[Tree], weights: np.ndarray, klass: np.ndarray, n_outputs: int
) -> np.ndarray:
    """Weighted sum of tree outputs, (n_samples, n_outputs): tree t adds to column ``klass[t]``."""
    out = np.zeros((xb.shape[1], n_outputs))
    if not trees:
        return out
    offsets = np.zeros(len(trees) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t.left) for t in trees])
    cat = [np.concatenate([getattr(t, a) for t in trees]) for a in ("feature", "threshold")]
    left = np.concatenate([t.left for t in trees])
    right = np.concatenate([t.right for t in trees])
    value = np.concatenate([t.value for t in trees])
    _predict_flat(
        xb,
        offsets,
        cat[0],
        cat[1],
        left,
        right,
        value,
        np.ascontiguousarray(weights, dtype=np.float64),
        klass.astype(np.int64),
        out,
    )
    return out
