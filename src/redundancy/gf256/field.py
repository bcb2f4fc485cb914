"""GF(2^8) arithmetic on numpy uint8 arrays: polynomial 0x11d, generator 2.

The same field as ISA-L, Jerasure, zfec and klauspost/reedsolomon, so shards interoperate.
Functions accept Python ints or numpy arrays and broadcast like numpy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from redundancy.errors import ParameterError

POLYNOMIAL = 0x11D
GENERATOR = 2
ORDER = 255  # size of the multiplicative group

ArrayLike = int | npt.ArrayLike


def _build_tables() -> tuple[np.ndarray, np.ndarray]:
    exp = np.zeros(2 * ORDER, dtype=np.uint8)
    log = np.zeros(256, dtype=np.int64)
    value = 1
    for power in range(ORDER):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= POLYNOMIAL
    exp[ORDER:] = exp[:ORDER]
    return exp, log


EXP, LOG = _build_tables()


def _build_mul_table() -> np.ndarray:
    a = np.arange(256)
    table = EXP[(LOG[a][:, None] + LOG[a][None, :]) % ORDER]
    table[0, :] = 0
    table[:, 0] = 0
    return table.astype(np.uint8)


MUL_TABLE = _build_mul_table()
"""MUL_TABLE[a, b] = a * b in GF(2^8)."""


def _as_u8(x: ArrayLike) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.uint8:
        if np.any((arr < 0) | (arr > 255)):
            raise ParameterError("GF(2^8) elements must be integers in 0..255")
        arr = arr.astype(np.uint8)
    return arr


def add(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Add field elements: a + b, which equals a - b and a XOR b.

    Parameters
    ----------
    a, b : int or array_like
        Elements in 0..255; arrays broadcast like numpy.

    Returns
    -------
    numpy.ndarray
        The uint8 sum (a 0-d array for two ints).

    Raises
    ------
    ParameterError
        If an element is outside 0..255.

    Examples
    --------
    >>> int(add(0x53, 0xCA))
    153
    >>> add([1, 2, 3], 3)
    array([2, 1, 0], dtype=uint8)
    """
    return np.bitwise_xor(_as_u8(a), _as_u8(b))


def mul(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Multiply field elements: a * b, element-wise.

    Parameters
    ----------
    a, b : int or array_like
        Elements in 0..255; arrays broadcast like numpy.

    Returns
    -------
    numpy.ndarray
        The uint8 product.

    Raises
    ------
    ParameterError
        If an element is outside 0..255.

    Examples
    --------
    >>> int(mul(0x53, 0xCA))
    143
    >>> mul([1, 2, 3], 2)
    array([2, 4, 6], dtype=uint8)
    """
    return MUL_TABLE[_as_u8(a), _as_u8(b)]


def inv(a: ArrayLike) -> np.ndarray:
    """Multiplicative inverse 1 / a, element-wise.

    Parameters
    ----------
    a : int or array_like
        Nonzero elements in 1..255.

    Returns
    -------
    numpy.ndarray
        The uint8 inverses.

    Raises
    ------
    ParameterError
        If an element is 0 (no inverse) or outside 0..255.

    Examples
    --------
    >>> int(inv(0x53))
    140
    >>> int(mul(0x53, inv(0x53)))
    1
    """
    arr = _as_u8(a)
    if np.any(arr == 0):
        raise ParameterError("0 has no inverse in GF(2^8)")
    return EXP[(ORDER - LOG[arr]) % ORDER]


def div(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Divide field elements: a / b, element-wise.

    Parameters
    ----------
    a : int or array_like
        Dividends in 0..255.
    b : int or array_like
        Divisors in 1..255.

    Returns
    -------
    numpy.ndarray
        The uint8 quotients.

    Raises
    ------
    ParameterError
        If a divisor is 0 or an element is outside 0..255.

    Examples
    --------
    >>> int(div(143, 0xCA))
    83
    """
    return mul(a, inv(b))


def power(a: ArrayLike, n: int) -> np.ndarray:
    """Raise to an integer power: a ** n, with 0 ** 0 = 1.

    Parameters
    ----------
    a : int or array_like
        Bases in 0..255.
    n : int
        Exponent; a negative ``n`` needs every base nonzero.

    Returns
    -------
    numpy.ndarray
        The uint8 powers.

    Raises
    ------
    ParameterError
        If ``n < 0`` and a base is 0, or an element is outside 0..255.

    Examples
    --------
    >>> int(power(2, 8))  # x^8 = x^4 + x^3 + x^2 + 1 modulo 0x11d
    29
    >>> power([0, 3], 0)
    array([1, 1], dtype=uint8)
    """
    arr = _as_u8(a)
    if n < 0:
        return power(inv(arr), -n)
    result = EXP[(LOG[arr] * n) % ORDER]
    return np.where(arr == 0, np.uint8(1 if n == 0 else 0), result).astype(np.uint8)


def exp(n: ArrayLike) -> np.ndarray:
    """Power of the generator: 2 ** n (exponents taken modulo 255).

    Parameters
    ----------
    n : int or array_like
        Integer exponents, any sign.

    Returns
    -------
    numpy.ndarray
        The uint8 powers of the generator.

    Examples
    --------
    >>> int(exp(8))
    29
    >>> exp([0, 1, 255])
    array([1, 2, 1], dtype=uint8)
    """
    return EXP[np.asarray(n, dtype=np.int64) % ORDER]


def log(a: ArrayLike) -> np.ndarray:
    """Discrete logarithm base 2, the inverse of :func:`exp`.

    Parameters
    ----------
    a : int or array_like
        Nonzero elements in 1..255.

    Returns
    -------
    numpy.ndarray
        int64 exponents in 0..254.

    Raises
    ------
    ParameterError
        If an element is 0 (log 0 is undefined) or outside 0..255.

    Examples
    --------
    >>> int(log(29))
    8
    """
    arr = _as_u8(a)
    if np.any(arr == 0):
        raise ParameterError("log(0) is undefined in GF(2^8)")
    return LOG[arr]
