"""Prediction of a fitted ensemble: on binned features (``predict_trees``) or on raw feature
values with every tree packed into 16-byte node records (``RawPredictor``)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from redundancy.dart.histogram import HIST_BINS, goes_left
from redundancy.dart.tree import Tree
from redundancy.errors import ParameterError

_PREDICT_BLOCK = 64  # rows walked through one tree before the next (the tree stays in L1)


@njit(parallel=True, cache=True, nogil=True)
def _predict_flat(xb, offsets, feature, threshold, left, right, missing_left, value, weight, klass,
                  out):  # fmt: skip
    for i in prange(xb.shape[1]):
        for t in range(len(offsets) - 1):
            o = offsets[t]
            nd = 0
            while left[o + nd] != -1:
                if goes_left(xb[feature[o + nd], i], threshold[o + nd], missing_left[o + nd]):
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
        table = np.full((max(len(edges), 1), HIST_BINS), np.inf)
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
