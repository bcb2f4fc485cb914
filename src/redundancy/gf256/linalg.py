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
    """Multiply two small matrices over GF(2^8): (r x c) @ (c x s).

    Parameters
    ----------
    a : numpy.ndarray
        An r x c matrix of elements in 0..255 (a vector is taken as one row).
    b : numpy.ndarray
        A c x s matrix.

    Returns
    -------
    numpy.ndarray
        The r x s uint8 product.

    Raises
    ------
    ParameterError
        If the inner dimensions differ or an element is outside 0..255.

    Examples
    --------
    >>> matmul_small([[1, 1], [1, 2]], [[1, 1], [1, 2]])
    array([[0, 3],
           [3, 5]], dtype=uint8)
    """
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
    """Reduce a matrix to reduced row echelon form over GF(2^8).

    Parameters
    ----------
    matrix : numpy.ndarray
        A 2-D array of elements in 0..255 (not modified).

    Returns
    -------
    reduced : numpy.ndarray
        The reduced row echelon form (uint8, same shape).
    pivots : list of int
        The pivot column of each nonzero row, in order.

    Raises
    ------
    ParameterError
        If an element is outside 0..255.

    Examples
    --------
    >>> reduced, pivots = row_echelon(np.array([[1, 1, 1], [1, 1, 0]]))
    >>> reduced
    array([[1, 1, 0],
           [0, 0, 1]], dtype=uint8)
    >>> pivots
    [0, 2]
    """
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
    """Rank of a matrix over GF(2^8).

    Parameters
    ----------
    matrix : numpy.ndarray
        A 2-D array (or a vector) of elements in 0..255.

    Returns
    -------
    int
        The number of linearly independent rows.

    Raises
    ------
    ParameterError
        If an element is outside 0..255.

    Examples
    --------
    >>> rank(np.array([[1, 2], [2, 4]]))  # the second row is 2 times the first
    1
    """
    return len(row_echelon(np.atleast_2d(matrix))[1])


def inverse(matrix: np.ndarray) -> np.ndarray:
    """Invert a square matrix over GF(2^8).

    Parameters
    ----------
    matrix : numpy.ndarray
        An n x n array of elements in 0..255.

    Returns
    -------
    numpy.ndarray
        The n x n uint8 inverse.

    Raises
    ------
    ParameterError
        If the matrix is not square.
    DecodeError
        If the matrix is singular.

    Examples
    --------
    >>> a = np.array([[1, 1], [1, 2]], dtype=np.uint8)
    >>> inverse(a)
    array([[245, 244],
           [244, 244]], dtype=uint8)
    >>> matmul_small(a, inverse(a))
    array([[1, 0],
           [0, 1]], dtype=uint8)
    """
    m = _as_u8(np.atleast_2d(matrix))
    n = m.shape[0]
    if m.shape != (n, n):
        raise ParameterError(f"inverse needs a square matrix, got shape {m.shape}")
    reduced, pivots = row_echelon(np.hstack([m, np.eye(n, dtype=np.uint8)]))
    if pivots[:n] != list(range(n)):
        raise DecodeError("matrix is singular over GF(2^8)")
    return reduced[:, n:]


def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``a @ x = b`` over GF(2^8) for a square nonsingular ``a``.

    Parameters
    ----------
    a : numpy.ndarray
        An n x n nonsingular matrix.
    b : numpy.ndarray
        The right-hand side: n values, or an n x s matrix for s systems at once.

    Returns
    -------
    numpy.ndarray
        x as an n x s uint8 matrix (s = 1 for a vector ``b``).

    Raises
    ------
    ParameterError
        If ``a`` is not square.
    DecodeError
        If ``a`` is singular.

    Examples
    --------
    >>> solve(np.array([[1, 1], [1, 2]]), [3, 5])
    array([[1],
           [2]], dtype=uint8)
    """
    return matmul_small(inverse(a), np.asarray(b, dtype=np.uint8).reshape(len(a), -1))


def vandermonde(points: np.ndarray | list[int], columns: int) -> np.ndarray:
    """Vandermonde matrix: the row (1, x, x^2, ..., x^(columns-1)) for each point x.

    Parameters
    ----------
    points : array_like of int
        The evaluation points, in 0..255 (distinct points give independent rows).
    columns : int
        Number of columns.

    Returns
    -------
    numpy.ndarray
        A len(points) x columns uint8 matrix.

    Raises
    ------
    ParameterError
        If a point is outside 0..255.

    Examples
    --------
    >>> vandermonde([1, 2, 3], 3)
    array([[1, 1, 1],
           [1, 2, 4],
           [1, 3, 5]], dtype=uint8)
    """
    x = _as_u8(points)
    out = np.zeros((len(x), columns), dtype=np.uint8)
    for j in range(columns):
        out[:, j] = np.where(x == 0, 1 if j == 0 else 0, EXP[(LOG[x] * j) % ORDER])
    return out


def cauchy(xs: np.ndarray | list[int], ys: np.ndarray | list[int]) -> np.ndarray:
    """Cauchy matrix C[i, j] = 1 / (x_i + y_j); every square submatrix is nonsingular.

    Parameters
    ----------
    xs : array_like of int
        Row points in 0..255.
    ys : array_like of int
        Column points in 0..255, all distinct from one another and from the ``xs``.

    Returns
    -------
    numpy.ndarray
        A len(xs) x len(ys) uint8 matrix.

    Raises
    ------
    ParameterError
        If the points are not pairwise distinct across ``xs`` and ``ys``.

    Examples
    --------
    >>> c = cauchy([1, 2], [3, 4])
    >>> c
    array([[142, 167],
           [  1, 122]], dtype=uint8)
    >>> is_superregular(c)
    True
    """
    x, y = _as_u8(xs), _as_u8(ys)
    if len(set(x.tolist()) | set(y.tolist())) != len(x) + len(y):
        raise ParameterError("Cauchy points must be pairwise distinct across xs and ys")
    return inv(x[:, None] ^ y[None, :])


def is_superregular(matrix: np.ndarray, max_checks: int = 2_000_000) -> bool:
    """Check that every square submatrix is nonsingular (the MDS condition for [I | P]).

    The check is exhaustive, so it is bounded by ``max_checks``.

    Parameters
    ----------
    matrix : numpy.ndarray
        A 2-D array of elements in 0..255.
    max_checks : int, default 2_000_000
        Most square submatrices to examine.

    Returns
    -------
    bool
        True if every square submatrix (every element included) is nonsingular.

    Raises
    ------
    ParameterError
        If the number of square submatrices exceeds ``max_checks``.

    Examples
    --------
    >>> is_superregular(cauchy([1, 2], [3, 4]))
    True
    >>> is_superregular(np.array([[1, 1], [1, 1]]))
    False
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
    """Check that every k rows of an n x k generator are independent (any k shards decode).

    Parameters
    ----------
    generator : numpy.ndarray
        The n x k generator matrix of a code.
    max_checks : int, default 200_000
        Most k-row subsets to examine.

    Returns
    -------
    bool
        True if the code is MDS.

    Raises
    ------
    ParameterError
        If C(n, k) exceeds ``max_checks``.

    Examples
    --------
    >>> systematic = np.vstack([np.eye(2, dtype=np.uint8), cauchy([1, 2], [3, 4])])
    >>> is_mds(systematic)
    True
    >>> is_mds(np.array([[1, 0], [0, 1], [1, 0]]))  # rows 0 and 2 are equal
    False
    """
    g = _as_u8(generator)
    n, k = g.shape
    if comb(n, k) > max_checks:
        raise ParameterError(f"C({n},{k}) subsets exceed max_checks={max_checks}")
    return all(rank(g[list(rows)]) == k for rows in combinations(range(n), k))


def express(basis: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Express a row as a combination of basis rows: c with c @ basis = target.

    Used to find which shards rebuild another one.

    Parameters
    ----------
    basis : numpy.ndarray
        A b x k matrix whose rows are combined.
    target : numpy.ndarray
        A row of length k.

    Returns
    -------
    numpy.ndarray or None
        The b uint8 coefficients, or None if ``target`` is outside the row span of ``basis``.

    Raises
    ------
    ParameterError
        If the lengths disagree.

    Examples
    --------
    >>> basis = np.array([[1, 0, 0], [0, 1, 0]])
    >>> express(basis, [5, 7, 0])
    array([5, 7], dtype=uint8)
    >>> express(basis, [0, 0, 1]) is None
    True
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
    """Indices of a maximal set of linearly independent rows (earlier rows preferred).

    Parameters
    ----------
    matrix : numpy.ndarray
        A 2-D array of elements in 0..255.

    Returns
    -------
    list of int
        Row indices in increasing order.

    Examples
    --------
    >>> independent_rows(np.array([[1, 2], [2, 4], [0, 1]]))
    [0, 2]
    """
    return row_echelon(np.asarray(matrix, dtype=np.uint8).T)[1]


def left_solve(target: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Solve R @ basis = target: write each target row as a combination of basis rows.

    Parameters
    ----------
    target : numpy.ndarray
        A t x k matrix (a vector is one row).
    basis : numpy.ndarray
        A b x k matrix; dependent rows get zero coefficients.

    Returns
    -------
    numpy.ndarray
        The t x b uint8 matrix R.

    Raises
    ------
    DecodeError
        If some target row lies outside the row span of ``basis``.

    Examples
    --------
    >>> left_solve(np.array([[3, 5]]), np.array([[1, 0], [1, 1]]))
    array([[6, 5]], dtype=uint8)
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
    matrices : numpy.ndarray
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
