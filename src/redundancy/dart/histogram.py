"""Histograms and split finding of the tree learner (numba kernels).

A node's histogram holds, per feature and bin, the summed gradient, hessian and weight of its
rows and a zero pad lane (``HIST_CHANNELS``: a row adds all three with one vector add); value
bins are 0..254 and missing values live in bin ``MISSING_BIN`` (255). The kernels read a node's
rows and their gradients in row order ("ordered gradients"), four features per pass;
the larger child's histogram comes from its parent's by subtraction. Each feature's histogram is
scanned for its best split alone and the node's best is merged in feature order, so the result
does not depend on how features are shared among threads (``split_candidates``).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

MISSING_BIN = 255  # value bins are 0..254 (max_bins <= 255)
HIST_BINS = 256


@njit(cache=True, nogil=True, inline="always")
def goes_left(b, threshold, missing_left):
    """Whether bin ``b`` goes left of a split at bin ``threshold`` (missing values as learned)."""
    return b <= threshold or (b == MISSING_BIN and missing_left != 0)


HIST_CHANNELS = 4  # per bin: summed g, h, w and a zero pad, so a row adds all three in one step
_FEATURE_STRIDE = HIST_CHANNELS * HIST_BINS  # float64 words of one feature's histogram


@intrinsic
def _add_row(typingctx, hist, at, g, h, w):
    """``hist[at : at + 4] += (g, h, w, 0)`` as one 4-wide vector add (one load and one store
    instead of three of each; the same sums, lane by lane). ``hist`` is a C-contiguous float64
    vector and ``at + 4 <= len(hist)`` (unchecked)."""
    if not (isinstance(hist, types.Array) and hist.ndim == 1 and hist.layout == "C"
            and hist.dtype == types.float64):  # fmt: skip
        return None
    sig = types.void(hist, types.intp, types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        hist_value, at_value, *lanes = args
        data = context.make_array(signature.args[0])(context, builder, hist_value).data
        vector_type = ir.VectorType(ir.DoubleType(), HIST_CHANNELS)
        address = builder.bitcast(builder.gep(data, [at_value]), vector_type.as_pointer())
        step = ir.Constant(vector_type, [0.0] * HIST_CHANNELS)
        for lane, value in enumerate(lanes):
            step = builder.insert_element(step, value, ir.Constant(ir.IntType(32), lane))
        builder.store(builder.fadd(builder.load(address, align=8), step), address, align=8)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _clear_feature(hist, f, nb):
    base = f * _FEATURE_STRIDE
    hist[base : base + HIST_CHANNELS * nb] = 0.0
    m = base + HIST_CHANNELS * MISSING_BIN
    hist[m : m + HIST_CHANNELS] = 0.0


@njit(cache=True, nogil=True, inline="always")
def _consecutive(features, k, last, count):
    return k + count <= last and features[k + count - 1] - features[k] == count - 1


# Numba wraps negative indices (``a[-1]``) with a compare and select on every access whose index
# the compiler cannot prove non-negative. The hot loops therefore index views from 0 (a node's
# rows, the first feature's histogram, at offsets that are a constant plus four times a uint8)
# and read row numbers as unsigned (the gains measured: docs/dart.md, Speed).
def _histogram_kernels(stride):
    """Histogram builders reading rows of ``stride`` numbers: (g, h, w); (g, h) where every w
    is 1; or g alone where every h and w is 1."""

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
            _add_row(view, HIST_CHANNELS * np.int64(c0[r]), g, h, w)
            _add_row(view, _FEATURE_STRIDE + HIST_CHANNELS * np.int64(c1[r]), g, h, w)
            _add_row(view, 2 * _FEATURE_STRIDE + HIST_CHANNELS * np.int64(c2[r]), g, h, w)
            _add_row(view, 3 * _FEATURE_STRIDE + HIST_CHANNELS * np.int64(c3[r]), g, h, w)

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
            _add_row(view, HIST_CHANNELS * np.int64(c0[r]), g, h, w)
            _add_row(view, _FEATURE_STRIDE + HIST_CHANNELS * np.int64(c1[r]), g, h, w)

    @njit(cache=True, nogil=True)
    def one(xb, rows, ghw, start, end, f, hist):
        c0 = xb[f]
        view = hist[f * _FEATURE_STRIDE : (f + 1) * _FEATURE_STRIDE]
        node_rows = rows[start:end]
        node_ghw = ghw[stride * start : stride * end]
        for i in range(len(node_rows)):
            g, h, w = load(node_ghw, i)
            _add_row(view, HIST_CHANNELS * np.int64(c0[np.uint64(node_rows[i])]), g, h, w)

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


_hist_ghw = _histogram_kernels(3)
_hist_gh = _histogram_kernels(2)  # w = 1 (unweighted): a count of 1.0 per row
_hist_g = _histogram_kernels(1)  # h = w = 1 (unweighted squared error): counts in both


@njit(cache=True, nogil=True)
def _hist_features(xb, rows, ghw, start, end, features, first, last, n_bins, hist, channels):
    """Histograms of ``features[first:last]`` into the flat ``hist``. ``ghw`` holds
    ``channels`` numbers per row: (g, h, w); (g, h) when unweighted (w = 1); g alone when
    unweighted with every h = 1."""
    if channels == 1:
        _hist_g(xb, rows, ghw, start, end, features, first, last, n_bins, hist)
    elif channels == 2:
        _hist_gh(xb, rows, ghw, start, end, features, first, last, n_bins, hist)
    else:
        _hist_ghw(xb, rows, ghw, start, end, features, first, last, n_bins, hist)


# Gains this close count as ties, won by the first candidate (lowest feature, bin, node): the
# same partition reached through differently ordered sums (e.g. weighted vs duplicated rows)
# must not change the tree through rounding noise.
_TIE_TOLERANCE = 1e-10


@njit(cache=True, nogil=True, inline="always")
def beats(gain, best):
    """Whether ``gain`` beats ``best`` beyond the tie tolerance (anything beats -inf)."""
    return gain > best + _TIE_TOLERANCE * max(abs(best), 1e-300) if best > -np.inf else True


SPLIT_RECORD = 8  # a feature's best split: gain, feature, bin, G, H, W left, missing left, found


@njit(cache=True, nogil=True)
def _scan_feature(hf, f, nb, sg, sh, cnt, lam, min_leaf, min_hess, out):
    """Best split of one feature's histogram ``hf`` (bins, (g, h, w)) into ``out`` (a record).

    Missing values are tried on the right (then the split "every present value left, missing
    right" is a candidate too) and on the left. Candidates are visited in order (bin, missing
    right before left) and one wins only by beating the best so far beyond the tie tolerance
    (``beats``); an empty bin repeats the previous bin's candidates, which can never win, so it
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
                   per_feature, channels):  # fmt: skip
    """For ``features[first:last]``: the histogram of node ``small`` (rows ``start:end``), its
    sibling ``large``'s by subtraction from their parent's (``large`` < 0: none, the root), and
    each feature's best split of both into ``per_feature[0 | 1, k]``."""
    _hist_features(xb, rows, ghw, start, end, features, first, last, n_bins, hist_small.ravel(),
                   channels)  # fmt: skip
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
                            per_feature, channels, n_threads):  # fmt: skip
    n_parts = min(n_threads, len(features))
    for p in prange(n_parts):  # one contiguous run of features per thread
        first = p * len(features) // n_parts
        last = (p + 1) * len(features) // n_parts
        _node_features(xb, rows, ghw, start, end, features, first, last, n_bins, hist_small,
                       hist_large, sums, small, large, can_small, can_large, lam, min_leaf,
                       min_hess, per_feature, channels)  # fmt: skip


@njit(cache=True, nogil=True)
def split_candidates(xb, rows, ghw, start, end, features, n_bins, hist_small, hist_large, sums,
                      small, large, can_small, can_large, lam, min_leaf, min_hess, per_feature,
                      cand, channels, n_threads, parallel_min_rows):  # fmt: skip
    """Histograms and best splits (into ``cand``) of node ``small`` and its sibling ``large``.

    In parallel over features when the node has enough rows; each feature's scan and the merge
    in feature order are the same either way, so the tree does not depend on the thread count.
    """
    ghw_flat = ghw.reshape(ghw.size)
    if n_threads > 1 and end - start >= parallel_min_rows:
        _node_features_parallel(xb, rows, ghw_flat, start, end, features, n_bins, hist_small,
                                hist_large, sums, small, large, can_small, can_large, lam,
                                min_leaf, min_hess, per_feature, channels,
                                n_threads)  # fmt: skip
    else:
        _node_features(xb, rows, ghw_flat, start, end, features, 0, len(features), n_bins,
                       hist_small, hist_large, sums, small, large, can_small, can_large, lam,
                       min_leaf, min_hess, per_feature, channels)  # fmt: skip
    if can_small:
        _merge_features(per_feature[0], len(features), cand[small])
    if large >= 0 and can_large:
        _merge_features(per_feature[1], len(features), cand[large])
