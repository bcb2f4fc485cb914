"""Histogram regression-tree learner compiled with numba.

Leaf-wise (best-first, LightGBM's default) or depth-wise (level by level, XGBoost's default)
growth on binned features. Each node's rows are kept in ascending order by a stable, branch-free
partition of the row indices alone; before a node's histogram is built, its rows' packed
(gradient, hessian, weight) triples are gathered in that order ("ordered gradients"), so a
histogram pass reads them sequentially and the feature column in increasing address order. The
larger child's histogram comes from its parent's by subtraction. Each split runs one parallel
region over features (the smaller child's histogram, the subtraction, both children's split
scans: one best split per feature, merged in feature order, so trees do not depend on the thread
count); large nodes are also partitioned by every thread. Leaves hold the L2-regularised Newton
step ``-G / (H + lambda)``.

Missing values live in bin ``MISSING_BIN`` (255): every split learns a default direction for them
by trying both (XGBoost and LightGBM semantics); where a node saw no missing value, they follow the
child that holds more training weight (scikit-learn's rule). Trees are flat arrays; ``left == -1``
marks a leaf; children always come after their parent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, njit, prange

from redundancy.errors import ParameterError

MISSING_BIN = 255  # value bins are 0..254 (max_bins <= 255)
_HIST_BINS = 256

# With more than one thread, a split whose smaller child has at least this many rows runs its
# histogram, subtraction and scans in parallel over features (a region costs about 2 us; the
# scans alone take about 40 us on one thread, whatever the node's size). On idle cores, 100k x 20,
# 31 leaves, 2 threads: 5.75 ms per tree with only the root in parallel, 4.42 ms at this
# threshold (1 thread: 6.56 ms). Each region waits for every thread, so on a core shared with
# another job that wait becomes a scheduler time slice: fit with fewer threads (``n_jobs``) there.
PARALLEL_MIN_ROWS = 256
PARALLEL_PARTITION_ROWS = 16_384  # nodes this large are partitioned by every thread
_PREDICT_BLOCK = 64  # rows walked through one tree before the next (the tree stays in L1)


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


@njit(cache=True, nogil=True, inline="always")
def _goes_left(b, threshold, missing_left):
    return b <= threshold or (b == MISSING_BIN and missing_left != 0)


_FEATURE_STRIDE = 3 * _HIST_BINS  # float64 words of one feature's histogram, (g, h, w) per bin


@njit(cache=True, nogil=True, inline="always")
def _clear_feature(hist, f, nb):
    base = f * _FEATURE_STRIDE
    hist[base : base + 3 * nb] = 0.0
    m = base + 3 * MISSING_BIN
    hist[m] = 0.0
    hist[m + 1] = 0.0
    hist[m + 2] = 0.0


@njit(cache=True, nogil=True, inline="always")
def _add_ghw(hist, at, g, h, w):
    hist[at] += g
    hist[at + 1] += h
    hist[at + 2] += w


@njit(cache=True, nogil=True, inline="always")
def _add_gh(hist, at, g, h, w):
    hist[at] += g
    hist[at + 1] += h


@njit(cache=True, nogil=True, inline="always")
def _consecutive(features, k, last, count):
    return k + count <= last and features[k + count - 1] - features[k] == count - 1


# Numba wraps negative indices (``a[-1]``) with a compare and select on every access whose index
# the compiler cannot prove non-negative. The hot loops therefore index views from 0 (a node's
# rows, the first feature's histogram, at offsets that are a constant plus three times a uint8)
# and read row numbers as unsigned: histograms 1.75 -> 0.97 ns per row and feature, partition
# 2.3 -> 1.4 ns per row, gather 1.3 -> 1.1 ns per row.
def _histogram_kernels(add_row, stride):
    """Histogram builders adding each row with ``add_row`` (all three channels, or g and h only
    where every row's hessian equals its weight and the weight channel is copied afterwards),
    reading rows of ``stride`` numbers: (g, h, w), (g, h) where every w is 1, or g alone where
    every h and w is 1."""

    @njit(cache=True, nogil=True, inline="always")
    def load(node_ghw, i):
        if stride == 1:
            return node_ghw[i], 1.0, 1.0
        if stride == 2:
            return node_ghw[2 * i], node_ghw[2 * i + 1], 1.0
        return node_ghw[3 * i], node_ghw[3 * i + 1], node_ghw[3 * i + 2]

    @njit(cache=True, nogil=True)
    def four(xb, rows, ghw, start, end, f, hist):
        """Features ``f .. f + 3`` in one pass: each row's index and (g, h, w) load once.

        Every bin still sums its rows in row order: the sums of one feature at a time.
        """
        c0 = xb[f]
        c1 = xb[f + 1]
        c2 = xb[f + 2]
        c3 = xb[f + 3]
        view = hist[f * _FEATURE_STRIDE : (f + 4) * _FEATURE_STRIDE]
        node_rows = rows[start:end]
        node_ghw = ghw[stride * start : stride * end]
        for i in range(len(node_rows)):
            r = np.uint64(node_rows[i])
            g, h, w = load(node_ghw, i)
            add_row(view, 3 * np.int64(c0[r]), g, h, w)
            add_row(view, _FEATURE_STRIDE + 3 * np.int64(c1[r]), g, h, w)
            add_row(view, 2 * _FEATURE_STRIDE + 3 * np.int64(c2[r]), g, h, w)
            add_row(view, 3 * _FEATURE_STRIDE + 3 * np.int64(c3[r]), g, h, w)

    @njit(cache=True, nogil=True)
    def two(xb, rows, ghw, start, end, f, hist):
        c0 = xb[f]
        c1 = xb[f + 1]
        view = hist[f * _FEATURE_STRIDE : (f + 2) * _FEATURE_STRIDE]
        node_rows = rows[start:end]
        node_ghw = ghw[stride * start : stride * end]
        for i in range(len(node_rows)):
            r = np.uint64(node_rows[i])
            g, h, w = load(node_ghw, i)
            add_row(view, 3 * np.int64(c0[r]), g, h, w)
            add_row(view, _FEATURE_STRIDE + 3 * np.int64(c1[r]), g, h, w)

    @njit(cache=True, nogil=True)
    def one(xb, rows, ghw, start, end, f, hist):
        c0 = xb[f]
        view = hist[f * _FEATURE_STRIDE : (f + 1) * _FEATURE_STRIDE]
        node_rows = rows[start:end]
        node_ghw = ghw[stride * start : stride * end]
        for i in range(len(node_rows)):
            g, h, w = load(node_ghw, i)
            add_row(view, 3 * np.int64(c0[np.uint64(node_rows[i])]), g, h, w)

    @njit(cache=True, nogil=True)
    def features_hist(xb, rows, ghw, start, end, features, first, last, n_bins, hist):
        """Histograms of ``features[first:last]`` (ascending), runs of consecutive features
        four or two at a time."""
        for k in range(first, last):
            _clear_feature(hist, features[k], n_bins[features[k]])
        k = first
        while k < last:
            f = features[k]
            if _consecutive(features, k, last, 4):
                four(xb, rows, ghw, start, end, f, hist)
                k += 4
            elif _consecutive(features, k, last, 2):
                two(xb, rows, ghw, start, end, f, hist)
                k += 2
            else:
                one(xb, rows, ghw, start, end, f, hist)
                k += 1

    return features_hist


_hist_ghw = _histogram_kernels(_add_ghw, 3)
_hist_gh = _histogram_kernels(_add_gh, 3)  # h = w: the weight channel is copied from h
_hist_gh1 = _histogram_kernels(_add_ghw, 2)  # w = 1 (unweighted): a count of 1.0 per row
_hist_g = _histogram_kernels(_add_gh, 1)  # h = w = 1: g and a count, copied to the weights


@njit(cache=True, nogil=True)
def _hist_features(xb, rows, ghw, start, end, features, first, last, n_bins, hist, h_is_w,
                   channels):  # fmt: skip
    """Histograms of ``features[first:last]`` into the flat ``hist``; with ``h_is_w`` (every
    row's hessian equals its weight: squared error) only g and h are summed and the weight
    channel is a copy of the hessian channel (the same numbers added in the same order).
    ``ghw`` holds ``channels`` numbers per row: (g, h, w); (g, h) when unweighted (w = 1); g
    alone when unweighted with every h = 1."""
    if channels == 2:
        _hist_gh1(xb, rows, ghw, start, end, features, first, last, n_bins, hist)
        return
    if not h_is_w:
        _hist_ghw(xb, rows, ghw, start, end, features, first, last, n_bins, hist)
        return
    if channels == 1:
        _hist_g(xb, rows, ghw, start, end, features, first, last, n_bins, hist)
    else:
        _hist_gh(xb, rows, ghw, start, end, features, first, last, n_bins, hist)
    for k in range(first, last):
        view = hist[features[k] * _FEATURE_STRIDE : (features[k] + 1) * _FEATURE_STRIDE]
        for b in range(n_bins[features[k]]):
            view[3 * b + 2] = view[3 * b + 1]
        view[3 * MISSING_BIN + 2] = view[3 * MISSING_BIN + 1]


# Gains this close count as ties, won by the first candidate (lowest feature, bin, node): the
# same partition reached through differently ordered sums (e.g. weighted vs duplicated rows)
# must not change the tree through rounding noise.
_TIE_TOLERANCE = 1e-10


@njit(cache=True, nogil=True, inline="always")
def _better(gain, best):
    return gain > best + _TIE_TOLERANCE * max(abs(best), 1e-300) if best > -np.inf else True


_RECORD = 8  # a feature's best split: gain, feature, bin, G, H, W left, missing left, found


@njit(cache=True, nogil=True)
def _scan_feature(hf, f, nb, sg, sh, cnt, lam, min_leaf, min_hess, out):
    """Best split of one feature's histogram ``hf`` (bins, (g, h, w)) into ``out`` (a record).

    Missing values are tried on the right (then the split "every present value left, missing
    right" is a candidate too) and on the left. Candidates are visited in order (bin, missing
    right before left) and one wins only by beating the best so far beyond the tie tolerance
    (``_better``); an empty bin repeats the previous bin's candidates, which can never win, so it
    is skipped. ``out[7]`` is 1 where some candidate met the minimum leaf sizes.
    """
    parent = sg * sg / (sh + lam)
    best = -np.inf
    bar = -np.inf  # a candidate must exceed this (the best plus the tie tolerance)
    best_b = 0
    best_gl = best_hl = best_cl = best_ml = 0.0
    found = False
    mg = hf[MISSING_BIN, 0]
    mh = hf[MISSING_BIN, 1]
    mc = hf[MISSING_BIN, 2]
    has_missing = mc > 0.0
    gl = 0.0
    hl = 0.0
    cl = 0.0
    last = nb if has_missing else nb - 1
    for b in range(last):
        wb = hf[b, 2]
        if wb == 0.0 and b > 0 and hf[b, 0] == 0.0 and hf[b, 1] == 0.0 and best == best:
            continue
        gl += hf[b, 0]
        hl += hf[b, 1]
        cl += wb
        for ml in range(2 if has_missing else 1):
            if ml == 1:
                if b >= nb - 1:
                    break
                g_left = gl + mg
                h_left = hl + mh
                c_left = cl + mc
            else:
                g_left = gl
                h_left = hl
                c_left = cl
            if (c_left < min_leaf or h_left < min_hess or cnt - c_left < min_leaf
                    or sh - h_left < min_hess):  # fmt: skip
                continue
            g_right = sg - g_left
            gain = 0.5 * (g_left * g_left / (h_left + lam)
                          + g_right * g_right / (sh - h_left + lam) - parent)  # fmt: skip
            if gain > bar or not best > -np.inf:
                found = True
                best = gain
                bar = best + _TIE_TOLERANCE * max(abs(best), 1e-300)
                best_b = b
                best_gl = g_left
                best_hl = h_left
                best_cl = c_left
                # where no value is missing, missing values follow the heavier child
                heavier_left = 1.0 if cl >= cnt - cl else 0.0
                best_ml = float(ml) if has_missing else heavier_left
    out[0] = best
    out[1] = f
    out[2] = best_b
    out[3] = best_gl
    out[4] = best_hl
    out[5] = best_cl
    out[6] = best_ml
    out[7] = 1.0 if found else 0.0


@njit(cache=True, nogil=True)
def _merge_features(per_feature, n, out):
    """The node's best split from its features' records, merged in feature order by the rule
    used within a feature (a later feature wins only beyond the tie tolerance); ``out[0]`` stays
    -inf if no feature can split."""
    best = -np.inf
    bar = -np.inf
    for k in range(n):
        record = per_feature[k]
        if record[7] == 0.0:
            continue
        if record[0] > bar or not best > -np.inf:
            best = record[0]
            bar = best + _TIE_TOLERANCE * max(abs(best), 1e-300)
            out[1:7] = record[1:7]
    out[0] = best


@njit(cache=True, nogil=True)
def _node_features(xb, rows, ghw, start, end, features, first, last, n_bins, hist_small,
                   hist_large, sums, small, large, can_small, can_large, lam, min_leaf, min_hess,
                   per_feature, h_is_w, channels):  # fmt: skip
    """For ``features[first:last]``: the histogram of node ``small`` (rows ``start:end``), its
    sibling ``large``'s by subtraction from their parent's (``large`` < 0: none, the root), and
    each feature's best split of both into ``per_feature[0 | 1, k]``."""
    _hist_features(xb, rows, ghw, start, end, features, first, last, n_bins, hist_small.ravel(),
                   h_is_w, channels)  # fmt: skip
    for k in range(first, last):
        f = features[k]
        nb = n_bins[f]
        hs = hist_small[f]
        if large >= 0:
            hl = hist_large[f]
            for b in range(nb):
                for j in range(3):
                    hl[b, j] -= hs[b, j]
            for j in range(3):
                hl[MISSING_BIN, j] -= hs[MISSING_BIN, j]
            if can_large:
                _scan_feature(hl, f, nb, sums[large, 0], sums[large, 1], sums[large, 2], lam,
                              min_leaf, min_hess, per_feature[1, k])  # fmt: skip
        if can_small:
            _scan_feature(hs, f, nb, sums[small, 0], sums[small, 1], sums[small, 2], lam,
                          min_leaf, min_hess, per_feature[0, k])  # fmt: skip


@njit(parallel=True, cache=True, nogil=True)
def _node_features_parallel(xb, rows, ghw, start, end, features, n_bins, hist_small, hist_large,
                            sums, small, large, can_small, can_large, lam, min_leaf, min_hess,
                            per_feature, h_is_w, channels, n_threads):  # fmt: skip
    n_parts = min(n_threads, len(features))
    for p in prange(n_parts):  # one contiguous run of features per thread
        first = p * len(features) // n_parts
        last = (p + 1) * len(features) // n_parts
        _node_features(xb, rows, ghw, start, end, features, first, last, n_bins, hist_small,
                       hist_large, sums, small, large, can_small, can_large, lam, min_leaf,
                       min_hess, per_feature, h_is_w, channels)  # fmt: skip


@njit(cache=True, nogil=True)
def _split_candidates(xb, rows, ghw, start, end, features, n_bins, hist_small, hist_large, sums,
                      small, large, can_small, can_large, lam, min_leaf, min_hess, per_feature,
                      cand, h_is_w, channels, n_threads, parallel_min_rows):  # fmt: skip
    """Histograms and best splits (into ``cand``) of node ``small`` and its sibling ``large``.

    In parallel over features when the node has enough rows; each feature's scan and the merge
    in feature order are the same either way, so the tree does not depend on the thread count.
    """
    ghw_flat = ghw.reshape(ghw.size)
    if n_threads > 1 and end - start >= parallel_min_rows:
        _node_features_parallel(xb, rows, ghw_flat, start, end, features, n_bins, hist_small,
                                hist_large, sums, small, large, can_small, can_large, lam,
                                min_leaf, min_hess, per_feature, h_is_w, channels,
                                n_threads)  # fmt: skip
    else:
        _node_features(xb, rows, ghw_flat, start, end, features, 0, len(features), n_bins,
                       hist_small, hist_large, sums, small, large, can_small, can_large, lam,
                       min_leaf, min_hess, per_feature, h_is_w, channels)  # fmt: skip
    if can_small:
        _merge_features(per_feature[0], len(features), cand[small])
    if large >= 0 and can_large:
        _merge_features(per_feature[1], len(features), cand[large])


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
        go_left = np.int64(_goes_left(col[np.uint64(r)], threshold, missing_left))
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
    h_is_w,
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
    per_feature = np.empty((2, len(features), _RECORD))
    if max_leaves > 1 and sums[0, 2] >= 2 * min_leaf and max_depth != 0:
        _split_candidates(xb, rows, root_ghw, 0, n, features, n_bins, hist_pool[0], hist_pool[0],
                          sums, 0, -1, True, False, lam, min_leaf, min_hess, per_feature, cand,
                          h_is_w, channels, n_threads, parallel_min_rows)  # fmt: skip
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
                better = _better(cand[nd, 0], best_gain)
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
        _split_candidates(xb, rows, ghw, start[small], end[small], features, n_bins,
                          hist_pool[slot[small]], hist_pool[slot[large]], sums, small, large,
                          can_small, can_large, lam, min_leaf, min_hess, per_feature, cand,
                          h_is_w, channels, n_threads, parallel_min_rows)  # fmt: skip
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
            if _goes_left(xb[feature[nd], i], threshold[nd], missing_left[nd]):
                nd = left[nd]
            else:
                nd = right[nd]
        out[i] = nd


@njit(parallel=True, cache=True, nogil=True)
def _predict_flat(xb, offsets, feature, threshold, left, right, missing_left, value, weight, klass,
                  out):  # fmt: skip
    for i in prange(xb.shape[1]):
        for t in range(len(offsets) - 1):
            o = offsets[t]
            nd = 0
            while left[o + nd] != -1:
                if _goes_left(xb[feature[o + nd], i], threshold[o + nd], missing_left[o + nd]):
                    nd = left[o + nd]
                else:
                    nd = right[o + nd]
            out[i, klass[t]] += weight[t] * value[o + nd]


# Prediction walks trees packed into 16-byte node records (see ``RawPredictor``): a float64
# ``cut`` and two int32 words, the split feature (bit 31 set where missing values go left) and
# the index of the left child; the right child is always the next record.
_RECORD_FLOATS = 2  # float64 words per record (cut, then the two int32 words)
_RECORD_INTS = 4  # int32 words per record: cut (2 words), feature|missing bit, left child
_MISSING_LEFT_BIT = 2**31
_FEATURE_MASK = 0x7FFFFFFF
_INTERLEAVE = 8  # rows walked through one tree side by side (independent dependency chains)
# A tree whose nodes share children (a file may hold one; the learner never makes one) is
# unfolded into a proper tree for packing; this caps the unfolded size of one tree.
MAX_WALK_NODES = 1 << 22


@njit(cache=True, nogil=True)
def _walk_sizes(offsets, left, right):
    """Nodes of each tree once unfolded into a tree (one record per root-to-node path)."""
    sizes = np.zeros(len(offsets) - 1, np.int64)
    for t in range(len(offsets) - 1):
        o = offsets[t]
        paths = np.zeros(offsets[t + 1] - o, np.int64)
        paths[0] = 1
        total = 0
        for i in range(len(paths)):
            total = min(total + paths[i], MAX_WALK_NODES + 1)
            if left[o + i] != -1:
                for c in (left[o + i], right[o + i]):
                    paths[c] = min(paths[c] + paths[i], MAX_WALK_NODES + 1)
        sizes[t] = total
    return sizes


@njit(cache=True, nogil=True)
def _pack_nodes(offsets, packed_offsets, feature, cut, left, right, missing_left, leaf_value,
                cuts, words, leaf_out, depth):  # fmt: skip
    """Write every tree in breadth-first order as records whose two children are adjacent.

    A leaf's record sends every row back to itself (``cut`` NaN, left child = itself - 1, no
    missing bit), so each row can take exactly ``depth[t]`` steps without testing for leaves.
    """
    for t in range(len(offsets) - 1):
        o = offsets[t]
        base = packed_offsets[t]
        m = packed_offsets[t + 1] - base
        source = np.empty(m, np.int64)
        level = np.empty(m, np.int64)
        source[0] = o
        level[0] = 0
        tail = 1
        deepest = 0
        for p in range(m):
            old = source[p]
            q = base + p
            if left[old] == -1:
                cuts[_RECORD_FLOATS * q] = np.nan
                words[_RECORD_INTS * q + 2] = 0
                words[_RECORD_INTS * q + 3] = q - 1
                leaf_out[q] = leaf_value[old]
            else:
                source[tail] = o + left[old]
                source[tail + 1] = o + right[old]
                level[tail] = level[p] + 1
                level[tail + 1] = level[p] + 1
                deepest = max(deepest, level[p] + 1)
                cuts[_RECORD_FLOATS * q] = cut[old]
                words[_RECORD_INTS * q + 2] = feature[old] - _MISSING_LEFT_BIT * (
                    missing_left[old] != 0
                )
                words[_RECORD_INTS * q + 3] = base + tail
                leaf_out[q] = 0.0
                tail += 2
        depth[t] = deepest


@njit(cache=True, nogil=True, inline="always")
def _step(x, nd, cuts, words):
    """The record after ``nd`` for the row ``x``: branch-free (the direction offsets the child).

    Indices are unsigned (a feature index has its bit 31 masked off): no wraparound checks.
    """
    q = np.uint64(nd)
    fm = words[np.uint64(_RECORD_INTS) * q + np.uint64(2)]
    v = x[np.uint64(fm & _FEATURE_MASK)]
    go_left = (v <= cuts[np.uint64(_RECORD_FLOATS) * q]) | ((v != v) & (fm < 0))
    return np.uint64(words[np.uint64(_RECORD_INTS) * q + np.uint64(3)]) + np.uint64(1 - go_left)


@njit(parallel=True, cache=True, nogil=True)
def _predict_packed(X, offsets, cuts, words, leaf_out, depth, klass, out):
    """Walk raw rows of ``X`` (n, F) through every packed tree, blocks of rows per tree.

    Within a block, eight rows walk a tree side by side for exactly the tree's depth: the walks
    are independent, so their loads overlap, and the loop never mispredicts a leaf test.
    """
    n = X.shape[0]
    n_blocks = (n + _PREDICT_BLOCK - 1) // _PREDICT_BLOCK
    for blk in prange(n_blocks):
        a = blk * _PREDICT_BLOCK
        z = min(n, a + _PREDICT_BLOCK)
        for t in range(len(offsets) - 1):
            root = np.uint64(offsets[t])
            k = klass[t]
            steps = depth[t]
            i = a
            while i + _INTERLEAVE <= z:
                x0, x1, x2, x3 = X[i], X[i + 1], X[i + 2], X[i + 3]
                x4, x5, x6, x7 = X[i + 4], X[i + 5], X[i + 6], X[i + 7]
                n0 = n1 = n2 = n3 = n4 = n5 = n6 = n7 = root
                for _ in range(steps):
                    n0 = _step(x0, n0, cuts, words)
                    n1 = _step(x1, n1, cuts, words)
                    n2 = _step(x2, n2, cuts, words)
                    n3 = _step(x3, n3, cuts, words)
                    n4 = _step(x4, n4, cuts, words)
                    n5 = _step(x5, n5, cuts, words)
                    n6 = _step(x6, n6, cuts, words)
                    n7 = _step(x7, n7, cuts, words)
                out[i, k] += leaf_out[n0]
                out[i + 1, k] += leaf_out[n1]
                out[i + 2, k] += leaf_out[n2]
                out[i + 3, k] += leaf_out[n3]
                out[i + 4, k] += leaf_out[n4]
                out[i + 5, k] += leaf_out[n5]
                out[i + 6, k] += leaf_out[n6]
                out[i + 7, k] += leaf_out[n7]
                i += _INTERLEAVE
            for j in range(i, z):
                nd = root
                xj = X[j]
                for _ in range(steps):
                    nd = _step(xj, nd, cuts, words)
                out[j, k] += leaf_out[nd]


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
    """Rows' g, h and w side by side, as many as ``ghw`` has columns; True where every h equals
    its weight (1 where ``ghw`` has no weight column)."""
    channels = ghw.shape[1]
    differ = 0
    for i in prange(len(g)):
        ghw[i, 0] = g[i]
        if channels > 1:
            ghw[i, 1] = h[i]
        if channels > 2:
            ghw[i, 2] = weight[i]
        differ += h[i] != (weight[i] if channels > 2 else 1.0)
    return differ == 0


class TreeLearner:
    """Grows trees on one binned training matrix, reusing its buffers."""

    def __init__(self, xb: np.ndarray, n_bins: np.ndarray, params: TreeParams) -> None:
        self.xb = np.ascontiguousarray(xb)
        self.n_bins = np.ascontiguousarray(n_bins, dtype=np.int64)
        self.params = params
        n_features, n = self.xb.shape
        self._hist = np.zeros((params.max_leaves, n_features, _HIST_BINS, 3))
        self._all_rows = np.arange(n, dtype=np.int64)
        self._all_features = np.arange(n_features, dtype=np.int64)
        self._rows = np.empty(n, dtype=np.int64)
        self._ghw_by_row = np.empty(3 * n)  # (n, 3) rows of (g, h, w), or (n, 1) rows of g
        self._ghw = np.empty(3 * n)  # the same in a node's row order
        self._rows_tmp = np.empty(n, dtype=np.int64)
        self._left_tmp = np.empty(n, dtype=np.int64)

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
        sample = self._all_rows if rows is None else np.asarray(rows, dtype=np.int64)
        m = len(sample)
        work_rows = self._rows[:m]
        work_rows[:] = sample
        # The rows' numbers the histograms read: (g, h, w); (g, h) when unweighted, the weight
        # channel counting rows (a sum of 1.0 per row, as before); g alone when unweighted with
        # every hessian 1 (squared error), both other channels counting rows.
        channels = 3 if weight is not None else 1 if _all_ones(h) else 2
        ghw = self._ghw_by_row[: channels * n].reshape(n, channels)
        h_is_w = _pack(ghw, g, h, h if weight is None else weight)
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
            h_is_w,
        )
        tree = Tree(*arrays)
        if m < n:  # rows outside the sample still need their node
            node_of_row = tree.apply(self.xb)
        return tree, node_of_row


def predict_trees(
    xb: np.ndarray, trees: list[Tree], weights: np.ndarray, klass: np.ndarray, n_outputs: int
) -> np.ndarray:
    """Weighted sum of tree outputs on binned ``xb``, (n_samples, n_outputs)."""
    out = np.zeros((xb.shape[1], n_outputs))
    if not trees:
        return out
    offsets = np.zeros(len(trees) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t.left) for t in trees])
    cat = {
        a: np.concatenate([getattr(t, a) for t in trees])
        for a in ("feature", "threshold", "left", "right", "missing_left", "value")
    }
    _predict_flat(
        xb,
        offsets,
        cat["feature"],
        cat["threshold"],
        cat["left"],
        cat["right"],
        cat["missing_left"],
        cat["value"],
        np.ascontiguousarray(weights, dtype=np.float64),
        klass.astype(np.int64),
        out,
    )
    return out


class RawPredictor:
    """Every tree of an ensemble packed for prediction on raw (unbinned) feature values.

    A split ``bin <= t`` is ``x <= edges[t]`` on raw values (``+inf`` when ``t`` is the last bin:
    every present value goes left), so prediction needs no binning; NaN takes the learned default
    direction. Each tree's weight is folded into its leaf values. Nodes are 16-byte records
    (float64 cut, feature with the missing-direction bit, left child; the right child follows
    the left one), trees one after another in breadth-first order. Cuts stay float64: every
    comparison, and so every prediction, is exactly the binned walk's.
    """

    def __init__(
        self, trees: list[Tree], weights: np.ndarray, klass: np.ndarray, edges: list[np.ndarray]
    ) -> None:
        self.n_trees = len(trees)
        sizes = np.array([len(t.left) for t in trees], dtype=np.int64)
        offsets = np.zeros(len(trees) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(sizes)

        def cat(name: str, dtype: type) -> np.ndarray:
            parts = [getattr(t, name) for t in trees]
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        left, right, feature = (
            cat("left", np.int64),
            cat("right", np.int64),
            cat("feature", np.int64),
        )
        thr = cat("threshold", np.int64)
        leaf = left == -1
        table = np.full((max(len(edges), 1), _HIST_BINS), np.inf)
        for f, e in enumerate(edges):
            table[f, : len(e)] = e
        cut = np.where(leaf, 0.0, table[np.maximum(feature, 0), np.maximum(thr, 0)])
        w = np.repeat(np.asarray(weights, dtype=np.float64), sizes)
        leaf_value = np.where(leaf, cat("value", np.float64) * w, 0.0)
        packed_sizes = _walk_sizes(offsets, left, right)
        if np.any(packed_sizes > MAX_WALK_NODES):
            raise ParameterError(
                f"a tree's nodes share children so often that it unfolds into more than "
                f"{MAX_WALK_NODES} nodes; expected trees as the learner grows them"
            )
        self.offsets = np.zeros(len(trees) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum(packed_sizes)
        total = int(self.offsets[-1])
        self.cuts = np.zeros(_RECORD_FLOATS * total)  # the records; words is the same memory
        self.words = self.cuts.view(np.int32)
        self.leaf_out = np.zeros(total)
        self.depth = np.zeros(len(trees), dtype=np.int64)
        _pack_nodes(
            offsets, self.offsets, np.maximum(feature, 0), cut, left, right,
            cat("missing_left", np.int64), leaf_value, self.cuts, self.words, self.leaf_out,
            self.depth,
        )  # fmt: skip
        self.klass = np.asarray(klass, dtype=np.int64)

    def predict(self, X: np.ndarray, n_outputs: int) -> np.ndarray:
        """Sum of weighted tree outputs on raw ``X`` (n_samples, n_features), per output."""
        out = np.zeros((X.shape[0], n_outputs))
        if self.n_trees:
            _predict_packed(
                np.ascontiguousarray(X, dtype=np.float64),
                self.offsets,
                self.cuts,
                self.words,
                self.leaf_out,
                self.depth,
                self.klass,
                out,
            )
        return out
