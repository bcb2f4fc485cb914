"""Prime-field helpers shared by Shamir over GF(p) and SNEAK: named primes, a primality test,
polynomial evaluation, Lagrange weights and interpolation, rank (for the security tests).

Python integers are not constant-time: big-integer multiply and ``%`` take time that depends on
operand sizes, and ``pow`` on exponent bits. The prime-field path is therefore *not* constant-time;
use the GF(2^8) field (``field="gf256"``) where timing side channels matter.
"""

from __future__ import annotations

from collections.abc import Sequence

from redundancy.errors import ParameterError

NAMED_PRIMES: dict[str, int] = {
    "p127": 2**127 - 1,
    "p25519": 2**255 - 19,
    "p521": 2**521 - 1,
}
SNEAK_PRIME = 2**61 - 1
"""Field of SNEAK's symbols: large enough for millions of distinct node points."""
MAX_PRIME_BITS = 4096
"""Largest ``p0x<hex>`` prime accepted: a share file cannot make the primality test run long."""

_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


def is_probable_prime(p: int) -> bool:
    """Miller-Rabin with the first 20 prime bases (deterministic below 3.3e24)."""
    if p < 2:
        return False
    for q in _MR_BASES:
        if p % q == 0:
            return p == q
    d, r = p - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in _MR_BASES:
        x = pow(a, d, p)
        if x in (1, p - 1):
            continue
        for _ in range(r - 1):
            x = x * x % p
            if x == p - 1:
                break
        else:
            return False
    return True


def parse_prime_field(name: str) -> int:
    """The prime of a field token: a named prime (``p521``...) or ``p0x<hex>``."""
    if name in NAMED_PRIMES:
        return NAMED_PRIMES[name]
    if name.startswith("p0x"):
        if len(name) - 3 > MAX_PRIME_BITS // 4:
            raise ParameterError(
                f"field {name[:20]}...: prime has more than {MAX_PRIME_BITS} bits "
                f"(allowed: up to {MAX_PRIME_BITS})"
            )
        try:
            p = int(name[3:], 16)
        except ValueError:
            raise ParameterError(f"field {name!r}: not a hexadecimal prime") from None
        if p <= 256 or not is_probable_prime(p):
            raise ParameterError(f"field {name!r}: needs a prime > 256")
        return p
    allowed = ", ".join(["gf256", *NAMED_PRIMES, "p0x<hex prime>"])
    raise ParameterError(f"field {name!r} is unknown (allowed: {allowed})")


def prime_field_name(p: int) -> str:
    """The token that :func:`parse_prime_field` maps back to ``p``."""
    for name, value in NAMED_PRIMES.items():
        if value == p:
            return name
    return f"p0x{p:x}"


def evaluate(coeffs: Sequence[int], x: int, p: int) -> int:
    """sum_a coeffs[a] x^a mod p (Horner)."""
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % p
    return acc


def lagrange_weights(xs: Sequence[int], at: int, p: int) -> list[int]:
    """w_i with f(at) = sum_i w_i f(xs[i]) for every polynomial of degree < len(xs)."""
    weights = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * (at - xj) % p
                den = den * (xi - xj) % p
        if den == 0:
            raise ParameterError(f"interpolation points must be distinct mod p, got {list(xs)}")
        weights.append(num * pow(den, -1, p) % p)
    return weights


def interpolate(xs: Sequence[int], ys: Sequence[int], p: int) -> list[int]:
    """Coefficients (lowest degree first) of the polynomial of degree < len(xs) through the points.

    This is the k x k Vandermonde solve a SNEAK node does to recover its row.
    """
    k = len(xs)
    coeffs = [0] * k
    for i, xi in enumerate(xs):
        basis = [1]  # prod_{j != i} (x - x_j), built up one factor at a time
        den = 1
        for j, xj in enumerate(xs):
            if j == i:
                continue
            basis = [
                ((basis[a - 1] if a else 0) - xj * (basis[a] if a < len(basis) else 0)) % p
                for a in range(len(basis) + 1)
            ]
            den = den * (xi - xj) % p
        if den == 0:
            raise ParameterError(f"interpolation points must be distinct mod p, got {list(xs)}")
        scale = ys[i] * pow(den, -1, p) % p
        for a in range(k):
            coeffs[a] = (coeffs[a] + scale * basis[a]) % p
    return coeffs


def rank_mod_p(rows: Sequence[Sequence[int]], p: int) -> int:
    """Rank of a matrix over GF(p) by Gaussian elimination."""
    m = [[v % p for v in row] for row in rows]
    rank, cols = 0, len(m[0]) if m else 0
    for c in range(cols):
        pivot = next((r for r in range(rank, len(m)) if m[r][c]), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        inv = pow(m[rank][c], -1, p)
        m[rank] = [v * inv % p for v in m[rank]]
        for r in range(len(m)):
            if r != rank and m[r][c]:
                f = m[r][c]
                m[r] = [(a - f * b) % p for a, b in zip(m[r], m[rank], strict=True)]
        rank += 1
    return rank
