"""Which erasure patterns a code recovers, the most any code of an LRC's shape can, and an LRC
construction that reaches that most (a maximally recoverable LRC).

A pattern (a set of lost shards) of a systematic [n, k] code is recoverable when the surviving
rows of the generator have rank k. Every recoverable pattern extends to a recoverable pattern of
exactly m = n - k shards (drop surviving rows outside a basis), so it is enough to test the
patterns of size m and close downwards. For a pattern of size m, the survivors are the intact data
rows (identity) and m - |D| parity rows, where D is the set of lost data shards: the pattern is
recoverable exactly when the square matrix of surviving parity rows restricted to the columns D
is nonsingular.

For an LRC(k, l, g) (l XOR local parities over disjoint groups of data, g global parities over
all data), a pattern of size m is recoverable by *some* code of that shape (generic coefficients)
exactly when every surviving local parity's group has lost at least one data shard: the square
matrix then has a perfect matching of nonzero entries (each surviving local parity to a lost
shard of its group, the global parities to the rest), and a generic matrix with a perfect
matching is nonsingular; otherwise a surviving local parity is a combination of surviving data.
That is the maximum an LRC of this shape can recover, computed without any field arithmetic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

from redundancy import gf256
from redundancy.errors import ParameterError

MAX_PATTERNS = 100_000  # patterns of m = n - k lost shards enumerated for one code
SEARCH_STEPS = 20_000  # coefficient changes tried by the maximally recoverable LRC search


def data_groups(k: int, l: int) -> list[list[int]]:  # noqa: E741 - the papers' letter
    """The l local groups of data shards of an LRC: 0..k-1 split as evenly as possible, in order.

    Parameters
    ----------
    k, l
        Data shards and local groups (1 <= l <= k).

    Returns
    -------
    list of list of int
        Data shard indices of each group (the first k % l groups have one more).

    Examples
    --------
    >>> data_groups(7, 2)
    [[0, 1, 2, 3], [4, 5, 6]]
    """
    return [[int(i) for i in part] for part in np.array_split(np.arange(k), l)]


def _check_pattern_count(n: int, m: int, what: str) -> None:
    patterns = comb(n, m)
    if patterns > MAX_PATTERNS:
        raise ParameterError(
            f"{what} has {patterns} erasure patterns of {m} lost shards to check "
            f"(allowed: <= {MAX_PATTERNS}); use fewer shards or parities"
        )


def _close_downwards(top: list[int], m: int) -> list[int]:
    """Counts per size 0..m of the subsets of the size-m bitmask patterns in ``top``."""
    counts = [0] * (m + 1)
    level = set(top)
    for size in range(m, -1, -1):
        counts[size] = len(level)
        level = {pattern & ~(1 << bit) for pattern in level for bit in _bits(pattern)}
    return counts


def _bits(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def recovered_by_size(generator: np.ndarray) -> list[int]:
    """How many patterns of each size a systematic code recovers, by exhaustive rank checks.

    Parameters
    ----------
    generator
        The n x k systematic generator over GF(2^8) (first k rows the identity).

    Returns
    -------
    list of int
        ``counts[s]`` = number of sets of s lost shards from which the data can be rebuilt,
        for s = 0..n-k (no pattern of more than n - k lost shards is recoverable).

    Raises
    ------
    ParameterError
        If C(n, n-k) exceeds ``MAX_PATTERNS``.

    Examples
    --------
    >>> from redundancy.erasure.codes import ReedSolomon
    >>> recovered_by_size(ReedSolomon(2, 2).generator)  # MDS: every pattern of <= 2 lost
    [1, 4, 6]
    """
    g = np.asarray(generator, dtype=np.uint8)
    n, k = g.shape
    m = n - k
    _check_pattern_count(n, m, f"a code with n={n}, k={k}")
    by_size: dict[int, tuple[list[int], list[list[int]], list[list[int]]]] = {}
    recovered: list[int] = []
    for lost in combinations(range(n), m):
        mask = sum(1 << i for i in lost)
        data_lost = [i for i in lost if i < k]
        if not data_lost:
            recovered.append(mask)
            continue
        survivors = [p for p in range(k, n) if p not in lost]
        masks, lost_rows, parity_rows = by_size.setdefault(len(data_lost), ([], [], []))
        masks.append(mask)
        lost_rows.append(data_lost)
        parity_rows.append(survivors)
    for masks, lost_rows, parity_rows in by_size.values():
        columns, rows = np.array(lost_rows), np.array(parity_rows)
        good = gf256.nonsingular_batch(g[rows[:, :, None], columns[:, None, :]])
        recovered += [mask for mask, ok in zip(masks, good.tolist(), strict=True) if ok]
    return _close_downwards(recovered, m)


def _generic_top_patterns(k: int, l: int, g: int) -> list[tuple[int, ...]]:  # noqa: E741
    """Patterns of m = l + g lost shards that some LRC of this shape recovers (module doc)."""
    group_of = {i: j for j, group in enumerate(data_groups(k, l)) for i in group}
    n = k + l + g
    found = []
    for lost in combinations(range(n), l + g):
        hit = {group_of[i] for i in lost if i < k}
        locals_alive = [j for j in range(l) if k + j not in lost]
        if all(j in hit for j in locals_alive):
            found.append(lost)
    return found


def lrc_maximum_by_size(k: int, l: int, g: int) -> list[int]:  # noqa: E741
    """The most patterns of each size any LRC(k, l, g) of this shape can recover.

    Parameters
    ----------
    k, l, g
        Data shards, local groups (one XOR parity each), global parities.

    Returns
    -------
    list of int
        ``counts[s]`` for s = 0..l+g: patterns of s lost shards recoverable by a code with
        generic global coefficients (see the module docstring for why this is the maximum).

    Raises
    ------
    ParameterError
        If there are more than ``MAX_PATTERNS`` patterns to enumerate.

    Examples
    --------
    >>> lrc_maximum_by_size(12, 2, 2)[4]  # Azure's LRC(12,2,2): 1568 of the 1820 four-loss sets
    1568
    """
    _check_pattern_count(k + l + g, l + g, f"LRC({k},{l},{g})")
    top = [sum(1 << i for i in lost) for lost in _generic_top_patterns(k, l, g)]
    return _close_downwards(top, l + g)


@dataclass
class _Patterns:
    """The generically recoverable size-m patterns that lose data, grouped by data lost."""

    lost: list[np.ndarray]  # per group: (count, d) lost data columns
    alive: list[np.ndarray]  # per group: (count, d) surviving parity rows (0-based in P)
    by_column: list[list[np.ndarray]]  # [group][column]: patterns that lose that data shard

    @classmethod
    def build(cls, k: int, l: int, g: int) -> _Patterns:  # noqa: E741
        grouped: dict[int, tuple[list[list[int]], list[list[int]]]] = {}
        for lost in _generic_top_patterns(k, l, g):
            data_lost = [i for i in lost if i < k]
            if data_lost:
                columns, rows = grouped.setdefault(len(data_lost), ([], []))
                columns.append(data_lost)
                rows.append([p - k for p in range(k, k + l + g) if p not in lost])
        lost_arrays = [np.array(columns) for columns, _ in grouped.values()]
        alive_arrays = [np.array(rows) for _, rows in grouped.values()]
        by_column = [
            [np.flatnonzero((columns == c).any(axis=1)) for c in range(k)]
            for columns in lost_arrays
        ]
        return cls(lost_arrays, alive_arrays, by_column)

    def failing(self, parity: np.ndarray, group: int, subset: np.ndarray | None) -> np.ndarray:
        """Bool per pattern of ``group`` (or of ``subset`` of it): the code does not recover it."""
        columns, rows = self.lost[group], self.alive[group]
        if subset is not None:
            columns, rows = columns[subset], rows[subset]
        return ~gf256.nonsingular_batch(parity[rows[:, :, None], columns[:, None, :]])


def maximally_recoverable_globals(k: int, l: int, g: int) -> tuple[np.ndarray, int]:  # noqa: E741
    """Global parity coefficients for LRC(k, l, g) that recover every recoverable pattern.

    Construction (version 2 of the LRC generator; it must never change, since stores written
    with it are decoded by rebuilding it): start from the Cauchy rows 1 / (x_i + y_j) with
    x_i = k + i, y_j = j; then, with ``random.Random(f"lrc:{k},{l},{g}")``, repeatedly set one
    coefficient (row ``int(r() * g)``, column ``int(r() * k)``, value ``1 + int(r() * 255)``)
    and keep the change unless more patterns fail; stop when none fails or after
    ``SEARCH_STEPS`` tries. Failures are counted exactly over every pattern of l + g lost shards
    that some code of this shape recovers.

    Parameters
    ----------
    k, l, g
        Data shards, local groups, global parities.

    Returns
    -------
    tuple of (numpy.ndarray, int)
        The g x k global rows, and how many generically recoverable patterns of l + g lost
        shards they still fail (0: maximally recoverable).

    Raises
    ------
    ParameterError
        If there are more than ``MAX_PATTERNS`` patterns to check.

    Examples
    --------
    >>> rows, failing = maximally_recoverable_globals(6, 2, 2)
    >>> rows.shape, failing
    ((2, 6), 0)
    """
    _check_pattern_count(k + l + g, l + g, f"LRC({k},{l},{g})")
    parity = np.zeros((l + g, k), dtype=np.uint8)
    for j, group in enumerate(data_groups(k, l)):
        parity[j, group] = 1
    if g == 0:
        return parity[l:], 0
    parity[l:] = gf256.cauchy(list(range(k, k + g)), list(range(k)))
    patterns = _Patterns.build(k, l, g)
    fails = [patterns.failing(parity, group, None) for group in range(len(patterns.lost))]
    failing = sum(int(f.sum()) for f in fails)
    draw = random.Random(f"lrc:{k},{l},{g}").random
    for _ in range(SEARCH_STEPS):
        if failing == 0:
            break
        row, column, value = l + int(draw() * g), int(draw() * k), 1 + int(draw() * 255)
        old = parity[row, column]
        parity[row, column] = value
        touched = [patterns.by_column[group][column] for group in range(len(fails))]
        updates = [patterns.failing(parity, group, subset) for group, subset in enumerate(touched)]
        change = sum(
            int(new.sum()) - int(fails[group][subset].sum())
            for group, (subset, new) in enumerate(zip(touched, updates, strict=True))
        )
        if change <= 0:
            failing += change
            for group, (subset, new) in enumerate(zip(touched, updates, strict=True)):
                fails[group][subset] = new
        else:
            parity[row, column] = old
    return parity[l:].copy(), failing
