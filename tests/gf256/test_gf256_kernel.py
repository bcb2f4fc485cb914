"""The bulk kernel: every backend agrees bit for bit with the table reference."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy import gf256
from redundancy.errors import ParameterError
from redundancy.gf256 import kernel

FAST_BACKENDS = [b for b in gf256.available_backends() if b != "numpy"]


@st.composite
def problems(draw):
    rows = draw(st.integers(0, 6))
    cols = draw(st.sampled_from([0, 1, 2, 3, 5, 10, 17, 64, 255]))
    length = draw(st.one_of(st.integers(0, 70), st.integers(0, 10_000)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (rows, cols), dtype=np.uint8)
    if draw(st.booleans()) and a.size:
        a[rng.random(a.shape) < 0.3] = 0  # sparse matrices, like LRC local parities
    src = rng.integers(0, 256, (cols, length), dtype=np.uint8)
    return a, src


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@given(problem=problems())
def test_backends_agree_with_reference(backend, problem):
    a, src = problem
    expected = gf256.matmul(a, src, backend="numpy")
    assert np.array_equal(gf256.matmul(a, src, backend=backend), expected)


def test_reference_matches_scalar_definition():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 4), dtype=np.uint8)
    src = rng.integers(0, 256, (4, 9), dtype=np.uint8)
    out = gf256.matmul(a, src, backend="numpy")
    for i in range(3):
        for w in range(9):
            acc = 0
            for j in range(4):
                acc ^= int(gf256.mul(a[i, j], src[j, w]))
            assert out[i, w] == acc


@pytest.mark.parametrize("backend", gf256.available_backends())
def test_unaligned_and_strided_inputs(backend):
    rng = np.random.default_rng(2)
    big = rng.integers(0, 256, (5, 4099), dtype=np.uint8)
    src = big[:, 3:4003]  # offset start, row stride not a multiple of 8
    a = rng.integers(0, 256, (3, 5), dtype=np.uint8)
    expected = gf256.matmul(a, np.ascontiguousarray(src), backend="numpy")
    assert np.array_equal(gf256.matmul(a, src, backend=backend), expected)


def test_buffers_and_out_argument():
    a = np.array([[1, 1], [1, 2]], dtype=np.uint8)
    out = np.empty((2, 3), dtype=np.uint8)
    result = gf256.matmul(a, [b"\x01\x02\x03", bytearray(b"\x04\x05\x06")], out=out)
    assert result is out
    assert out[0].tolist() == [5, 7, 5]
    assert out[1].tolist() == [gf256.mul(2, 4) ^ 1, gf256.mul(2, 5) ^ 2, gf256.mul(2, 6) ^ 3]


def test_bad_inputs_name_the_problem(monkeypatch):
    with pytest.raises(ParameterError, match="equal lengths"):
        gf256.matmul([[1, 1]], [b"ab", b"abc"])
    with pytest.raises(ParameterError, match="3 columns but 2"):
        gf256.matmul([[1, 1, 1]], [b"ab", b"cd"])
    with pytest.raises(ParameterError, match="unknown GF"):
        gf256.matmul([[1]], [b"a"], backend="gpu")
    with pytest.raises(ParameterError, match="out must be"):
        gf256.matmul([[1]], [b"a"], out=np.empty((2, 1), np.uint8))
    monkeypatch.setenv(kernel.ENV_VAR, "numpy")
    assert gf256.default_backend() == "numpy"
    monkeypatch.setenv(kernel.ENV_VAR, "bogus")
    with pytest.raises(ParameterError, match="bogus"):
        gf256.default_backend()


@pytest.mark.skipif("isal" not in gf256.available_backends(), reason="ISA-L not installed")
def test_isal_table_cache_is_reused():
    a = np.array([[3, 7], [9, 11]], dtype=np.uint8)
    assert kernel.isal_tables(a) is kernel.isal_tables(a.copy())


@given(problem=problems(), zeros=st.floats(0.0, 1.0), as_list=st.booleans())
def test_sparse_product_equals_dense(problem, zeros, as_list):
    """Skipping zero coefficients never changes the result (any pattern, incl. zero rows)."""
    a, src = problem
    a = a.copy()
    a[np.random.default_rng(a.size).random(a.shape) < zeros] = 0
    expected = gf256.matmul(a, src, backend="numpy")
    source = list(src) if as_list and len(src) else src  # no buffers: length unknown
    assert np.array_equal(gf256.matmul_sparse(a, source), expected)
    out = np.full(expected.shape, 0xAB, dtype=np.uint8)
    assert gf256.matmul_sparse(a, source, out=out) is out
    assert np.array_equal(out, expected)


def test_sparse_product_bad_inputs():
    with pytest.raises(ParameterError, match="columns"):
        gf256.matmul_sparse(np.ones((2, 3), np.uint8), np.zeros((2, 8), np.uint8))
    with pytest.raises(ParameterError, match="out must be"):
        gf256.matmul_sparse(np.ones((2, 2), np.uint8), np.zeros((2, 8), np.uint8), out=np.empty(3))


def test_sparse_product_groups_nearly_dense_rows_but_not_disjoint_blocks():
    """One pass over shared sources beats two; disjoint blocks stay separate products."""
    nearly_dense = np.ones((6, 22), np.uint8)
    nearly_dense[5, 8] = 0  # the LRC global merge: one zero would cost a second pass
    assert kernel._product_groups(nearly_dense) == [(list(range(6)), list(range(22)))]
    blocks = np.zeros((4, 20), np.uint8)
    blocks[:2, :10] = blocks[2:, 10:] = 1
    assert kernel._product_groups(blocks) == [
        ([0, 1], list(range(10))),
        ([2, 3], list(range(10, 20))),
    ]
    zero_row = np.zeros((2, 3), np.uint8)
    zero_row[1] = 1
    assert kernel._product_groups(zero_row) == [([0], []), ([1], [0, 1, 2])]
