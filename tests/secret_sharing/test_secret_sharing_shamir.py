"""Shamir over GF(2^8) and prime fields: round trips, serialisation, and every refusal."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.errors import DecodeError, IntegrityError, ParameterError
from redundancy.gf256 import MUL_TABLE
from redundancy.secret_sharing import Share, combine, ct_gf256, split
from redundancy.secret_sharing.prime import is_probable_prime, parse_prime_field


def seeded(seed: int):
    """An injectable, reproducible stand-in for secrets.token_bytes."""
    rng = random.Random(seed)
    return lambda n: rng.randbytes(n)


def test_constant_time_mul_matches_table():
    data = np.arange(256, dtype=np.uint8)
    words = ct_gf256.pack(data)
    for c in range(256):
        assert ct_gf256.unpack(ct_gf256.mul_public(words, c), 256) == MUL_TABLE[c].tobytes()
        acc = ct_gf256.pack(data)
        ct_gf256.mul_public_acc(acc, words, c)
        assert ct_gf256.unpack(acc, 256) == (MUL_TABLE[c] ^ data).tobytes()


def test_gf256_shares_are_polynomial_values():
    """Share bytes equal f(i) with f's coefficients taken from the injected randomness."""
    secret = b"\x01\x02\x03"
    shares = split(secret, n=4, k=3, randbytes=seeded(1))
    data = np.frombuffer(secret, np.uint8)
    rng = seeded(1)
    rng(8)  # group id
    noise = np.frombuffer(rng(2 * 24), np.uint8).reshape(2, 24)
    for s in shares:
        x = s.index
        expected = data ^ MUL_TABLE[x, noise[0][:3]] ^ MUL_TABLE[MUL_TABLE[x, x], noise[1][:3]]
        assert s.payload[:3] == expected.tobytes()


@settings(max_examples=40, deadline=None)
@given(
    secret=st.binary(min_size=0, max_size=4096),
    k=st.integers(2, 8),
    extra=st.integers(0, 6),
    field=st.sampled_from(["gf256", "p127", "p521"]),
    data=st.data(),
)
def test_round_trip_any_k_subset(secret, k, extra, field, data):
    n = k + extra
    shares = split(secret, n=n, k=k, field=field, randbytes=seeded(len(secret)))
    subset = data.draw(st.lists(st.sampled_from(shares), min_size=k, max_size=n, unique=True))
    lines = [s.to_text() for s in subset]
    assert combine(lines) == secret


@settings(max_examples=10, deadline=None)
@given(secret=st.binary(min_size=1, max_size=64), k=st.integers(2, 4))
def test_every_k_subset_small(secret, k):
    shares = split(secret, n=k + 2, k=k)
    for subset in itertools.combinations(shares, k):
        assert combine(subset) == secret


def test_one_share_of_two_is_uniform():
    """k = 2: over all coefficient values, share 1's first byte takes each value exactly once."""
    seen = set()
    for r in range(256):
        stream = iter([bytes(8), bytes([r]) * 24])
        seen.add(split(b"\x2a", n=2, k=2, randbytes=lambda n, s=stream: next(s))[0].payload[0])
    assert seen == set(range(256))


def test_fewer_than_k_is_refused():
    shares = split(b"secret", n=5, k=3)
    with pytest.raises(DecodeError, match="need k=3"):
        combine(shares[:2])
    with pytest.raises(DecodeError, match="no shares"):
        combine([])


def test_duplicate_is_refused():
    shares = split(b"secret", n=5, k=3)
    with pytest.raises(IntegrityError, match="duplicate share index i=2"):
        combine([shares[1], shares[1], shares[2]])


def test_share_of_another_secret_is_named():
    a = split(b"secret a", n=5, k=3)
    b = split(b"secret b", n=5, k=3)
    with pytest.raises(IntegrityError, match="i=3 belongs to a different split"):
        combine([a[0], a[1], b[2]])


def test_forged_payload_fails_the_tag():
    shares = split(b"secret", n=5, k=3, field="gf256")
    bad = Share(
        **{
            **shares[0].__dict__,
            "payload": bytes([shares[0].payload[0] ^ 1]) + shares[0].payload[1:],
        }
    )
    with pytest.raises(IntegrityError, match="corrupted or forged"):
        combine([bad.to_text(), shares[1], shares[2]])
    with pytest.raises(IntegrityError, match=r"\[1\] inconsistent with"):
        combine([shares[1], shares[2], shares[3], bad])


def test_prime_forgery_and_range():
    shares = split(b"secret", n=4, k=2, field="p127")
    too_big = Share(**{**shares[0].__dict__, "payload": b"\xff" * len(shares[0].payload)})
    with pytest.raises(IntegrityError, match="not below the field prime"):
        combine([too_big, shares[1]])
    shifted = Share(
        **{
            **shares[0].__dict__,
            "payload": (1).to_bytes(16, "big") * (len(shares[0].payload) // 16),
        }
    )
    with pytest.raises(IntegrityError):
        combine([shifted, shares[1]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 5, "k": 1}, "k=1 is out of range"),
        ({"n": 2, "k": 3}, "n=2 is out of range"),
        ({"n": 256, "k": 3}, "n=256 is out of range"),
        ({"n": 5, "k": 3, "field": "p7"}, "field 'p7' is unknown"),
        ({"n": 5, "k": 3, "field": "p0x101"}, None),
        ({"n": 5, "k": 3, "field": "p0x100"}, "needs a prime"),
    ],
)
def test_parameters_are_checked(kwargs, match):
    if match is None:
        assert combine(split(b"ok", **kwargs)[:3]) == b"ok"
        return
    with pytest.raises(ParameterError, match=match):
        split(b"x", **kwargs)


def test_text_checks():
    line = split(b"secret", n=3, k=2)[0].to_text()
    assert Share.from_text(line + "\n") == Share.from_text(line)
    typo = line[:30] + ("A" if line[30] != "A" else "B") + line[31:]
    with pytest.raises(IntegrityError):
        Share.from_text(typo)
    with pytest.raises(IntegrityError, match="not a share"):
        Share.from_text("hello")
    with pytest.raises(IntegrityError, match="malformed"):
        Share.from_text(line.replace(":k=", ":q="))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_parser_never_crashes(text):
    try:
        Share.from_text(text)
    except IntegrityError:
        pass
    except ParameterError:
        pass


@settings(max_examples=60, deadline=None)
@given(position=st.integers(0, 200), char=st.characters(codec="ascii"))
def test_mutated_lines_are_rejected_or_equal(position, char):
    shares = split(b"the secret", n=3, k=2, randbytes=seeded(7))
    line = shares[0].to_text()
    pos = position % len(line)
    mutated = line[:pos] + char + line[pos + 1 :]
    try:
        parsed = Share.from_text(mutated)
    except IntegrityError:
        return
    assert parsed == shares[0]  # only a no-op mutation may parse


def test_primality():
    assert all(is_probable_prime(p) for p in (2, 3, 257, 2**61 - 1, 2**127 - 1))
    assert not any(is_probable_prime(p) for p in (1, 4, 561, 2**61 + 1, 3215031751))
    assert parse_prime_field("p521") == 2**521 - 1
