"""Shamir (n, k) threshold sharing of byte strings over GF(2^8) (byte-wise) or a prime field.

    shares = split(b"attack at dawn", n=5, k=3)          # list[Share]
    lines = [s.to_text() for s in shares]                # self-describing text
    combine(lines[:3]) == b"attack at dawn"

Randomness comes from ``secrets.token_bytes`` unless a ``randbytes`` callable is injected (tests).
``combine`` refuses, with a named error, fewer than k shares, duplicates, shares of another split,
and any set whose result fails the secret's embedded tag (see :mod:`.shares`); with more than k
shares it looks (over at most ``MAX_BASES`` k-subsets) for k that pass the tag and names every
share off their polynomial. ``recover(shares, tolerate_bad=True)`` returns the secret from such k
shares anyway and lists the bad ones.

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
from dataclasses import dataclass

import numpy as np

from redundancy.errors import DecodeError, IntegrityError, check_range
from redundancy.gf256 import MUL_TABLE, inv
from redundancy.secret_sharing import ct_gf256
from redundancy.secret_sharing.prime import evaluate, lagrange_weights, parse_prime_field
from redundancy.secret_sharing.shares import TAG_BYTES, Share, as_shares, check_share_set

RandomBytes = Callable[[int], bytes]
GF256 = "gf256"
GROUP_ID_BYTES = 8
MAX_BASES = 256  # k-subsets tried to locate a bad share when more than k are given


def secret_tag(group_id: bytes, secret: bytes) -> bytes:
    """The check value shared along with the secret: ``SHA-256(group_id || secret)[:16]``."""
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
    """Split ``secret`` into ``n`` shares, any ``k`` of which recover it (2 <= k <= n).

    Fewer than k shares reveal nothing about the secret; a tag shared along with it lets
    :func:`combine` detect any wrong combination.

    Parameters
    ----------
    secret : bytes
        The secret (any length, empty included).
    n : int
        Number of shares, k..255 for GF(2^8) (up to min(p - 1, 65535) for GF(p)).
    k : int
        Threshold, 2..n.
    field : str, default "gf256"
        ``"gf256"`` (byte-wise) or a prime field (``"p521"``, ``"p127"``, ``"p25519"`` or
        ``"p0x<hex>"``).
    randbytes : callable, optional
        ``randbytes(count) -> bytes`` source of randomness (default ``secrets.token_bytes``);
        inject one only in tests.

    Returns
    -------
    list of Share
        The n shares, indices 1..n.

    Raises
    ------
    ParameterError
        If k or n is out of range, or the field is unknown.
    TypeError
        If ``secret`` is not bytes.

    Examples
    --------
    >>> shares = split(b"attack at dawn", n=5, k=3)
    >>> [share.index for share in shares]
    [1, 2, 3, 4, 5]
    >>> combine(shares[2:])
    b'attack at dawn'
    >>> combine([shares[0].to_text(), shares[3].to_text(), shares[4].to_text()])
    b'attack at dawn'
    """
    if not isinstance(secret, bytes | bytearray | memoryview):
        raise TypeError("secret must be bytes")
    secret = bytes(secret)
    top = max_shares(field)
    check_range("k", k, 2, top)
    check_range("n", n, k, top)
    rng = randbytes or secrets.token_bytes
    group_id = rng(GROUP_ID_BYTES)
    data = secret + secret_tag(group_id, secret)
    payloads = (
        _split_gf256(data, n, k, rng)
        if field == GF256
        else _split_prime(data, n, k, parse_prime_field(field), rng)
    )
    return [
        Share(field, k, i + 1, group_id, len(secret), payload) for i, payload in enumerate(payloads)
    ]


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` found: the secret, the k shares that gave it, and the bad shares.

    Attributes
    ----------
    secret : bytes
        The recovered secret (it passed the tag shared with it).
    used : tuple of int
        Indices of the k shares that were combined.
    bad : tuple of (int, str)
        Index and reason of every share that was left out (always empty unless ``tolerate_bad``).

    Examples
    --------
    >>> found = recover(split(b"key", n=3, k=2))
    >>> found.secret, found.used, found.bad
    (b'key', (1, 2), ())
    """

    secret: bytes
    used: tuple[int, ...]
    bad: tuple[tuple[int, str], ...]


def combine(shares: Iterable[Share | str]) -> bytes:
    """Recover the secret from at least k shares (Share objects or text lines).

    Strict: any share that does not fit is refused; :func:`recover` with ``tolerate_bad=True``
    returns the secret anyway and names the bad shares.

    Parameters
    ----------
    shares : iterable of Share or str
        At least k shares of one split, as objects or their text lines (untrusted).

    Returns
    -------
    bytes
        The secret.

    Raises
    ------
    IntegrityError
        A malformed line, a duplicate index, a share of another split, or a share off the
        polynomial of the others (exit code 2).
    DecodeError
        Fewer than k shares, or no k of them combine to a secret that passes its tag (exit
        code 3).

    Examples
    --------
    >>> shares = split(b"secret", n=3, k=2)
    >>> combine([shares[0], shares[2]])
    b'secret'
    >>> combine(shares[:1])
    Traceback (most recent call last):
    ...
    redundancy.errors.DecodeError: need k=2 shares of split ..., got 1 (indices [1])
    """
    return recover(shares).secret


def recover(shares: Iterable[Share | str], *, tolerate_bad: bool = False) -> Recovery:
    """Recover the secret from shares, naming every share that does not fit.

    Parameters
    ----------
    shares : iterable of Share or str
        Share objects or their text lines (untrusted).
    tolerate_bad : bool
        False (default): refuse a set that holds any bad share, after naming it. True: return the
        secret from k shares that agree with the tag shared with the secret, and list the others
        (off that polynomial, of another split, duplicated with other bytes, malformed payload)
        in ``Recovery.bad``.

    Returns
    -------
    Recovery
        The secret, the indices combined, and the bad shares.

    Raises
    ------
    IntegrityError
        Strict mode: a duplicate index, a share of another split, a malformed payload, or a share
        off the polynomial of k shares that combine correctly (exit code 2).
    DecodeError
        Fewer than k shares, or no k of them combine to a secret that passes its tag: too few
        good shares (exit code 3).

    Examples
    --------
    >>> parts = split(b"key", n=4, k=2)
    >>> forged = Share(**{**parts[0].__dict__, "payload": bytes(len(parts[0].payload))})
    >>> found = recover([forged, *parts[1:]], tolerate_bad=True)
    >>> found.secret, [index for index, _ in found.bad]
    (b'key', [1])
    """
    items = as_shares(shares)
    if tolerate_bad:
        return _recover_tolerant(items)
    chosen = check_share_set(items)
    first = chosen[0]
    _check_group(first.field, first.k, chosen[-1].index)
    size = first.length + TAG_BYTES
    for s in chosen:
        problem = _payload_problem(s, size)
        if problem:
            raise IntegrityError(f"share i={s.index}: {problem}")
    found = _find_basis(chosen, first.k, size)
    if found is None:
        raise DecodeError(
            f"shares {[s.index for s in chosen]} do not combine to split "
            f"{first.group_id.hex()}'s secret: fewer than k={first.k} of them are good "
            "(a share is corrupted or forged)"
        )
    secret, basis, value_at = found
    bad = [s.index for s in chosen if s not in basis and value_at(s.index) != s.payload]
    if bad:
        raise IntegrityError(
            f"shares {bad} inconsistent with shares {[s.index for s in basis]}, which combine "
            "correctly: corrupted or forged (tolerate_bad / --tolerate-bad recovers anyway)"
        )
    return Recovery(secret, tuple(s.index for s in basis), ())


def _check_group(field: str, k: int, top_index: int) -> None:
    top = max_shares(field)
    if k > top or top_index > top:
        raise IntegrityError(f"share index or k out of range for field {field} (<= {top})")


def _payload_problem(share: Share, size: int) -> str | None:
    """Why ``share``'s payload cannot be a share of ``size`` bytes, or None if it can."""
    if share.field == GF256:
        expected = size
    else:
        p = parse_prime_field(share.field)
        block, width = prime_layout(p)
        expected = -(-size // block) * width
    if len(share.payload) != expected:
        return f"payload has {len(share.payload)} bytes, expected {expected}"
    if share.field != GF256:
        values = _prime_values(share.payload, width)
        if any(v >= p for v in values):
            return "a value is not below the field prime"
    return None


def _find_basis(
    candidates: list[Share], k: int, size: int
) -> tuple[bytes, tuple[Share, ...], Callable[[int], bytes]] | None:
    """Among at most MAX_BASES k-subsets (distinct indices) whose secret passes the tag, the one
    whose polynomial agrees with the most candidates (so a few forged shares that happen to
    cancel out in one subset do not get the genuine ones named as bad)."""
    first = candidates[0]
    bases = (
        basis
        for basis in itertools.combinations(candidates, k)
        if len({s.index for s in basis}) == k
    )
    best, best_agree = None, -1
    for basis in itertools.islice(bases, MAX_BASES):
        value_at = (
            _gf256_interpolator(basis, size)
            if first.field == GF256
            else _prime_interpolator(basis, size, parse_prime_field(first.field))
        )
        data = value_at(0)
        if data is None:
            continue
        secret, tag = data[: first.length], data[first.length :]
        if not hmac.compare_digest(tag, secret_tag(first.group_id, secret)):
            continue
        agree = sum(1 for s in candidates if value_at(s.index) == s.payload)
        if agree > best_agree:
            best, best_agree = (secret, basis, value_at), agree
        if agree == len(candidates):
            break
    return best


def _recover_tolerant(items: list[Share]) -> Recovery:
    if not items:
        raise DecodeError("no shares given")
    groups: dict[tuple[bytes, str, int, int], list[Share]] = {}
    for s in items:
        groups.setdefault((s.group_id, s.field, s.k, s.length), []).append(s)
    for (group_id, field, k, length), members in sorted(groups.items(), key=lambda g: -len(g[1])):
        top = max_shares(field)
        size = length + TAG_BYTES
        usable = sorted(
            (s for s in members if 1 <= s.index <= top and not _payload_problem(s, size)),
            key=lambda s: s.index,
        )
        if not 2 <= k <= top or len({s.index for s in usable}) < k:
            continue
        found = _find_basis(usable, k, size)
        if found is None:
            continue
        secret, basis, value_at = found
        bad = []
        for s in items:
            if any(s is b for b in basis):
                continue
            if (s.group_id, s.field, s.k, s.length) != (group_id, field, k, length):
                bad.append((s.index, f"belongs to another split (id={s.group_id.hex()})"))
            elif all(s is not u for u in usable):
                bad.append((s.index, _payload_problem(s, size) or "index out of range"))
            elif value_at(s.index) != s.payload:
                bad.append((s.index, f"off the polynomial of shares {[b.index for b in basis]}"))
        return Recovery(secret, tuple(s.index for s in basis), tuple(bad))
    largest = max(len(m) for m in groups.values())
    raise DecodeError(
        f"no k shares of the {len(items)} given combine to a secret that passes its tag "
        f"(largest split has {largest} share(s)): too few good shares"
    )


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
    xs = [s.index for s in basis]
    ys = [ct_gf256.pack(s.payload) for s in basis]

    def value_at(at: int) -> bytes:
        acc = np.zeros_like(ys[0])
        for w, y in zip(_gf256_weights(xs, at), ys, strict=True):
            ct_gf256.mul_public_acc(acc, y, w)
        return ct_gf256.unpack(acc, size)

    return value_at


# --------------------------------------------------------------------------- prime field
def prime_layout(p: int) -> tuple[int, int]:
    """(data bytes per field element, serialised bytes per element) for the prime ``p``."""
    bits = p.bit_length()
    return (bits - 1) // 8, (bits + 7) // 8


def prime_symbols(data: bytes, p: int) -> list[int]:
    """``data`` cut into big-endian field elements of ``prime_layout(p)[0]`` bytes (last padded).

    This is how the prime-field path (and SNEAK) turns ``secret || tag`` into field symbols.
    """
    block, _ = prime_layout(p)
    return [
        int.from_bytes(data[a : a + block].ljust(block, b"\0"), "big")
        for a in range(0, len(data), block)
    ]


def _prime_values(payload: bytes, width: int) -> list[int]:
    return [int.from_bytes(payload[a : a + width], "big") for a in range(0, len(payload), width)]


def _split_prime(data: bytes, n: int, k: int, p: int, rng: RandomBytes) -> list[bytes]:
    _, width = prime_layout(p)
    values = prime_symbols(data, p)
    draw = width + 16  # 128 extra bits make the reduction mod p statistically uniform
    pool = rng(len(values) * (k - 1) * draw)
    randoms = [int.from_bytes(pool[a : a + draw], "big") % p for a in range(0, len(pool), draw)]
    polys = [[v, *randoms[b * (k - 1) : (b + 1) * (k - 1)]] for b, v in enumerate(values)]
    return [
        b"".join(evaluate(poly, x, p).to_bytes(width, "big") for poly in polys)
        for x in range(1, n + 1)
    ]


def _prime_interpolator(
    basis: tuple[Share, ...], size: int, p: int
) -> Callable[[int], bytes | None]:
    """f(at) as bytes; at 0 the data bytes, or None if a value does not fit a data block."""
    block, width = prime_layout(p)
    count = -(-size // block)
    ys = [_prime_values(s.payload, width) for s in basis]
    xs = [s.index for s in basis]

    def value_at(at: int) -> bytes | None:
        weights = lagrange_weights(xs, at, p)
        out = [sum(w * y[b] for w, y in zip(weights, ys, strict=True)) % p for b in range(count)]
        if at:
            return b"".join(v.to_bytes(width, "big") for v in out)
        if any(v >> (8 * block) for v in out):
            return None
        return b"".join(v.to_bytes(block, "big") for v in out)[:size]

    return value_at
