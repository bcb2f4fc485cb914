"""Field axioms and small-matrix algebra over GF(2^8), checked against a bit-level definition."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy import gf256
from redundancy.errors import DecodeError, ParameterError

byte = st.integers(0, 255)
nonzero = st.integers(1, 255)


def slow_mul(a: int, b: int) -> int:
    """Carry-less multiply then reduce by 0x11d: the definition of the field."""
    product = 0
    for bit in range(8):
        if b >> bit & 1:
            product ^= a << bit
    for bit in range(15, 7, -1):
        if product >> bit & 1:
            product ^= 0x11D << (bit - 8)
    return product


def test_mul_table_matches_definition():
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    expected = np.vectorize(slow_mul)(a, b)
    assert np.array_equal(gf256.MUL_TABLE, expected)


def test_generator_2_has_order_255():
    assert len(set(gf256.EXP[:255].tolist())) == 255
    assert gf256.EXP[0] == 1 and gf256.EXP[1] == 2 and gf256.EXP[8] == 0x1D


@given(byte, byte, byte)
def test_field_axioms(a, b, c):
    assert gf256.mul(a, gf256.add(b, c)) == gf256.add(gf256.mul(a, b), gf256.mul(a, c))
    assert gf256.mul(gf256.mul(a, b), c) == gf256.mul(a, gf256.mul(b, c))
    assert gf256.mul(a, b) == gf256.mul(b, a)


@given(nonzero, byte)
def test_div_inverts_mul(a, b):
    assert gf256.div(gf256.mul(b, a), a) == b
    assert gf256.mul(a, gf256.inv(a)) == 1
    assert gf256.exp(gf256.log(a)) == a


@given(byte, st.integers(-3, 600))
def test_power_is_repeated_multiplication(a, n):
    if a == 0 and n < 0:
        with pytest.raises(ParameterError):
            gf256.power(a, n)
        return
    expected = 1
    base = int(gf256.inv(a)) if n < 0 else a
    for _ in range(abs(n)):
        expected = slow_mul(expected, base)
    assert gf256.power(a, n) == expected


def test_zero_has_no_inverse_or_log():
    with pytest.raises(ParameterError, match="inverse"):
        gf256.inv(0)
    with pytest.raises(ParameterError, match="log"):
        gf256.log([3, 0])
    with pytest.raises(ParameterError, match=r"0\.\.255"):
        gf256.mul(256, 1)


@given(st.integers(1, 12), st.randoms(use_true_random=False))
def test_inverse_of_random_cauchy_matrix(size, rnd):
    points = rnd.sample(range(256), 2 * size)
    m = gf256.cauchy(points[:size], points[size:])
    product = gf256.matmul_small(m, gf256.inverse(m))
    assert np.array_equal(product, np.eye(size, dtype=np.uint8))
    assert gf256.rank(m) == size


def test_singular_matrix_raises_and_rank_counts():
    m = np.array([[1, 2, 3], [2, 4, 6], [0, 1, 1]], dtype=np.uint8)
    m[1] = gf256.mul(2, m[0])
    assert gf256.rank(m) == 2
    with pytest.raises(DecodeError, match="singular"):
        gf256.inverse(m)


@given(st.integers(1, 8), st.integers(1, 3), st.randoms(use_true_random=False))
def test_solve(size, columns, rnd):
    points = rnd.sample(range(256), 2 * size)
    a = gf256.cauchy(points[:size], points[size:])
    x = np.array([[rnd.randrange(256) for _ in range(columns)] for _ in range(size)], np.uint8)
    assert np.array_equal(gf256.solve(a, gf256.matmul_small(a, x)), x)


def test_vandermonde_rows_are_powers():
    v = gf256.vandermonde([0, 1, 2, 3], 4)
    assert v[0].tolist() == [1, 0, 0, 0]
    assert v[1].tolist() == [1, 1, 1, 1]
    for j in range(4):
        assert v[3, j] == gf256.power(3, j)


def test_superregularity_and_mds_checks():
    c = gf256.cauchy(list(range(4, 8)), list(range(4)))
    assert gf256.is_superregular(c)
    generator = np.vstack([np.eye(4, dtype=np.uint8), c])
    assert gf256.is_mds(generator)
    # A parity matrix with two equal columns has a singular 2x2 submatrix: not MDS.
    bad = c.copy()
    bad[:, 1] = bad[:, 0]
    assert not gf256.is_superregular(bad)
    assert not gf256.is_mds(np.vstack([np.eye(4, dtype=np.uint8), bad]))
    with pytest.raises(ParameterError, match="distinct"):
        gf256.cauchy([1, 2], [2, 3])


@given(st.integers(1, 6), st.integers(1, 6), st.randoms(use_true_random=False))
def test_left_solve_recovers_combinations_and_rejects_outsiders(rows, cols, rnd):
    basis = np.array([[rnd.randrange(256) for _ in range(cols)] for _ in range(rows)], np.uint8)
    weights = np.array([[rnd.randrange(256) for _ in range(rows)] for _ in range(2)], np.uint8)
    target = gf256.matmul_small(weights, basis)
    solved = gf256.left_solve(target, basis)
    assert np.array_equal(gf256.matmul_small(solved, basis), target)
    independent = gf256.independent_rows(basis)
    assert len(independent) == gf256.rank(basis)
    if gf256.rank(basis) < cols:  # some vector lies outside the span: it must be refused
        pivots = gf256.row_echelon(basis)[1]
        outsider = np.zeros((1, cols), np.uint8)
        outsider[0, next(c for c in range(cols) if c not in pivots)] = 1
        with pytest.raises(DecodeError, match="not combinations"):
            gf256.left_solve(outsider, basis)


def slow_singular(matrix: list[list[int]]) -> bool:
    """Gaussian elimination with the bit-level multiply; inverse by brute force."""
    rows = [list(r) for r in matrix]
    size = len(rows)
    for col in range(size):
        pivot = next((r for r in range(col, size) if rows[r][col]), None)
        if pivot is None:
            return True
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inverse = next(x for x in range(1, 256) if slow_mul(rows[col][col], x) == 1)
        for r in range(col + 1, size):
            factor = slow_mul(rows[r][col], inverse)
            rows[r] = [a ^ slow_mul(factor, b) for a, b in zip(rows[r], rows[col], strict=True)]
    return False


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_nonsingular_batch_matches_bit_level_elimination(size):
    rng = np.random.default_rng(size)
    # Sparse entries make singular matrices common enough to test both answers.
    stack = rng.integers(0, 256, (300, size, size), dtype=np.uint8)
    stack[rng.random(stack.shape) < 0.5] = 0
    stack[:5, :, 0] = 0  # a zero column
    expected = [not slow_singular(m.tolist()) for m in stack]
    assert gf256.nonsingular_batch(stack).tolist() == expected
    assert 0 < sum(expected) < len(expected)


def test_nonsingular_batch_rejects_non_square_stacks():
    with pytest.raises(ParameterError, match="stack"):
        gf256.nonsingular_batch(np.zeros((2, 2, 3), dtype=np.uint8))
