"""Histogram regression-tree learner compiled with numba.

Leaf-wise (best-first, LightGBM's default) or depth-wise (level by level, XGBoost's default)
growth on binned features. Each node's rows are kept in ascending order by a stable, branch-free
partition of the row indices alone; before a node's histogram is built, its rows' gradients are
gathered in that order ("ordered gradients"). Histograms and split scans live in
``redundancy.dart.histogram``: each split runs one parallel region over features there, and trees
do not depend on the thread count; large nodes are also partitioned by every thread. Leaves hold
the L2-regularised Newton step ``-G / (H + lambda)``. Prediction: ``redundancy.dart.predict``.

Missing values live in bin ``MISSING_BIN`` (255): every split learns a default direction for them
by trying both (XGBoost and LightGBM semantics); where a node saw no missing value, they follow the
child that holds more training weight (scikit-learn's rule). Trees are flat arrays; ``left == -1``
marks a leaf; children always come after their parent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, njit, prange

from redundancy.dart.histogram import (
    HIST_BINS,
    HIST_CHANNELS,
    SPLIT_RECORD,
    beats,
    goes_left,
    split_candidates,
)
from redundancy.errors import ParameterError

# With more than one thread, a split whose smaller child has at least this many rows runs its
# histogram, subtraction and scans in parallel over features: a region costs a few microseconds
# and the scans alone cost tens, whatever the node's size (docs/dart.md, Speed). Each region
# waits for every thread, so on a core shared with another job that wait becomes a scheduler time
# slice: fit with fewer threads (``n_jobs``) there.
PARALLEL_MIN_ROWS = 256
PARALLEL_PARTITION_ROWS = 16_384  # nodes this large are partitioned by every thread
# Row numbers as the partition moves them and the histograms read them: 4 bytes each halves the
# partition's and the gathers' memory traffic against int64.
ROW_INDEX = np.uint32


@dataclass
class Tree:
    """One fitted tree as flat node arrays: split on bin ``threshold``, leaf output ``value``."""

    feature: np.ndarray  # int32, -1 at leaves
    threshold: np.ndarray  # int32 bin index: go left when bin <= threshold
    left: np.ndarray  # int32 child index, -1 at leaves
    right: np.ndarray  # int32
    value: np.ndarray  # float64 leaf value (0 at internal nodes)
    gain: np.ndarray  # float64 split gain (0 at leaves)
    missing_left: np.ndarray | None = None  # uint8: 1 where missing values go left

    def __post_init__(self) -> None:
        if self.missing_left is None:
            self.missing_left = np.zeros(len(self.left), dtype=np.uint8)

    @property
    def n_leaves(self) -> int:
        """Number of leaves."""
        return int(np.sum(self.left == -1))

    def apply(self, xb: np.ndarray) -> np.ndarray:
        """Node index (uint16) reached by each column of the binned matrix ``xb``."""
        out = np.empty(xb.shape[1], dtype=np.uint16)
        _apply(xb, self.feature, self.threshold, self.left, self.right, self.missing_left, out)
        return out


@njit(cache=True, nogil=True)
def _split_rows(col, threshold, missing_left, part, lefts, rights):
    """The rows of ``part`` going left into ``lefts``, the others into ``rights``, both in order
    from index 0; returns how many went left.

    Branch-free: every row is written to both sides and only the side it belongs to advances (a
    row's direction is a coin flip to the branch predictor). ``lefts`` may be ``part`` itself: a
    row is never written past the position it was read from.
    """
    nl = 0
    nr = 0
    for i in range(len(part)):
        r = part[i]
        go_left = np.int64(goes_left(col[np.uint64(r)], threshold, missing_left))
        lefts[nl] = r
        rights[nr] = r
        nl += go_left
        nr += 1 - go_left
    return nl


@njit(cache=True, nogil=True)
def _partition(col, threshold, missing_left, rows, start, end, rows_tmp):
    """Stable in-place partition of rows[start:end] (left rows first); returns the split point."""
    node_rows = rows[start:end]
    nl = _split_rows(col, threshold, missing_left, node_rows, node_rows, rows_tmp)
    node_rows[nl:] = rows_tmp[: len(node_rows) - nl]
    return start + nl


@njit(parallel=True, cache=True, nogil=True)
def _partition_parallel(col, threshold, missing_left, rows, start, end, left_tmp, right_tmp,
                        n_parts):  # fmt: skip
    """``_partition`` of a large node by ``n_parts`` threads: each splits a contiguous run of
    rows into the two buffers, then each copies its two runs to their places (still stable)."""
    n_left = np.zeros(n_parts, np.int64)
    bounds = np.empty(n_parts + 1, np.int64)
    for p in range(n_parts + 1):
        bounds[p] = start + p * (end - start) // n_parts
    for p in prange(n_parts):
        a, z = bounds[p], bounds[p + 1]
        n_left[p] = _split_rows(col, threshold, missing_left, rows[a:z], left_tmp[a:z],
                                right_tmp[a:z])  # fmt: skip
    total_left = n_left.sum()
    for p in prange(n_parts):
        a = bounds[p]
        left_at = start + n_left[:p].sum()
        right_at = start + total_left + (a - start) - n_left[:p].sum()
        n_right = bounds[p + 1] - a - n_left[p]
        rows[left_at : left_at + n_left[p]] = left_tmp[a : a + n_left[p]]
        rows[right_at : right_at + n_right] = right_tmp[a : a + n_right]
    return start + total_left


@njit(cache=True, nogil=True)
def _gather(ghw_by_row, rows, start, end, ordered):
    """The node's (g, h, w) in its row order ("ordered gradients": histograms read them
    sequentially)."""
    node_rows = rows[start:end]
    node_ghw = ordered[start:end]
    if ordered.shape[1] == 1:  # g alone
        for i in range(len(node_rows)):
            node_ghw[i, 0] = ghw_by_row[np.uint64(node_rows[i]), 0]
        return
    if ordered.shape[1] == 2:  # (g, h)
        for i in range(len(node_rows)):
            r = np.uint64(node_rows[i])
            node_ghw[i, 0] = ghw_by_row[r, 0]
            node_ghw[i, 1] = ghw_by_row[r, 1]
        return
    for i in range(len(node_rows)):
        r = np.uint64(node_rows[i])
        node_ghw[i, 0] = ghw_by_row[r, 0]
        node_ghw[i, 1] = ghw_by_row[r, 1]
        node_ghw[i, 2] = ghw_by_row[r, 2]


@njit(parallel=True, cache=True, nogil=True)
def _gather_parallel(ghw_by_row, rows, start, end, ordered, n_parts):
    for p in prange(n_parts):
        a = start + p * (end - start) // n_parts
        z = start + (p + 1) * (end - start) // n_parts
        _gather(ghw_by_row, rows, a, z, ordered)


@njit(cache=True, nogil=True)
def _assign_rows(rows, a, z, nd, node_of_row):
    for r in rows[a:z]:
        node_of_row[np.uint64(r)] = nd


@njit(parallel=True, cache=True, nogil=True)
def _assign_leaves_parallel(rows, leaf_start, leaf_end, leaf_node, node_of_row, n_parts):
    """``node_of_row[rows[i]]`` = the leaf whose rows hold position ``i``; leaves tile the rows
    in ascending ``leaf_start`` order, and each thread takes a contiguous run of positions."""
    n = leaf_end[-1]
    for p in prange(n_parts):
        a = p * n // n_parts
        z = (p + 1) * n // n_parts
        for k in range(len(leaf_start)):
            lo = max(a, leaf_start[k])
            hi = min(z, leaf_end[k])
            if lo < hi:
                _assign_rows(rows, lo, hi, leaf_node[k], node_of_row)


@njit(cache=True, nogil=True)
def _grow(
    xb,
    rows,
    ghw_by_row,
    features,
    n_bins,
    max_leaves,
    max_depth,
    depthwise,
    min_leaf,
    min_hess,
    lam,
    min_gain,
    hist_pool,
    node_of_row,
    rows_tmp,
    left_tmp,
    ghw,
    n_threads,
    parallel_min_rows,
    parallel_partition_rows,
    all_rows,
):
    n = len(rows)
    max_nodes = 2 * max_leaves - 1
    feature = np.full(max_nodes, -1, np.int32)
    threshold = np.zeros(max_nodes, np.int32)
    left = np.full(max_nodes, -1, np.int32)
    right = np.full(max_nodes, -1, np.int32)
    missing_left = np.zeros(max_nodes, np.uint8)
    value = np.zeros(max_nodes)
    gain = np.zeros(max_nodes)
    start = np.zeros(max_nodes, np.int64)
    end = np.zeros(max_nodes, np.int64)
    depth = np.zeros(max_nodes, np.int64)
    slot = np.zeros(max_nodes, np.int64)
    sums = np.zeros((max_nodes, 3))
    cand = np.full((max_nodes, 7), -np.inf)
    if all_rows:  # rows is 0..n-1: the rows' (g, h, w) are already in row order
        root_ghw = ghw_by_row
    else:
        _gather(ghw_by_row, rows, 0, n, ghw)
        root_ghw = ghw
    channels = root_ghw.shape[1]
    for i in range(n):
        sums[0, 0] += root_ghw[i, 0]
        sums[0, 1] += root_ghw[i, 1] if channels > 1 else 1.0
        sums[0, 2] += root_ghw[i, 2] if channels > 2 else 1.0
    end[0] = n
    per_feature = np.empty((2, len(features), SPLIT_RECORD))
    if max_leaves > 1 and sums[0, 2] >= 2 * min_leaf and max_depth != 0:
        split_candidates(xb, rows, root_ghw, 0, n, features, n_bins, hist_pool[0], hist_pool[0],
                          sums, 0, -1, True, False, lam, min_leaf, min_hess, per_feature, cand,
                          channels, n_threads, parallel_min_rows)  # fmt: skip
    n_nodes = 1
    n_leaves = 1
    next_slot = 1
    while n_leaves < max_leaves:
        best = -1
        best_gain = min_gain
        for nd in range(n_nodes):
            if left[nd] != -1 or cand[nd, 0] <= min_gain:
                continue
            if best == -1:
                better = True
            elif depthwise:  # shallowest first, then the order the nodes were made in
                better = depth[nd] < depth[best]
            else:
                better = beats(cand[nd, 0], best_gain)
            if better:
                best = nd
                best_gain = cand[nd, 0]
        if best == -1:
            break
        f = np.int64(cand[best, 1])
        b = np.int64(cand[best, 2])
        ml = np.uint8(cand[best, 6])
        s = start[best]
        e = end[best]
        if n_threads > 1 and e - s >= parallel_partition_rows:
            i = _partition_parallel(xb[f], b, ml, rows, s, e, left_tmp, rows_tmp, n_threads)
        else:
            i = _partition(xb[f], b, ml, rows, s, e, rows_tmp)
        lc = n_nodes
        rc = n_nodes + 1
        n_nodes += 2
        n_leaves += 1
        feature[best] = f
        threshold[best] = b
        missing_left[best] = ml
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
        can_l = (max_depth < 0 or depth[lc] < max_depth) and sums[lc, 2] >= 2 * min_leaf
        can_r = (max_depth < 0 or depth[rc] < max_depth) and sums[rc, 2] >= 2 * min_leaf
        if not (can_l or can_r) or n_leaves >= max_leaves:
            continue
        small, large = (lc, rc) if i - s <= e - i else (rc, lc)
        slot[large] = slot[best]
        slot[small] = next_slot
        next_slot += 1
        if n_threads > 1 and end[small] - start[small] >= parallel_partition_rows:
            _gather_parallel(ghw_by_row, rows, start[small], end[small], ghw, n_threads)
        else:
            _gather(ghw_by_row, rows, start[small], end[small], ghw)
        can_small, can_large = (can_l, can_r) if small == lc else (can_r, can_l)
        split_candidates(xb, rows, ghw, start[small], end[small], features, n_bins,
                          hist_pool[slot[small]], hist_pool[slot[large]], sums, small, large,
                          can_small, can_large, lam, min_leaf, min_hess, per_feature, cand,
                          channels, n_threads, parallel_min_rows)  # fmt: skip
    leaves = np.flatnonzero(left[:n_nodes] == -1)
    for nd in leaves:
        value[nd] = -sums[nd, 0] / (sums[nd, 1] + lam)
    if n_threads > 1 and n >= parallel_partition_rows:
        leaves = leaves[np.argsort(start[leaves])]
        _assign_leaves_parallel(rows, start[leaves], end[leaves], leaves, node_of_row, n_threads)
    else:
        for nd in leaves:
            _assign_rows(rows, start[nd], end[nd], nd, node_of_row)
    return (
        feature[:n_nodes].copy(),
        threshold[:n_nodes].copy(),
        left[:n_nodes].copy(),
        right[:n_nodes].copy(),
        value[:n_nodes].copy(),
        gain[:n_nodes].copy(),
        missing_left[:n_nodes].copy(),
    )


@njit(parallel=True, cache=True, nogil=True)
def _apply(xb, feature, threshold, left, right, missing_left, out):
    for i in prange(xb.shape[1]):
        nd = 0
        while left[nd] != -1:
            if goes_left(xb[feature[nd], i], threshold[nd], missing_left[nd]):
                nd = left[nd]
            else:
                nd = right[nd]
        out[i] = nd


@dataclass(frozen=True)
class TreeParams:
    """Tree-growth limits shared by every tree of an ensemble.

    ``min_samples_leaf`` counts training weight (rows when unweighted, as row duplication would).
    ``depthwise`` grows level by level (every node of a depth before the next) instead of always
    splitting the leaf with the best gain; ``max_leaves`` caps both.
    """

    max_leaves: int = 31
    max_depth: int = 0  # 0 = unlimited
    min_samples_leaf: float = 20
    min_child_weight: float = 1e-3
    reg_lambda: float = 1.0
    min_split_gain: float = 0.0
    depthwise: bool = False


@njit(parallel=True, cache=True, nogil=True)
def _all_ones(h):
    others = 0
    for i in prange(len(h)):
        others += h[i] != 1.0
    return others == 0


@njit(parallel=True, cache=True, nogil=True)
def _pack(ghw, g, h, weight):
    """Rows' g, h and w side by side, as many as ``ghw`` has columns."""
    channels = ghw.shape[1]
    for i in prange(len(g)):
        ghw[i, 0] = g[i]
        if channels > 1:
            ghw[i, 1] = h[i]
        if channels > 2:
            ghw[i, 2] = weight[i]


class TreeLearner:
    """Grows trees on one binned training matrix, reusing its buffers."""

    def __init__(self, xb: np.ndarray, n_bins: np.ndarray, params: TreeParams) -> None:
        self.xb = np.ascontiguousarray(xb)
        self.n_bins = np.ascontiguousarray(n_bins, dtype=np.int64)
        self.params = params
        n_features, n = self.xb.shape
        self._hist = np.zeros((params.max_leaves, n_features, HIST_BINS, HIST_CHANNELS))
        if n >= 2**32:
            raise ParameterError(f"the tree learner takes fewer than 2**32 rows, got {n}")
        self._all_rows = np.arange(n, dtype=ROW_INDEX)
        self._all_features = np.arange(n_features, dtype=np.int64)
        self._rows = np.empty(n, dtype=ROW_INDEX)
        self._ghw_by_row = np.empty(3 * n)  # (n, 3) rows of (g, h, w), or (n, 1) rows of g
        self._ghw = np.empty(3 * n)  # the same in a node's row order
        self._rows_tmp = np.empty(n, dtype=ROW_INDEX)
        self._left_tmp = np.empty(n, dtype=ROW_INDEX)

    def fit(
        self,
        g: np.ndarray,
        h: np.ndarray,
        weight: np.ndarray | None = None,
        rows: np.ndarray | None = None,
        features: np.ndarray | None = None,
    ) -> tuple[Tree, np.ndarray]:
        """Grow one tree; return it and the node every training row (sampled or not) falls in.

        ``g`` and ``h`` are the (already weighted) gradients and hessians, ``weight`` each row's
        weight for the minimum leaf size (ones by default), ``rows`` the ascending row sample the
        tree is grown on (all by default), ``features`` the features it may split on.
        """
        p = self.params
        n = self.xb.shape[1]
        sample = self._all_rows if rows is None else np.asarray(rows, dtype=ROW_INDEX)
        m = len(sample)
        work_rows = self._rows[:m]
        work_rows[:] = sample
        # The rows' numbers the histograms read: (g, h, w); (g, h) when unweighted, the weight
        # channel counting rows (a sum of 1.0 per row, as before); g alone when unweighted with
        # every hessian 1 (squared error), both other channels counting rows.
        channels = 3 if weight is not None else 1 if _all_ones(h) else 2
        ghw = self._ghw_by_row[: channels * n].reshape(n, channels)
        _pack(ghw, g, h, h if weight is None else weight)  # the weight is read with 3 channels only
        node_of_row = np.empty(n, dtype=np.uint16)  # _grow sets every sampled row's node
        arrays = _grow(
            self.xb,
            work_rows,
            ghw,
            self._all_features if features is None else np.asarray(features, dtype=np.int64),
            self.n_bins,
            p.max_leaves,
            p.max_depth if p.max_depth > 0 else -1,
            p.depthwise,
            float(p.min_samples_leaf),
            p.min_child_weight,
            p.reg_lambda,
            p.min_split_gain,
            self._hist,
            node_of_row,
            self._rows_tmp,
            self._left_tmp,
            self._ghw[: channels * m].reshape(m, channels),
            get_num_threads(),
            PARALLEL_MIN_ROWS,
            PARALLEL_PARTITION_ROWS,
            rows is None,
        )
        tree = Tree(*arrays)
        if m < n:  # rows outside the sample still need their node
            node_of_row = tree.apply(self.xb)
        return tree, node_of_row
