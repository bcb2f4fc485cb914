"""The one bulk primitive, ``dst = A . src`` over GF(2^8), with three interchangeable backends.

- ``isal``: Intel ISA-L (``libisal.so.2``) through ctypes; tables built once per matrix and cached.
- ``numba``: a compiled kernel with no table lookups. For a coefficient c, the products c * 2^b
  (b = 0..7) are precomputed; a 64-bit word x of source bytes then contributes
  XOR_b mask_b(x) & (c * 2^b), where mask_b(x) has 0xFF in each byte lane whose bit b is set
  (((x >> b) & 0x0101..01) * 255, computed as a shift and a subtract, which cannot borrow across
  lanes). The eight masks of a chunk are computed once per source row and shared by every output
  row. Work is split into 2 KiB chunks across threads.
- ``numpy``: a plain 256 x 256 table reference, the ground truth in tests.

The backend is chosen automatically (isal, then numba, then numpy) and can be forced with the
environment variable ``REDUNDANCY_GF_BACKEND`` or the ``backend`` argument.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache

import numpy as np

from redundancy.errors import ParameterError
from redundancy.gf256.field import MUL_TABLE, _as_u8

BACKENDS = ("isal", "numba", "numpy")
ENV_VAR = "REDUNDANCY_GF_BACKEND"
_LANES = np.uint64(0x0101010101010101)
_CHUNK_WORDS = 256  # 2 KiB of each source row per chunk (the 8 bit planes stay in L1)
_ISAL_MAX_LEN = 1 << 30  # ec_encode_data takes an int length


Source = np.ndarray | Sequence[bytes | bytearray | memoryview | np.ndarray]


def as_rows(src: Source) -> np.ndarray | list[np.ndarray]:
    """Validate ``src`` without copying: a 2-D uint8 array, or a list of equal-length 1-D rows."""
    if isinstance(src, np.ndarray):
        arr = src if src.ndim == 2 else np.atleast_2d(src)
        if arr.dtype != np.uint8:
            raise ParameterError(f"source must be uint8, got {arr.dtype}")
        return arr
    rows = [np.frombuffer(b, dtype=np.uint8) if not isinstance(b, np.ndarray) else b for b in src]
    if any(r.dtype != np.uint8 or r.ndim != 1 for r in rows):
        raise ParameterError("source buffers must be bytes-like or 1-D uint8 arrays")
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        raise ParameterError(f"source buffers must have equal lengths, got {sorted(lengths)}")
    return rows


def as_matrix_source(src: Source) -> np.ndarray:
    """Normalise ``src`` (a (c, L) uint8 array or c equal-length buffers) to a 2-D uint8 array."""
    rows = as_rows(src)
    if isinstance(rows, np.ndarray):
        return rows
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.uint8)


# --------------------------------------------------------------------------- numpy reference
def _matmul_numpy(a: np.ndarray, src: np.ndarray, out: np.ndarray) -> None:
    out[:] = 0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if a[i, j]:
                out[i] ^= MUL_TABLE[a[i, j]][src[j]]


# --------------------------------------------------------------------------- numba
@cache
def _numba_kernel():
    import numba

    @numba.njit(parallel=True, cache=True, nogil=True)
    def kernel(coeffs: np.ndarray, src: np.ndarray, dst: np.ndarray, chunk: int) -> None:
        # coeffs[i, j, b] = (a[i, j] * 2^b) broadcast to all 8 byte lanes of a uint64.
        rows, cols = coeffs.shape[0], coeffs.shape[1]
        words = src.shape[1]
        lanes = np.uint64(0x0101010101010101)
        n_chunks = (words + chunk - 1) // chunk
        for ci in numba.prange(n_chunks):
            lo = ci * chunk
            hi = min(lo + chunk, words)
            n = hi - lo
            # planes[b][w]: 0xFF in every byte lane of word w whose bit b is set, else 0x00.
            planes = np.empty((8, chunk), np.uint64)
            for i in range(rows):
                dst[i, lo:hi] = 0
            for j in range(cols):
                s = src[j, lo:hi]
                for b in range(8):
                    plane = planes[b]
                    shift = np.uint64(b)
                    for w in range(n):
                        bits = (s[w] >> shift) & lanes
                        plane[w] = (bits << np.uint64(8)) - bits
                p0, p1, p2, p3 = planes[0], planes[1], planes[2], planes[3]
                p4, p5, p6, p7 = planes[4], planes[5], planes[6], planes[7]
                for i in range(rows):
                    c0, c1, c2, c3 = (
                        coeffs[i, j, 0],
                        coeffs[i, j, 1],
                        coeffs[i, j, 2],
                        coeffs[i, j, 3],
                    )
                    c4, c5, c6, c7 = (
                        coeffs[i, j, 4],
                        coeffs[i, j, 5],
                        coeffs[i, j, 6],
                        coeffs[i, j, 7],
                    )
                    if c0 == 0:
                        continue
                    d = dst[i, lo:hi]
                    for w in range(n):
                        d[w] ^= (
                            (p0[w] & c0)
                            ^ (p1[w] & c1)
                            ^ (p2[w] & c2)
                            ^ (p3[w] & c3)
                            ^ (p4[w] & c4)
                            ^ (p5[w] & c5)
                            ^ (p6[w] & c6)
                            ^ (p7[w] & c7)
                        )

    return kernel


def _numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def _bit_coefficients(a: np.ndarray) -> np.ndarray:
    """coeffs[i, j, b] = a[i, j] * 2^b in GF(2^8), repeated in all 8 byte lanes of a uint64."""
    powers = np.array([1 << b for b in range(8)], dtype=np.uint8)
    products = MUL_TABLE[a[:, :, None], powers[None, None, :]].astype(np.uint64)
    return products * _LANES


def _matmul_numba(a: np.ndarray, src: np.ndarray, out: np.ndarray) -> None:
    length = src.shape[1]
    words = length // 8
    coeffs = _bit_coefficients(a)
    aligned = src.flags.c_contiguous and out.flags.c_contiguous and length % 8 == 0
    if aligned and src.ctypes.data % 8 == 0 and out.ctypes.data % 8 == 0:
        _numba_kernel()(coeffs, src.view(np.uint64), out.view(np.uint64), _CHUNK_WORDS)
        return
    if words:
        body_src = np.ascontiguousarray(src[:, : words * 8]).view(np.uint64)
        body_dst = np.empty((a.shape[0], words), dtype=np.uint64)
        _numba_kernel()(coeffs, body_src, body_dst, _CHUNK_WORDS)
        out[:, : words * 8] = body_dst.view(np.uint8)
    if length % 8:
        _matmul_numpy(a, src[:, words * 8 :], out[:, words * 8 :])


# --------------------------------------------------------------------------- ISA-L
@cache
def isal_library() -> ctypes.CDLL | None:
    """The loaded ISA-L shared library, or None if it is not installed."""
    for find in (lambda: "libisal.so.2", lambda: ctypes.util.find_library("isal")):
        name = find()  # find_library runs ldconfig: only when the usual name is absent
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.ec_init_tables.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        lib.ec_init_tables.restype = None
        lib.ec_encode_data.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int] + [
            ctypes.c_void_p
        ] * 3
        lib.ec_encode_data.restype = None
        return lib
    return None


_ISAL_TABLES: OrderedDict[tuple[bytes, tuple[int, int]], np.ndarray] = OrderedDict()
_ISAL_CACHE_SIZE = 256


def isal_tables(a: np.ndarray) -> np.ndarray:
    """ISA-L's expanded multiplication tables for matrix ``a`` (cached, LRU)."""
    key = (a.tobytes(), a.shape)
    tables = _ISAL_TABLES.get(key)
    if tables is None:
        rows, cols = a.shape
        tables = np.zeros(32 * rows * cols, dtype=np.uint8)
        matrix = np.ascontiguousarray(a)
        isal_library().ec_init_tables(cols, rows, matrix.ctypes.data, tables.ctypes.data)
        _ISAL_TABLES[key] = tables
        if len(_ISAL_TABLES) > _ISAL_CACHE_SIZE:
            _ISAL_TABLES.popitem(last=False)
    else:
        _ISAL_TABLES.move_to_end(key)
    return tables


def _row_pointers(rows: np.ndarray | list[np.ndarray], offset: int) -> ctypes.Array:
    addresses = [row.ctypes.data + offset for row in rows]
    return (ctypes.c_void_p * len(addresses))(*addresses)


def _matmul_isal(a: np.ndarray, src: np.ndarray | list[np.ndarray], out: np.ndarray) -> None:
    if any(row.strides[0] != 1 for row in src) or out.strides[1] != 1:
        contiguous_out = np.empty(out.shape, dtype=np.uint8)
        _matmul_isal(a, [np.ascontiguousarray(row) for row in src], contiguous_out)
        out[:] = contiguous_out
        return
    lib, tables = isal_library(), isal_tables(a)
    rows, cols = a.shape
    length = out.shape[1]
    for start in range(0, length, _ISAL_MAX_LEN):
        size = min(_ISAL_MAX_LEN, length - start)
        srcs, dsts = _row_pointers(src, start), _row_pointers(out, start)
        lib.ec_encode_data(size, cols, rows, tables.ctypes.data, srcs, dsts)


# --------------------------------------------------------------------------- dispatch
_IMPLEMENTATIONS = {"isal": _matmul_isal, "numba": _matmul_numba, "numpy": _matmul_numpy}


@cache
def available_backends() -> list[str]:
    """List the backends usable on this machine, fastest first.

    Returns
    -------
    list of str
        A subset of ``("isal", "numba", "numpy")``; ``"numpy"`` is always there.

    Examples
    --------
    >>> available_backends()[-1]
    'numpy'
    """
    found = []
    if isal_library() is not None:
        found.append("isal")
    if _numba_available():
        found.append("numba")
    found.append("numpy")
    return found


def default_backend() -> str:
    """Name the backend ``matmul`` uses when none is named.

    Returns
    -------
    str
        ``$REDUNDANCY_GF_BACKEND`` if set, else the fastest available backend.

    Raises
    ------
    ParameterError
        If ``$REDUNDANCY_GF_BACKEND`` names an unknown or unavailable backend.

    Examples
    --------
    >>> default_backend() in available_backends()
    True
    """
    forced = os.environ.get(ENV_VAR)
    if forced:
        return _check_backend(forced)
    return available_backends()[0]


def _check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ParameterError(f"unknown GF(2^8) backend {name!r}; choose from {list(BACKENDS)}")
    if name not in available_backends():
        raise ParameterError(f"GF(2^8) backend {name!r} is not available on this machine")
    return name


def _operands(
    a: np.ndarray, src: Source, out: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | list[np.ndarray], np.ndarray]:
    """Validated matrix, sources and output (allocated when None) of ``dst = a . src``."""
    matrix = _as_u8(np.atleast_2d(a))
    data = as_rows(src)
    rows, cols = matrix.shape
    if len(data) != cols:
        raise ParameterError(f"matrix has {cols} columns but {len(data)} source buffers given")
    length = data.shape[1] if isinstance(data, np.ndarray) else len(data[0]) if data else 0
    if out is None:
        out = np.empty((rows, length), dtype=np.uint8)
    elif out.shape != (rows, length) or out.dtype != np.uint8:
        raise ParameterError(f"out must be a ({rows}, {length}) uint8 array")
    return matrix, data, out


def matmul(
    a: np.ndarray,
    src: Source,
    out: np.ndarray | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """Multiply a small matrix by a block of data: ``dst = a . src`` over GF(2^8).

    Each output row i is the sum over j of ``a[i, j] * src[j]``, byte by byte; this is how every
    code encodes, decodes and repairs shards.

    Parameters
    ----------
    a : numpy.ndarray
        An r x c coefficient matrix of elements in 0..255.
    src : numpy.ndarray or sequence of bytes-like
        c equal-length buffers, or a (c, L) uint8 array.
    out : numpy.ndarray, optional
        An (r, L) uint8 array to write the result into (allocated when None).
    backend : {"isal", "numba", "numpy"}, optional
        Kernel to use (default: :func:`default_backend`); all give identical bytes.

    Returns
    -------
    numpy.ndarray
        The (r, L) uint8 result (``out`` itself when given).

    Raises
    ------
    ParameterError
        If the shapes disagree, ``out`` has the wrong shape or dtype, or ``backend`` is unknown
        or unavailable.

    Examples
    --------
    >>> src = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    >>> matmul(np.array([[1, 1], [1, 2]]), src, backend="numpy")
    array([[ 5,  7,  5],
           [ 9,  8, 15]], dtype=uint8)
    """
    matrix, data, out = _operands(a, src, out)
    (rows, cols), length = matrix.shape, out.shape[1]
    if rows == 0 or length == 0:
        return out
    if cols == 0:
        out[:] = 0
        return out
    name = _check_backend(backend) if backend else default_backend()
    if name != "isal" and not isinstance(data, np.ndarray):
        data = np.stack(data)
    _IMPLEMENTATIONS[name](matrix, data, out)
    return out


# Relative cost of one pass over a source buffer vs one coefficient applied to it, measured
# with the ISA-L kernel (a dense r x s product costs about s * (2 + r), r <= 6 rows per pass).
_PASS_COST = 2
_ROWS_PER_PASS = 6


def _product_cost(rows: int, sources: int) -> int:
    return sources * (_PASS_COST * -(-rows // _ROWS_PER_PASS) + rows)


def _product_groups(matrix: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """Split the rows of ``matrix`` into (rows, source columns) products of least modelled cost.

    Rows with the same nonzero columns share one product; two products merge (their zeros then
    cost a multiply) when one pass over the union of their sources is cheaper than two passes.
    """
    by_support: dict[tuple[int, ...], list[int]] = {}
    for r, row in enumerate(matrix):
        by_support.setdefault(tuple(np.flatnonzero(row).tolist()), []).append(r)
    groups = [(rows, set(support)) for support, rows in by_support.items() if support]
    while len(groups) > 1:
        best, pair = 0, None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                (ri, si), (rj, sj) = groups[i], groups[j]
                merged = _product_cost(len(ri) + len(rj), len(si | sj))
                saving = _product_cost(len(ri), len(si)) + _product_cost(len(rj), len(sj)) - merged
                if saving > best:
                    best, pair = saving, (i, j)
        if pair is None:
            break
        i, j = pair
        (ri, si), (rj, sj) = groups[i], groups.pop(j)
        groups[i] = (sorted(ri + rj), si | sj)
    zero = [rows for support, rows in by_support.items() if not support]
    return [(rows, []) for rows in zero] + [(rows, sorted(cols)) for rows, cols in groups]


def matmul_sparse(
    a: np.ndarray,
    src: Source,
    out: np.ndarray | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """Compute :func:`matmul`, skipping zero coefficients where that saves time.

    The backends multiply zeros like any coefficient, so a sparse matrix (e.g. a convertible
    merge, whose new parities each read one old parity per stripe) otherwise costs its dense
    size; but each separate product is another pass over its sources, so nearly-dense rows are
    computed together (see ``_product_groups``).

    Parameters
    ----------
    a : numpy.ndarray
        An r x c coefficient matrix of elements in 0..255.
    src : numpy.ndarray or sequence of bytes-like
        c equal-length buffers, or a (c, L) uint8 array.
    out : numpy.ndarray, optional
        An (r, L) uint8 array to write the result into (allocated when None).
    backend : {"isal", "numba", "numpy"}, optional
        Kernel to use (default: :func:`default_backend`).

    Returns
    -------
    numpy.ndarray
        The (r, L) uint8 result, byte for byte what :func:`matmul` returns.

    Raises
    ------
    ParameterError
        As :func:`matmul`.

    Examples
    --------
    >>> matmul_sparse(np.array([[1, 0], [0, 0]]), [b"ab", b"cd"])
    array([[97, 98],
           [ 0,  0]], dtype=uint8)
    """
    matrix, data, out = _operands(a, src, out)
    for group, support in _product_groups(matrix):
        if not support:
            out[group] = 0
            continue
        sub = matrix[np.ix_(group, support)]
        sources = [data[c] for c in support]
        if group == list(range(group[0], group[-1] + 1)):
            matmul(sub, sources, out=out[group[0] : group[-1] + 1], backend=backend)
        else:
            out[group] = matmul(sub, sources, backend=backend)
    return out
