"""Shamir (n, k) threshold sharing of byte strings over GF(2^8) (byte-wise) or a prime field.

    shares = split(b"attack at dawn", n=5, k=3)          # list[Share]
    lines = [s.to_text() for s in shares]                # self-describing text
    combine(lines[:3]) == b"attack at dawn"

Randomness comes from ``secrets.token_bytes`` unless a ``randbytes`` callable is injected (tests).
``combine`` refuses, with a named error, fewer than k shares, duplicates, shares of another split,
and any set whose result fails the secret's embedded tag (see :mod:`.shares`); with more than k
shares it looks (over at most ``MAX_BASES`` k-subsets) for k that pass the tag and names every
share off their polynomial.

Constant time: on the GF(2^8) path every operation on secret bytes (coefficients, shares,
secret) is :func:`.ct_gf256.mul_public` or XOR on whole arrays; table lookups and branches touch
only public values (indices, k, n, lengths). Not constant-time: the prime-field path (Python big
integers), and the final tag comparison's hash input (SHA-256 in OpenSSL is itself constant-time;
the comparison uses ``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
from collections.abc import Callable, Iterable

import numpy as np

from redundancy.errors import IntegrityError, check_range
from redundancy.gf256 import MUL_TABLE, inv
from redundancy.secret_sharing import ct_gf256
from redundancy.secret_sharing.prime import evaluate, lagrange_weights, parse_prime_field
from redundancy.secret_sharing.shares import TAG_BYTES, Share, as_shares, check_share_set

RandomBytes = Callable[[int], bytes]
GF256 = "gf256"
GROUP_ID_BYTES = 8
MAX_BASES = 256  # k-subsets tried to locate a bad share when more than k are given


def _tag(group_id: bytes, secret: bytes) -> bytes:
    return hashlib.sha256(group_id + secret).digest()[:TAG_BYTES]


def max_shares(field: str) -> int:
    """Largest n for a field: 255 for GF(2^8) (nonzero points), min(p - 1, 65535) for GF(p)."""
    return 255 if field == GF256 else min(parse_prime_field(field) - 1, 65535)


def split(
    secret: bytes,
    n: int,
    k: int,
    *,
    field: str = GF256,
    randbytes: RandomBytes | None = None,
) -> list[Share]:
    """Split ``secret`` into ``n`` shares, any ``k`` of which recover it (2 <= k <= n)."""
    if not isinstance(secret, bytes | bytearray | memoryview):
        raise TypeError("secret must be bytes")
    secret = bytes(secret)
    top = max_shares(field)
    check_range("k", k, 2, top)
    check_range("n", n, k, top)
    rng = randbytes or secrets.token_bytes
    group_id = rng(GROUP_ID_BYTES)
    data = secret + _tag(group_id, secret)
    payloads = (
        _split_gf256(data, n, k, rng)
        if field == GF256
        else _split_prime(data, n, k, parse_prime_field(field), rng)
    )
    return [
        Share(field, k, i + 1, group_id, len(secret), payload) for i, payload in enumerate(payloads)
    ]


def combine(shares: Iterable[Share | str]) -> bytes:
    """Recover the secret from at least k shares (Share objects or text lines)."""
    chosen = check_share_set(as_shares(shares))
    first = chosen[0]
    top = max_shares(first.field)
    if first.k > top or chosen[-1].index > top:
        raise IntegrityError(f"share index or k out of range for field {first.field} (<= {top})")
    size = first.length + TAG_BYTES
    for basis in itertools.islice(itertools.combinations(chosen, first.k), MAX_BASES):
        value_at = (
            _gf256_interpolator(basis, size)
            if first.field == GF256
            else _prime_interpolator(basis, size, parse_prime_field(first.field))
        )
        data = value_at(0)
        secret, tag = data[: first.length], data[first.length :]
        if hmac.compare_digest(tag, _tag(first.group_id, secret)):
            break
    else:
        raise IntegrityError(
            f"shares {[s.index for s in chosen]} do not combine to split "
            f"{first.group_id.hex()}'s secret: a share is corrupted or forged"
        )
    others = [s for s in chosen if s not in basis]
    bad = [s.index for s in others if not hmac.compare_digest(value_at(s.index), s.payload)]
    if bad:
        raise IntegrityError(
            f"shares {bad} inconsistent with shares {[s.index for s in basis]}, which combine "
            "correctly: corrupted or forged"
        )
    return secret


# --------------------------------------------------------------------------- GF(2^8), byte-wise
def _split_gf256(data: bytes, n: int, k: int, rng: RandomBytes) -> list[bytes]:
    words = ct_gf256.pack(data)
    noise = np.frombuffer(rng((k - 1) * words.size * 8), dtype=np.uint64).reshape(k - 1, -1)
    payloads = []
    for x in range(1, n + 1):
        acc = noise[-1].copy()  # Horner: ((c_{k-1} x + c_{k-2}) x + ...) x + secret
        for coeff in noise[-2::-1]:
            acc = ct_gf256.mul_public(acc, x)
            np.bitwise_xor(acc, coeff, out=acc)
        acc = ct_gf256.mul_public(acc, x)
        np.bitwise_xor(acc, words, out=acc)
        payloads.append(ct_gf256.unpack(acc, len(data)))
    return payloads


def _gf256_weights(xs: list[int], at: int) -> list[int]:
    """Lagrange weights at ``at`` over GF(2^8) (public values only)."""
    weights = []
    for i, xi in enumerate(xs):
        w = 1
        for j, xj in enumerate(xs):
            if j != i:
                w = int(MUL_TABLE[w, MUL_TABLE[at ^ xj, int(inv(xi ^ xj))]])
        weights.append(w)
    return weights


def _gf256_interpolator(basis: tuple[Share, ...], size: int) -> Callable[[int], bytes]:
    for s in basis:
        if len(s.payload) != size:
            raise IntegrityError(
                f"share i={s.index}: payload has {len(s.payload)} bytes, expected {size}"
            )
    xs = [s.index for s in basis]
    ys = [ct_gf256.pack(s.payload) for s in basis]

    def value_at(at: int) -> bytes:
        acc = np.zeros_like(ys[0])
        for w, y in zip(_gf256_weights(xs, at), ys, strict=True):
            ct_gf256.mul_public_acc(acc, y, w)
        return ct_gf256.unpack(acc, size)

    return value_at


# --------------------------------------------------------------------------- prime field
def _layout(p: int) -> tuple[int, int]:
    """(data bytes per field element, serialised bytes per element) for the prime ``p``."""
    bits = p.bit_length()
    return (bits - 1) // 8, (bits + 7) // 8


def _split_prime(data: bytes, n: int, k: int, p: int, rng: RandomBytes) -> list[bytes]:
    block, width = _layout(p)
    chunks = [data[a : a + block] for a in range(0, len(data), block)]
    values = [int.from_bytes(c.ljust(block, b"\0"), "big") for c in chunks]
    draw = width + 16  # 128 extra bits make the reduction mod p statistically uniform
    pool = rng(len(values) * (k - 1) * draw)
    randoms = [int.from_bytes(pool[a : a + draw], "big") % p for a in range(0, len(pool), draw)]
    polys = [[v, *randoms[b * (k - 1) : (b + 1) * (k - 1)]] for b, v in enumerate(values)]
    return [
        b"".join(evaluate(poly, x, p).to_bytes(width, "big") for poly in polys)
        for x in range(1, n + 1)
    ]


def _prime_interpolator(basis: tuple[Share, ...], size: int, p: int) -> Callable[[int], bytes]:
    block, width = _layout(p)
    count = -(-size // block)
    ys = []
    for s in basis:
        if len(s.payload) != count * width:
            raise IntegrityError(
                f"share i={s.index}: payload has {len(s.payload)} bytes, expected {count * width}"
            )
        elems = [
            int.from_bytes(s.payload[a : a + width], "big") for a in range(0, count * width, width)
        ]
        if any(e >= p for e in elems):
            raise IntegrityError(f"share i={s.index}: a value is not below the field prime")
        ys.append(elems)
    xs = [s.index for s in basis]

    def value_at(at: int) -> bytes:
        weights = lagrange_weights(xs, at, p)
        out = [sum(w * y[b] for w, y in zip(weights, ys, strict=True)) % p for b in range(count)]
        if at:
            return b"".join(v.to_bytes(width, "big") for v in out)
        if any(v >> (8 * block) for v in out):
            raise IntegrityError(f"shares {xs} do not combine to a valid secret")
        return b"".join(v.to_bytes(block, "big") for v in out)[:size]

    return value_at
