"""Vandermonde-style parity families over GF(2^8) whose codes are verified MDS.

Parity j of every code in a family is sum_i theta_j^i d_i: the initial [k_I + r_I, k_I] code uses
the first k_I rows and r_I columns of V = [theta_j^i], the final code the first k_F rows and r_F
columns. Shared thetas are what make conversion cheap (theta_j^(t k_I) shifts codeword t's parity
to its place in the merged one). Such matrices are not always MDS, so the thetas are searched
greedily and every square submatrix of both parity blocks is checked to be nonsingular.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import combinations, permutations

import numpy as np

from redundancy import gf256
from redundancy.erasure.codes import LinearCode
from redundancy.errors import ParameterError

_FAST_DET_MAX = 6  # batched permutation expansion up to 6 x 6 (720 terms)


def batched_det(blocks: np.ndarray) -> np.ndarray:
    """Determinants of a stack of s x s matrices over GF(2^8) (signs vanish in characteristic 2)."""
    count, s, _ = blocks.shape
    if s > _FAST_DET_MAX:
        return np.array([1 if gf256.rank(b) == s else 0 for b in blocks], dtype=np.uint8)
    total = np.zeros(count, dtype=np.uint8)
    for perm in permutations(range(s)):
        term = blocks[:, 0, perm[0]]
        for row in range(1, s):
            term = gf256.MUL_TABLE[term, blocks[:, row, perm[row]]]
        total ^= term
    return total


def _new_column_ok(columns: np.ndarray, candidate: np.ndarray, rows: int) -> bool:
    """True if every square submatrix of [columns | candidate][:rows] using candidate is regular."""
    if np.any(candidate[:rows] == 0):
        return False
    existing = columns.shape[1]
    for size in range(2, min(rows, existing + 1) + 1):
        row_sets = np.array(list(combinations(range(rows), size)), dtype=np.intp)
        for others in combinations(range(existing), size - 1):
            block = np.concatenate([columns[:rows, list(others)], candidate[:rows, None]], axis=1)
            if np.any(batched_det(block[row_sets]) == 0):
                return False
    return True


def power_column(theta: int, rows: int) -> np.ndarray:
    """(1, theta, theta^2, ..., theta^(rows-1))."""
    return gf256.vandermonde([theta], rows)[0]


@cache
def search_thetas(shapes: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """Greedy theta search: for each (k, r) in ``shapes``, V[:k, :r] must be superregular.

    Candidates are 1, 2, 2^2, ... in order, so the result is deterministic. Raises
    ParameterError when no theta extends the family (parameters too large for GF(2^8)).
    """
    rows_max = max(k for k, _ in shapes)
    width = max(r for _, r in shapes)
    chosen: list[int] = []
    columns = np.zeros((rows_max, 0), dtype=np.uint8)
    for j in range(width):
        limits = [k for k, r in shapes if r > j]
        for e in range(255):
            theta = int(gf256.EXP[e])
            if theta in chosen:
                continue
            column = power_column(theta, rows_max)
            if all(_new_column_ok(columns, column, k) for k in limits):
                chosen.append(theta)
                columns = np.concatenate([columns, column[:, None]], axis=1)
                break
        else:
            raise ParameterError(
                f"no verified Vandermonde family over GF(2^8) for (k, r) in {list(shapes)}: "
                f"parity {j} has no theta; use smaller k or r"
            )
    return tuple(chosen)


def parity_rows(thetas: Sequence[int], k: int) -> np.ndarray:
    """The len(thetas) x k parity matrix [theta_j^i]."""
    return gf256.vandermonde(list(thetas), k)


def family_code(thetas: Sequence[int], k: int, r: int, name: str) -> LinearCode:
    """Systematic [k + r, k] code with parity j = sum_i theta_j^i d_i."""
    if r > len(thetas):
        raise ParameterError(f"r={r} is out of range (allowed: 0..{len(thetas)} for this family)")
    generator = np.vstack([np.eye(k, dtype=np.uint8), parity_rows(thetas[:r], k)])
    return LinearCode(generator, name=name)


def verify_mds(code: LinearCode) -> bool:
    """Every square submatrix of the parity block nonsingular (checked exhaustively)."""
    parity = code.parity_matrix
    columns = np.zeros((code.k, 0), dtype=np.uint8)
    for j in range(parity.shape[0]):
        if not _new_column_ok(columns, parity[j], code.k):
            return False
        columns = np.concatenate([columns, parity[j][:, None]], axis=1)
    return True
