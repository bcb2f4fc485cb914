"""Stage 1 placement: split a model's layers over S stages of a node multiset, maximise the slowest.

A multiset is given as integer counts per distinct node config; a stage is a sub-multiset whose
nodes are data-parallel copies holding the same ``j`` layers, so its throughput is
``sum_c n_c * T_hat_j(c)``. Two exact solvers:

* ``place_dp`` / ``place_above`` (default): binary search over the finite set of candidate
  throughputs; for a candidate T each sub-multiset G can hold at most J(G, T) layers, and a
  dynamic program over (sub-multiset left, stages left) maximises the layers the S stages can
  hold. T is feasible iff that maximum reaches L. ``place_above`` only looks for values above a
  floor (what the template search already has): two bounds reject most stage counts without a
  DP, and the search starts at the smallest candidate above the floor. Numba; microseconds.
* ``place_ilp``: the paper's placement ILP with integer counts per config per stage (scipy.milp /
  HiGHS); kept as the reference the tests compare against.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numba import njit
from scipy.optimize import LinearConstraint, milp

NEG = -(10**9)
GAIN = 1e-12  # a placement must beat a floor by this relative margin (float noise)


@dataclass(frozen=True)
class Placement:
    """Best layout: throughput, per-stage config counts (aligned with the input), layers."""

    throughput: float
    stage_counts: tuple[tuple[int, ...], ...]
    stage_layers: tuple[int, ...]

    @property
    def stages(self) -> int:
        """Number of pipeline stages."""
        return len(self.stage_layers)


@njit(cache=True)
def _digits(counts: np.ndarray) -> np.ndarray:
    k = counts.shape[0]
    total = 1
    for c in range(k):
        total *= counts[c] + 1
    out = np.zeros((total, k), dtype=np.int64)
    for idx in range(total):
        rest = idx
        for c in range(k):
            out[idx, c] = rest % (counts[c] + 1)
            rest //= counts[c] + 1
    return out


@njit(cache=True)
def _layers_at(tp_group: np.ndarray, target: float, layers: int) -> np.ndarray:
    groups = tp_group.shape[0]
    cap = np.zeros(groups, dtype=np.int64)
    for g in range(1, groups):
        n = 0
        while n < layers and tp_group[g, n + 1] >= target:
            n += 1
        cap[g] = n
    return cap


@njit(cache=True)
def _pairs(digits: np.ndarray) -> np.ndarray:
    """All (G, sub) with sub a nonempty proper sub-multiset of G (mixed-radix indices)."""
    groups, k = digits.shape
    out = np.zeros((groups * groups, 2), dtype=np.int64)
    n = 0
    for g in range(1, groups):
        for sub in range(1, g):
            inside = True
            for c in range(k):
                if digits[sub, c] > digits[g, c]:
                    inside = False
                    break
            if inside:
                out[n, 0] = g
                out[n, 1] = sub
                n += 1
    return out[:n]


@njit(cache=True)
def _dp(cap, pairs, groups, stages, choice):
    """best[s, G]: most layers G's nodes hold as exactly s stages each holding >= 1 layer."""
    best = np.full((stages + 1, groups), NEG, dtype=np.int64)
    for g in range(1, groups):
        if cap[g] >= 1:
            best[1, g] = cap[g]
    for s in range(2, stages + 1):
        for p in range(pairs.shape[0]):
            g, sub = pairs[p, 0], pairs[p, 1]
            if best[1, sub] == NEG or best[s - 1, g - sub] == NEG:
                continue
            value = best[1, sub] + best[s - 1, g - sub]
            if value > best[s, g]:
                best[s, g] = value
                choice[s, g] = sub
    return best


@njit(cache=True)
def _group_rates(digits: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """tp_group[G, j] = sum_c digits[G, c] tp[c, j]: sub-multiset G as one stage of j layers."""
    groups, k = digits.shape
    out = np.zeros((groups, tp.shape[1]))
    for g in range(groups):
        for c in range(k):
            if digits[g, c]:
                for j in range(tp.shape[1]):
                    out[g, j] += digits[g, c] * tp[c, j]
    return out


@njit(cache=True)
def _bounds(counts: np.ndarray, tp: np.ndarray, layers: int, floor: float):
    """(capacity bound on T, whether T > floor is possible at all) for one stage count.

    A stage of nodes K holding j layers at throughput T has j <= sum_{k in K} j min(1, t_k / T)
    (t_k = T_hat_j of node k), so L <= sum_k h_k(T) with h_k(T) = max_j j min(1, T_hat_j / T),
    non-increasing in T: if the sum at ``floor`` is below L, no placement beats ``floor``.
    Capacity: L T <= sum_k max_j j T_hat_j.
    """
    cap, reach = 0.0, 0.0
    for c in range(counts.shape[0]):
        best_cap, best_reach = 0.0, 0.0
        for j in range(1, layers + 1):
            best_cap = max(best_cap, j * tp[c, j])
            share = (1.0 if tp[c, j] > 0 else 0.0) if floor <= 0 else min(1.0, tp[c, j] / floor)
            best_reach = max(best_reach, j * share)
        cap += counts[c] * best_cap
        reach += counts[c] * best_reach
    return cap / layers, reach >= layers * (1 - 1e-9)


@njit(cache=True)
def _search(counts, tp, layers, stages, digits, pairs, floor, choice):
    """Largest throughput above ``floor`` that exactly ``stages`` stages reach (``floor`` if none).

    Binary search over the candidate values in (floor, capacity bound], smallest tried first.
    """
    upper, possible = _bounds(counts, tp, layers, floor)
    if not possible or upper <= floor:
        return floor
    groups = digits.shape[0]
    tp_group = _group_rates(digits, tp)
    flat = tp_group[1:, 1:].ravel()
    values = np.unique(flat[(flat > floor) & (flat <= upper * (1 + 1e-9))])
    if values.shape[0] == 0:
        return floor
    cap = _layers_at(tp_group, values[0], layers)
    if _dp(cap, pairs, groups, stages, choice)[stages, groups - 1] < layers:
        return floor
    lo, hi, found = 1, values.shape[0] - 1, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        cap = _layers_at(tp_group, values[mid], layers)
        if _dp(cap, pairs, groups, stages, choice)[stages, groups - 1] >= layers:
            found = mid
            lo = mid + 1
        else:
            hi = mid - 1
    return values[found]


@njit(cache=True)
def _layout(counts, tp, layers, stages, digits, pairs, value, choice):
    """Stage counts and layers of an S-stage placement reaching ``value`` (a feasible one)."""
    groups = digits.shape[0]
    tp_group = _group_rates(digits, tp)
    cap = _layers_at(tp_group, value, layers)
    _dp(cap, pairs, groups, stages, choice)
    stage_counts = np.zeros((stages, counts.shape[0]), dtype=np.int64)
    stage_layers = np.zeros(stages, dtype=np.int64)
    g = groups - 1
    for s in range(stages, 1, -1):
        sub = choice[s, g]
        stage_counts[s - 1] = digits[sub]
        stage_layers[s - 1] = cap[sub]
        g -= sub
    stage_counts[0] = digits[g]
    stage_layers[0] = cap[g]
    excess = stage_layers.sum() - layers
    while excess > 0:  # fewer layers never lowers a stage's throughput
        s = np.argmax(stage_layers)
        stage_layers[s] -= 1
        excess -= 1
    return stage_counts, stage_layers


@njit(cache=True)
def _select(tables: np.ndarray, stages: int, point: int, distinct: np.ndarray) -> np.ndarray:
    """tables[stages, point] restricted to the configs ``distinct`` (rows in that order)."""
    out = np.empty((distinct.shape[0], tables.shape[3]))
    for d in range(distinct.shape[0]):
        out[d] = tables[stages, point, distinct[d]]
    return out


@njit(cache=True)
def _best_above(counts, distinct, tables, caps, floor, only):
    """Best placement over stage counts and step budgets (``only`` > 0: that stage count alone)
    if it beats ``floor``; ``counts`` are node counts of the configs ``distinct``.

    ``tables[S, g]`` rates each config at stage count S and budget g, ``caps[S, g, c]`` =
    max_j j tables[S, g, c, j]. (S, g) pairs are tried by decreasing capacity bound
    sum_c counts_c caps[S, g, c] / L, each search starting above the best so far, until the bound
    cannot beat it. Returns (value, stages, stage_counts, stage_layers); stages = 0 when nothing
    beats floor.
    """
    layers = tables.shape[3] - 1
    points = tables.shape[1]
    nodes = counts.sum()
    top = min(nodes, tables.shape[0] - 1, layers)
    digits = _digits(counts)
    pairs = _pairs(digits)
    choice = np.zeros((top + 1, digits.shape[0]), dtype=np.int64)
    bound = np.zeros(top * points)
    for s in range(1, top + 1):
        for g in range(points):
            total = 0.0
            for d in range(distinct.shape[0]):
                total += counts[d] * caps[s, g, distinct[d]]
            bound[(s - 1) * points + g] = -total / layers
    best, best_stages, best_point = floor, 0, 0
    for option in np.argsort(bound, kind="mergesort"):
        s, g = option // points + 1, option % points
        if only > 0 and s != only:
            continue
        above = best * (1 + GAIN)
        if -bound[option] <= above:
            break
        tp = _select(tables, s, g, distinct)
        value = _search(counts, tp, layers, s, digits, pairs, above, choice)
        if value > above:
            best, best_stages, best_point = value, s, g
    if best_stages == 0:
        empty = np.zeros((0, counts.shape[0]), dtype=np.int64)
        return floor, 0, empty, np.zeros(0, dtype=np.int64)
    tp = _select(tables, best_stages, best_point, distinct)
    stage_counts, stage_layers = _layout(
        counts, tp, layers, best_stages, digits, pairs, best, choice
    )
    return best, best_stages, stage_counts, stage_layers


@njit(cache=True, nogil=True)
def _place_range(
    rows, tables, caps, floors, values, stages, stage_counts, stage_layers, start, stop
):
    """``_best_above`` for rows ``start..stop-1`` of node counts, written into the outputs."""
    for i in range(start, stop):
        distinct = np.flatnonzero(rows[i])
        value, used, counts, layers = _best_above(
            rows[i][distinct], distinct, tables, caps, floors[i], 0
        )
        values[i] = value
        stages[i] = used
        for s in range(used):
            stage_layers[i, s] = layers[s]
            for d in range(distinct.shape[0]):
                stage_counts[i, s, distinct[d]] = counts[s, d]


def _as_tables(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tables[S, g, c, j], caps[S, g, c]) from rates per stage count, with or without the
    step-budget axis g (``operating_tables`` or ``throughput_table``)."""
    tables = np.asarray(tables, dtype=np.float64)
    if tables.ndim == 3:
        tables = tables[:, None]
    tables = np.ascontiguousarray(tables)
    layers = np.arange(tables.shape[3], dtype=np.float64)
    return tables, np.ascontiguousarray((tables * layers).max(axis=3))


def in_threads(kernel, n: int, workers: int, *arrays) -> None:
    """Run ``kernel(*arrays, start, stop)`` over 0..n-1 in ``workers`` threads (the kernels
    release the GIL), or in one call when ``workers`` is 1."""
    if workers <= 1 or n < 2 * workers:
        kernel(*arrays, 0, n)
        return
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, n, 4 * workers + 1).astype(np.int64)
    with ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(kernel, *arrays, int(a), int(b)) for a, b in pairwise(bounds) if b > a]
        for job in jobs:
            job.result()


def place_rows(rows: np.ndarray, tables: np.ndarray, floors: np.ndarray, workers: int = 1):
    """``_best_above`` for each row of node counts (over all of ``tables``' configs).

    Returns values (floor where nothing beats it), stage counts, stage_counts[row, stage, config]
    and stage_layers[row, stage] (rows of the first ``stages[row]`` stages are filled).
    ``workers`` threads share the rows (one compiled kernel either way: a first plan on a fresh
    install compiles no parallel variant).
    """
    n, k = rows.shape
    tables, caps = _as_tables(tables)
    depth = tables.shape[0] - 1
    values = np.zeros(n)
    stages = np.zeros(n, dtype=np.int64)
    stage_counts = np.zeros((n, depth, k), dtype=np.int64)
    stage_layers = np.zeros((n, depth), dtype=np.int64)
    arrays = (rows, tables, caps, floors, values, stages, stage_counts, stage_layers)
    in_threads(_place_range, n, workers, *arrays)
    return values, stages, stage_counts, stage_layers


def _as_placement(value: float, counts: np.ndarray, layers: np.ndarray) -> Placement:
    order = sorted(range(len(layers)), key=lambda s: (-int(layers[s]), tuple(counts[s])))
    return Placement(
        throughput=float(value),
        stage_counts=tuple(tuple(int(x) for x in counts[s]) for s in order),
        stage_layers=tuple(int(layers[s]) for s in order),
    )


def stage_throughput(tp: np.ndarray, counts: tuple[int, ...], layers: int) -> float:
    """Throughput of one stage: ``sum_c counts[c] * T_hat_layers(c)``."""
    return float(np.dot(np.asarray(counts, dtype=float), tp[:, layers]))


def place_dp(counts: list[int] | np.ndarray, tp: np.ndarray, stages: int) -> Placement:
    """Exact bottleneck placement of ``tp.shape[1]-1`` layers on ``counts`` nodes in ``stages``.

    Parameters
    ----------
    counts : list of int or numpy.ndarray
        Nodes per config.
    tp : numpy.ndarray
        ``tp[c, j]``: req/s of one node of config c holding j layers (column 0 unused).
    stages : int
        Number of pipeline stages.

    Returns
    -------
    Placement
        The largest bottleneck throughput, per-stage node counts and layers (zero placement when
        infeasible).

    Examples
    --------
    >>> import numpy as np
    >>> tp = np.array([[0, 3.0, 1.0, 0.5], [0, 2.0, 2.0, 1.0]])  # 3 layers, 2 configs
    >>> place_dp([1, 1], tp, 2)
    Placement(throughput=2.0, stage_counts=((0, 1), (1, 0)), stage_layers=(2, 1))
    """
    tables = np.zeros((stages + 1, *tp.shape))
    tables[stages] = tp
    return place_above(counts, tables, 0.0, only=stages)


def place_ilp(counts: list[int] | np.ndarray, tp: np.ndarray, stages: int) -> Placement:
    """Reference: the placement ILP with integer node counts per config per stage (HiGHS).

    Parameters
    ----------
    counts : list of int or numpy.ndarray
        Nodes per config.
    tp : numpy.ndarray
        ``tp[c, j]``: req/s of one node of config c holding j layers (column 0 unused).
    stages : int
        Number of pipeline stages.

    Returns
    -------
    Placement
        As ``place_dp`` (equal throughput; the layout may differ among optima).

    Examples
    --------
    >>> import numpy as np
    >>> tp = np.array([[0, 3.0, 1.0, 0.5], [0, 2.0, 2.0, 1.0]])
    >>> place_ilp([1, 1], tp, 2).throughput
    2.0
    """
    counts = np.asarray(counts, dtype=np.int64)
    k, layers = len(counts), tp.shape[1] - 1
    if stages > counts.sum() or stages > layers:
        return Placement(0.0, (), ())
    n_x, n_n, n_w = stages * layers, stages * k, stages * layers * k
    total = 1 + n_x + n_n + n_w

    def x(s: int, j: int) -> int:  # stage s holds j+1 layers
        return 1 + s * layers + j

    def n(s: int, c: int) -> int:  # nodes of config c in stage s
        return 1 + n_x + s * k + c

    def w(s: int, j: int, c: int) -> int:  # = x(s, j) * n(s, c)
        return 1 + n_x + n_n + (s * layers + j) * k + c

    rows, lower, upper = [], [], []

    def add(coefs: dict[int, float], lo: float, hi: float) -> None:
        row = np.zeros(total)
        for index, value in coefs.items():
            row[index] = value
        rows.append(row)
        lower.append(lo)
        upper.append(hi)

    for s in range(stages):
        add({x(s, j): 1 for j in range(layers)}, 1, 1)
        add({n(s, c): 1 for c in range(k)}, 1, np.inf)
        coefs = {0: 1.0}
        for j in range(layers):
            for c in range(k):
                coefs[w(s, j, c)] = -tp[c, j + 1]
                big = float(counts[c])
                add({w(s, j, c): 1, x(s, j): -big}, -np.inf, 0)
                add({w(s, j, c): 1, n(s, c): -1}, -np.inf, 0)
                add({w(s, j, c): 1, n(s, c): -1, x(s, j): -big}, -big, np.inf)
        add(coefs, -np.inf, 0)
    for c in range(k):
        add({n(s, c): 1 for s in range(stages)}, counts[c], counts[c])
    add({x(s, j): j + 1 for s in range(stages) for j in range(layers)}, layers, layers)
    objective = np.zeros(total)
    objective[0] = -1.0
    upper_bounds = np.full(total, np.inf)
    upper_bounds[1 : 1 + n_x] = 1
    integrality = np.ones(total)
    integrality[0] = 0
    result = milp(
        objective,
        constraints=LinearConstraint(np.array(rows), lower, upper),
        integrality=integrality,
        bounds=(np.zeros(total), upper_bounds),
    )
    if result.x is None or -result.fun <= 1e-12:
        return Placement(0.0, (), ())
    sol = np.round(result.x).astype(np.int64)
    stage_counts = np.array([[sol[n(s, c)] for c in range(k)] for s in range(stages)])
    stage_layers = np.array(
        [next(j + 1 for j in range(layers) if sol[x(s, j)]) for s in range(stages)]
    )
    return _as_placement(-result.fun, stage_counts, stage_layers)


def place_above(
    counts: list[int] | np.ndarray, tables: np.ndarray, floor: float, only: int = 0
) -> Placement:
    """Best placement over stage counts (``tables[S]`` = T_hat for budget SLO/S) if it beats
    ``floor``, else a zero placement; ``only`` > 0 restricts to that stage count."""
    counts = np.asarray(counts, dtype=np.int64)
    tables, caps = _as_tables(tables)
    distinct = np.arange(len(counts), dtype=np.int64)
    value, stages, stage_counts, stage_layers = _best_above(
        counts, distinct, tables, caps, float(floor), only
    )
    if stages == 0:
        return Placement(0.0, (), ())
    return _as_placement(value, stage_counts, stage_layers)


def best_placement(counts: list[int] | np.ndarray, tables: np.ndarray) -> Placement:
    """Best over stage counts S = 1..|nodes| (``tables[S]`` = T_hat for budget SLO/S).

    Parameters
    ----------
    counts : list of int or numpy.ndarray
        Nodes per config.
    tables : numpy.ndarray
        ``tables[S, c, j]`` (``perf.throughput_table``) or ``tables[S, g, c, j]`` with a step
        budget axis g (``perf.operating_tables``); the best over S (and g) is returned.

    Returns
    -------
    Placement
        The best placement over stage counts (zero placement when nothing fits).

    Examples
    --------
    >>> import numpy as np
    >>> tables = np.zeros((3, 2, 4))
    >>> tables[1] = [[0, 3.0, 1.0, 0.5], [0, 2.0, 2.0, 1.0]]  # one stage: both hold all 3
    >>> tables[2] = [[0, 3.0, 1.0, 0.5], [0, 2.0, 2.0, 1.0]]
    >>> best_placement([1, 1], tables)
    Placement(throughput=2.0, stage_counts=((0, 1), (1, 0)), stage_layers=(2, 1))
    """
    return place_above(counts, tables, 0.0)
