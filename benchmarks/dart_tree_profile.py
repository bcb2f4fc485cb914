"""Where a DART/MART tree's time goes: each compiled kernel of the tree learner timed alone.

Grows leaf-wise trees (31 leaves, min leaf 20, L2 1) on the first-round gradient of
``dart_speed.make_data`` (squared error at the mean, or log-loss at the base rate) by calling
the learner's kernels in the order ``tree._grow`` calls them, timing every call from Python (each
call also pays numba's dispatch of its arguments, up to about 20 us, which lands on the small
nodes), and prints one table: milliseconds per tree per phase, its share, the rows it touched per
tree and nanoseconds per row (per row and feature for the histogram phases). Histogram phases are
split by the node's density (its rows / all rows): sparse nodes read their feature columns in
scattered cache lines. At more than one thread the numbers overstate the parallel kernels: between
Python calls numba's idle workers go to sleep and each region pays their wake-up.

Usage: python benchmarks/dart_tree_profile.py [--rows 100000] [--features 20] [--threads 1]
       [--trees 5] [--task regression|binary]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import numba
import numpy as np
from dart_speed import make_data  # this folder: run as python benchmarks/dart_tree_profile.py
from numba import njit

from redundancy.dart import histogram as H
from redundancy.dart import tree as T
from redundancy.dart.binning import BinMapper

LEAVES, MIN_LEAF, LAMBDA, MIN_HESS = 31, 20.0, 1.0, 1e-3


@njit(cache=True)
def _root_sums(ghw, out):
    """The grower's root sums of unweighted rows: g (and h) added in row order, and counts."""
    channels = ghw.shape[1]
    for i in range(ghw.shape[0]):
        out[0] += ghw[i, 0]
        out[1] += ghw[i, 1] if channels > 1 else 1.0
        out[2] += 1.0


def _density_bucket(rows: int, n: int) -> str:
    share = rows / n
    for limit, name in ((0.005, "< 0.5 %"), (0.02, "0.5-2 %"), (0.1, "2-10 %")):
        if share < limit:
            return name
    return ">= 10 %"


class Profile:
    """Seconds and rows per phase, summed over the trees grown."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.rows: dict[str, int] = defaultdict(int)

    def time(self, phase: str, rows: int, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.seconds[phase] += time.perf_counter() - start
        self.rows[phase] += rows
        return out


def grow(xb, n_bins, g, h, hist_pool, threads: int, prof: Profile) -> None:
    """One leaf-wise tree, the kernels called as ``tree._grow`` calls them."""
    n_features, n = xb.shape
    rows = np.arange(n, dtype=T.ROW_INDEX)
    channels = 1 if T._all_ones(h) else 2  # unweighted: g alone, or (g, h)
    ghw_by_row, ghw = np.empty((n, channels)), np.empty((n, channels))
    rows_tmp, left_tmp = np.empty(n, T.ROW_INDEX), np.empty(n, T.ROW_INDEX)
    features = np.arange(n_features, dtype=np.int64)
    prof.time("pack gradients", n, T._pack, ghw_by_row, g, h, h)
    max_nodes = 2 * LEAVES - 1
    left = np.full(max_nodes, -1)
    start, end, slot = (np.zeros(max_nodes, np.int64) for _ in range(3))
    sums, cand = np.zeros((max_nodes, 3)), np.full((max_nodes, 7), -np.inf)
    per_feature = np.empty((2, n_features, H.SPLIT_RECORD))
    prof.time("root sums", n, _root_sums, ghw_by_row, sums[0])
    end[0] = n
    common = (MIN_LEAF, MIN_HESS, per_feature, cand, channels, threads,
              T.PARALLEL_MIN_ROWS)  # fmt: skip
    prof.time("root histogram + scan", n * n_features, H.split_candidates, xb, rows, ghw_by_row,
              0, n, features, n_bins, hist_pool[0], hist_pool[0], sums, 0, -1, True, False,
              LAMBDA, *common)  # fmt: skip
    n_nodes, n_leaves, next_slot = 1, 1, 1
    while n_leaves < LEAVES:
        open_nodes = [nd for nd in range(n_nodes) if left[nd] == -1 and cand[nd, 0] > 0.0]
        if not open_nodes:
            break
        best = max(open_nodes, key=lambda nd: (cand[nd, 0], -nd))
        f, b, ml = int(cand[best, 1]), int(cand[best, 2]), np.uint8(cand[best, 6])
        s, e = start[best], end[best]
        if threads > 1 and e - s >= T.PARALLEL_PARTITION_ROWS:
            i = prof.time("partition", e - s, T._partition_parallel, xb[f], b, ml, rows, s, e,
                          left_tmp, rows_tmp, threads)  # fmt: skip
        else:
            i = prof.time("partition", e - s, T._partition, xb[f], b, ml, rows, s, e, rows_tmp)
        lc, rc = n_nodes, n_nodes + 1
        n_nodes += 2
        n_leaves += 1
        left[best] = lc
        start[lc], end[lc], start[rc], end[rc] = s, i, i, e
        sums[lc] = cand[best, 3:6]
        sums[rc] = sums[best] - cand[best, 3:6]
        if n_leaves >= LEAVES:
            break
        small, large = (lc, rc) if i - s <= e - i else (rc, lc)
        slot[large], slot[small] = slot[best], next_slot
        next_slot += 1
        m = end[small] - start[small]
        if threads > 1 and m >= T.PARALLEL_PARTITION_ROWS:
            prof.time("gather gradients", m, T._gather_parallel, ghw_by_row, rows, start[small],
                      end[small], ghw, threads)  # fmt: skip
        else:
            prof.time("gather gradients", m, T._gather, ghw_by_row, rows, start[small],
                      end[small], ghw)  # fmt: skip
        phase = f"child histograms + scans, density {_density_bucket(m, n)}"
        prof.time(phase, m * n_features, H.split_candidates, xb, rows, ghw, start[small],
                  end[small], features, n_bins, hist_pool[slot[small]], hist_pool[slot[large]],
                  sums, small, large, True, True, LAMBDA, *common)  # fmt: skip
    node_of_row = np.empty(n, np.uint16)
    for nd in range(n_nodes):
        if left[nd] == -1:
            prof.time("row -> leaf map", end[nd] - start[nd], T._assign_rows, rows, start[nd],
                      end[nd], nd, node_of_row)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trees", type=int, default=5)
    ap.add_argument("--task", choices=["regression", "binary"], default="regression")
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    X, y = make_data(args.rows, args.features, args.task)
    binner = BinMapper().fit(X)
    xb = binner.transform(X)
    if args.task == "regression":  # squared error at the mean: h = 1, g alone is gathered
        g, h = -(y - y.mean()), np.ones(len(y))
    else:  # log-loss at the base score: (g, h) are gathered
        p = y.mean()
        g, h = p - y, np.full(len(y), p * (1 - p))
    hist_pool = np.zeros((LEAVES, args.features, H.HIST_BINS, H.HIST_CHANNELS))
    load = os.getloadavg()[0]
    grow(xb, binner.n_bins, g, h, hist_pool, args.threads, Profile())  # compile, warm caches
    prof = Profile()
    for _ in range(args.trees):
        grow(xb, binner.n_bins, g, h, hist_pool, args.threads, prof)
    total = sum(prof.seconds.values())
    print(
        f"{args.rows} x {args.features} {args.task}, {args.threads} thread(s), {LEAVES} leaves, "
        f"{args.trees} trees; load 1-min {load:.2f} -> {os.getloadavg()[0]:.2f}\n"
    )
    print("| phase | ms per tree | share | rows (x features) per tree | ns per row (x feature) |")
    print("|---|---|---|---|---|")
    for phase in sorted(prof.seconds, key=lambda p: -prof.seconds[p]):
        sec, rows = prof.seconds[phase] / args.trees, prof.rows[phase] / args.trees
        print(f"| {phase} | {sec * 1e3:.2f} | {sec / (total / args.trees):.0%} | "
              f"{rows:,.0f} | {sec * 1e9 / max(rows, 1):.2f} |")  # fmt: skip
    print(f"| total | {total / args.trees * 1e3:.2f} | 100% | | |")


if __name__ == "__main__":
    main()
