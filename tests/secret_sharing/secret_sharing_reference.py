"""An independent reference for the SNEAK and TCP tests: Lagrange interpolation at 0 in plain
Python integers mod 2^61 - 1 and the tag check by hand, sharing no code with the package."""

from __future__ import annotations

import hashlib
import random

P = 2**61 - 1


def lagrange_at_zero(points: dict[int, int]) -> int:
    """f(0) of the polynomial of degree < len(points) through (x, y), in plain ints mod P.

    Written here, independently of the package: prod_j x_j / (x_j - x_i) weights.
    """
    total = 0
    for xi, yi in points.items():
        num, den = 1, 1
        for xj in points:
            if xj != xi:
                num = num * xj % P
                den = den * (xj - xi) % P
        total += yi * num * pow(den, P - 2, P)  # Fermat inverse
    return total % P


def secret_from_shares(result, names: list[str]) -> bytes:
    """Rebuild the secret bytes from k participants' symbols: interpolate each 7-byte chunk at 0,
    concatenate, cut at the secret's length; check the 16-byte SHA-256 tag by hand."""
    chunks = []
    for c in range(result.chunks):
        value = lagrange_at_zero({result.points[v]: result.shares[v][c] for v in names})
        assert value < 2**56
        chunks.append(value.to_bytes(7, "big"))
    data = b"".join(chunks)
    secret, tag = data[: result.length], data[result.length : result.length + 16]
    assert tag == hashlib.sha256(result.group_id + secret).digest()[:16]
    return secret


def assert_valid_sharing(result, secret: bytes, k: int, subsets: int = 10, seed: int = 0) -> None:
    """Every participant holds a share, and random k-subsets of them rebuild ``secret``."""
    assert not result.missing
    names = sorted(result.shares)
    rng = random.Random(seed)
    for _ in range(subsets):
        assert secret_from_shares(result, rng.sample(names, k)) == secret
