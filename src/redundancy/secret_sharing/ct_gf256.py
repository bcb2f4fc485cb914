"""Constant-time GF(2^8) arithmetic for secret bytes (polynomial 0x11d, as ``redundancy.gf256``).

Every product on the secret path of Shamir over GF(2^8) is *secret bytes times a public constant*
(Horner steps at a public x, Lagrange weights of public indices), so one primitive suffices:
:func:`mul_public`. It never indexes a table with a secret byte and never branches on one. For a
public constant c the eight products c * 2^b are computed up front (table lookups on c are fine:
c is public); a 64-bit word w holding eight secret bytes then maps to

    XOR_b ((w >> b) & 0x0101..01) * (c * 2^b)

where each lane of ``(w >> b) & 0x0101..01`` is 0 or 1, so the integer multiply by a byte-sized
constant cannot carry across lanes. The numpy ufuncs used (shift, and, multiply, xor) run the same
instructions whatever the byte values are.
"""

from __future__ import annotations

import numpy as np

from redundancy.gf256 import MUL_TABLE

_LANES = np.uint64(0x0101010101010101)


def pack(data: bytes | np.ndarray) -> np.ndarray:
    """View ``data`` as little-endian uint64 words, zero-padded to a multiple of 8 bytes."""
    raw = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    padded = np.zeros(-(-raw.size // 8) * 8, dtype=np.uint8)
    padded[: raw.size] = raw
    return padded.view(np.uint64)


def unpack(words: np.ndarray, length: int) -> bytes:
    """Inverse of :func:`pack`: the first ``length`` bytes of ``words``."""
    return words.view(np.uint8)[:length].tobytes()


def _bit_multiples(c: int) -> list[np.uint64]:
    """c * 2^b for b = 0..7 as plain integers (c is public, so the lookups leak nothing)."""
    return [np.uint64(int(MUL_TABLE[c, 1 << b])) for b in range(8)]


def mul_public(words: np.ndarray, c: int) -> np.ndarray:
    """Lane-wise product of packed secret bytes ``words`` with the public constant ``c``."""
    out = np.zeros_like(words)
    scratch = np.empty_like(words)
    for b, cb in enumerate(_bit_multiples(c)):
        np.right_shift(words, np.uint64(b), out=scratch)
        np.bitwise_and(scratch, _LANES, out=scratch)
        np.multiply(scratch, cb, out=scratch)
        np.bitwise_xor(out, scratch, out=out)
    return out


def mul_public_acc(acc: np.ndarray, words: np.ndarray, c: int) -> None:
    """In place ``acc ^= words * c`` (same constant-time structure as :func:`mul_public`)."""
    scratch = np.empty_like(words)
    for b, cb in enumerate(_bit_multiples(c)):
        np.right_shift(words, np.uint64(b), out=scratch)
        np.bitwise_and(scratch, _LANES, out=scratch)
        np.multiply(scratch, cb, out=scratch)
        np.bitwise_xor(acc, scratch, out=acc)
