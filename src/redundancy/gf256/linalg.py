"""Small-matrix algebra over GF(2^8): products, inverse, rank, solve, code-matrix builders.

These act on the generator and decoding matrices of codes (tens to hundreds of rows), not on data;
bulk data goes through :func:`redundancy.gf256.matmul`.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

from redundancy.errors import DecodeError, ParameterError
from redundancy.gf256.field import EXP, LOG, MUL_TABLE, ORDER, _as_u8, inv


def matmul_small(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix product over GF(2^8) for small matrices: (r x c) @ (c x s)."""
    a, b = _as_u8(np.atleast_2d(a)), _as_u8(np.atleast_2d(b))
    if a.shape[1] != b.shape[0]:
        raise ParameterError(f"shape mismatch: {a.shape} @ {b.shape}")
    products = MUL_TABLE[a[:, :, None], b[None, :, :]]  # r x c x s
    return (
        np.bitwise_xor.reduce(products, axis=1)
        if a.shape[1]
        else np.zeros((a.shape[0], b.shape[1]), np.uint8)
    )


def row_echelon(matrix: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form over GF(2^8) and the pivot columns."""
    m = _as_u8(matrix).copy()
    rows, cols = m.shape
    pivots: list[int] = []
    r = 0
    for c in range(cols):
        if r == rows:
            break
        nz = np.nonzero(m[r:, c])[0]
        if nz.size == 0:
            continue
        p = r + int(nz[0])
        if p != r:
            m[[r, p]] = m[[p, r]]
        m[r] = MUL_TABLE[inv(m[r, c]), m[r]]
        factors = m[:, c].copy()
        factors[r] = 0
        m ^= MUL_TABLE[factors[:, None], m[r][None, :]]
        pivots.append(c)
        r += 1
    return m, pivots


def rank(matrix: np.ndarray) -> int:
    """Rank over GF(2^8)."""
    return len(row_echelon(np.atleast_2d(matrix))[1])


def inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a square matrix; raises DecodeError if it is singular."""
    m = _as_u8(np.atleast_2d(matrix))
    n = m.shape[0]
    if m.shape != (n, n):
        raise ParameterError(f"inverse needs a square matrix, got shape {m.shape}")
    reduced, pivots = row_echelon(np.hstack([m, np.eye(n, dtype=np.uint8)]))
    if pivots[:n] != list(range(n)):
        raise DecodeError("matrix is singular over GF(2^8)")
    return reduced[:, n:]


def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve a @ x = b for square nonsingular a (b may have several columns)."""
    return matmul_small(inverse(a), np.asarray(b, dtype=np.uint8).reshape(len(a), -1))


def vandermonde(points: np.ndarray | list[int], columns: int) -> np.ndarray:
    """Rows (1, x, x^2, ..., x^(columns-1)) for each point x."""
    x = _as_u8(points)
    out = np.zeros((len(x), columns), dtype=np.uint8)
    for j in range(columns):
        out[:, j] = np.where(x == 0, 1 if j == 0 else 0, EXP[(LOG[x] * j) % ORDER])
    return out


def cauchy(xs: np.ndarray | list[int], ys: np.ndarray | list[int]) -> np.ndarray:
    """Cauchy matrix C[i, j] = 1 / (x_i + y_j); every square submatrix is nonsingular.

    Needs all x_i and y_j distinct from one another.
    """
    x, y = _as_u8(xs), _as_u8(ys)
    if len(set(x.tolist()) | set(y.tolist())) != len(x) + len(y):
        raise ParameterError("Cauchy points must be pairwise distinct across xs and ys")
    return inv(x[:, None] ^ y[None, :])


def is_superregular(matrix: np.ndarray, max_checks: int = 2_000_000) -> bool:
    """True if every square submatrix is nonsingular (the MDS condition for [I | P]).

    Exhaustive; raises ParameterError if the number of submatrices exceeds ``max_checks``.
    """
    m = _as_u8(np.atleast_2d(matrix))
    rows, cols = m.shape
    total = sum(comb(rows, s) * comb(cols, s) for s in range(1, min(rows, cols) + 1))
    if total > max_checks:
        raise ParameterError(f"{total} submatrices exceed max_checks={max_checks}")
    if np.any(m == 0):
        return False
    for size in range(2, min(rows, cols) + 1):
        for rs in combinations(range(rows), size):
            sub_rows = m[list(rs)]
            for cs in combinations(range(cols), size):
                if rank(sub_rows[:, list(cs)]) < size:
                    return False
    return True


def is_mds(generator: np.ndarray, max_checks: int = 200_000) -> bool:
    """True if every k rows of the n x k generator are independent (any k shards decode)."""
    g = _as_u8(generator)
    n, k = g.shape
    if comb(n, k) > max_checks:
        raise ParameterError(f"C({n},{k}) subsets exceed max_checks={max_checks}")
    return all(rank(g[list(rows)]) == k for rows in combinations(range(n), k))


def express(basis: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Coefficients c with c @ basis = target (rows of ``basis`` combined), or None if impossible.

    ``basis`` is b x k, ``target`` has length k. Used to find which shards rebuild another one.
    """
    rows = _as_u8(np.atleast_2d(basis))
    goal = _as_u8(target).reshape(-1)
    if rows.shape[1] != goal.size:
        raise ParameterError(f"basis has {rows.shape[1]} columns, target has {goal.size}")
    count = rows.shape[0]
    reduced, pivots = row_echelon(np.hstack([rows.T, goal[:, None]]))
    if count in pivots:  # the target column is a pivot: not in the row space
        return None
    coefficients = np.zeros(count, dtype=np.uint8)
    for row, column in enumerate(pivots):
        coefficients[column] = reduced[row, count]
    return coefficients


def independent_rows(matrix: np.ndarray) -> list[int]:
    """Indices of a maximal set of linearly independent rows (earlier rows preferred)."""
    return row_echelon(np.asarray(matrix, dtype=np.uint8).T)[1]


def left_solve(target: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """R with R @ basis = target (each target row a combination of basis rows).

    Raises DecodeError if some target row lies outside the row span of ``basis``.
    """
    basis = _as_u8(np.atleast_2d(basis))
    target = _as_u8(np.atleast_2d(target))
    keep = independent_rows(basis)
    result = np.zeros((target.shape[0], basis.shape[0]), dtype=np.uint8)
    if keep:
        cols = row_echelon(basis[keep])[1]
        square = np.ascontiguousarray(basis[keep][:, cols])
        result[:, keep] = matmul_small(target[:, cols], inverse(square))
    if not np.array_equal(matmul_small(result, basis), target):
        raise DecodeError("the target rows are not combinations of the basis rows")
    return result


def nonsingular_batch(matrices: np.ndarray) -> np.ndarray:
    """Which of a stack of square matrices are nonsingular over GF(2^8), all at once.

    Gaussian elimination runs on every matrix of the stack in lock-step (one numpy operation per
    pivot column), which checks tens of thousands of small matrices in milliseconds where
    :func:`rank` on each would take seconds.

    Parameters
    ----------
    matrices
        A (count, d, d) uint8 array.

    Returns
    -------
    numpy.ndarray
        A (count,) bool array, True where the matrix is invertible.

    Raises
    ------
    ParameterError
        If ``matrices`` is not a stack of square matrices.

    Examples
    --------
    >>> nonsingular_batch(np.array([[[1, 1], [1, 1]], [[1, 0], [1, 1]]], dtype=np.uint8))
    array([False,  True])
    """
    stack = _as_u8(matrices)
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ParameterError(f"expected a (count, d, d) stack of matrices, got {stack.shape}")
    work = stack.copy()
    count, size, _ = work.shape
    invertible = np.ones(count, dtype=bool)
    every = np.arange(count)
    inverses = inv(np.arange(1, 256, dtype=np.uint8))
    inverse_of = np.concatenate([np.zeros(1, dtype=np.uint8), inverses])  # 0 -> 0 (no pivot)
    for column in range(size):
        nonzero = work[:, column:, column] != 0
        invertible &= nonzero.any(axis=1)
        pivot = column + nonzero.argmax(axis=1)
        top = work[every, column].copy()
        work[every, column] = work[every, pivot]
        work[every, pivot] = top
        factors = MUL_TABLE[
            work[:, column + 1 :, column], inverse_of[work[:, column, column]][:, None]
        ]
        work[:, column + 1 :, :] ^= MUL_TABLE[factors[:, :, None], work[:, column][:, None, :]]
    return invertible
