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
    """a + b (= a - b = a XOR b)."""
    return np.bitwise_xor(_as_u8(a), _as_u8(b))


def mul(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Element-wise product a * b."""
    return MUL_TABLE[_as_u8(a), _as_u8(b)]


def inv(a: ArrayLike) -> np.ndarray:
    """Multiplicative inverse; raises ParameterError on zero."""
    arr = _as_u8(a)
    if np.any(arr == 0):
        raise ParameterError("0 has no inverse in GF(2^8)")
    return EXP[(ORDER - LOG[arr]) % ORDER]


def div(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Element-wise quotient a / b; raises ParameterError on division by zero."""
    return mul(a, inv(b))


def power(a: ArrayLike, n: int) -> np.ndarray:
    """a ** n for an integer n (negative n needs a != 0); 0 ** 0 = 1."""
    arr = _as_u8(a)
    if n < 0:
        return power(inv(arr), -n)
    result = EXP[(LOG[arr] * n) % ORDER]
    return np.where(arr == 0, np.uint8(1 if n == 0 else 0), result).astype(np.uint8)


def exp(n: ArrayLike) -> np.ndarray:
    """generator ** n."""
    return EXP[np.asarray(n, dtype=np.int64) % ORDER]


def log(a: ArrayLike) -> np.ndarray:
    """Discrete logarithm base 2; raises ParameterError on zero."""
    arr = _as_u8(a)
    if np.any(arr == 0):
        raise ParameterError("log(0) is undefined in GF(2^8)")
    return LOG[arr]
