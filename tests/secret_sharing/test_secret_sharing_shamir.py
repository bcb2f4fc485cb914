"""Shamir over GF(2^8) and prime fields: round trips, serialisation, and every refusal."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.errors import DecodeError, IntegrityError, ParameterError, RedundancyError
from redundancy.gf256 import MUL_TABLE
from redundancy.secret_sharing import Share, combine, ct_gf256, split
from redundancy.secret_sharing.prime import is_probable_prime, parse_prime_field
from redundancy.secret_sharing.shamir import recover
from redundancy.secret_sharing.shares import read_shares


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


def forge(share: Share, flip: int = 0) -> Share:
    """``share`` with one payload byte changed (a forged or corrupted share, well-formed)."""
    payload = bytearray(share.payload)
    payload[flip] ^= 1
    return Share(**{**share.__dict__, "payload": bytes(payload)})


def test_forged_payload_fails_the_tag():
    shares = split(b"secret", n=5, k=3, field="gf256")
    bad = Share(
        **{
            **shares[0].__dict__,
            "payload": bytes([shares[0].payload[0] ^ 1]) + shares[0].payload[1:],
        }
    )
    with pytest.raises(DecodeError, match="corrupted or forged"):  # k shares, one bad: exit 3
        combine([bad.to_text(), shares[1], shares[2]])
    with pytest.raises(IntegrityError, match=r"\[1\] inconsistent with"):
        combine([shares[1], shares[2], shares[3], bad])


@pytest.mark.parametrize("field", ["gf256", "p127"])
def test_tolerate_bad_recovers_and_names_every_bad_share(field):
    secret = b"the launch code"
    shares = split(secret, n=7, k=3, field=field, randbytes=seeded(3))
    other = split(b"another secret!", n=3, k=3, field=field, randbytes=seeded(4))
    short = Share(**{**shares[5].__dict__, "payload": shares[5].payload[:-1]})
    given = [
        forge(shares[0]),
        shares[1],
        forge(shares[2], 5),
        shares[3],
        shares[4],
        short,
        other[0],
    ]
    with pytest.raises(IntegrityError):
        recover(given)
    found = recover(given, tolerate_bad=True)
    assert found.secret == secret
    assert set(found.used) <= {2, 4, 5} and len(found.used) == 3
    assert sorted(index for index, _ in found.bad) == [1, 1, 3, 6]
    reasons = dict(found.bad)
    assert "off the polynomial" in reasons[3] and "bytes, expected" in reasons[6]


def test_cancelling_forgeries_do_not_get_genuine_shares_named():
    """Two equal byte flips at shares 1 and 2 cancel at x=0 in the subset {1, 2, 3} over GF(2^8)
    (equal Lagrange weights); the recovered secret is right, and the shares named bad must be
    the forged ones, found by the polynomial that most shares agree with."""
    shares = split(b"secret", n=6, k=3, randbytes=seeded(6))
    found = recover([forge(shares[0]), forge(shares[1]), *shares[2:]], tolerate_bad=True)
    assert found.secret == b"secret"
    assert sorted(index for index, _ in found.bad) == [1, 2]


def test_strict_combine_names_the_forged_share_before_refusing():
    shares = split(b"secret", n=5, k=2, randbytes=seeded(5))
    with pytest.raises(IntegrityError, match=r"shares \[4\] inconsistent.*--tolerate-bad"):
        combine([shares[0], shares[1], shares[2], forge(shares[3])])


def test_tolerate_bad_with_too_few_good_shares_is_a_decode_error():
    shares = split(b"secret", n=5, k=3, randbytes=seeded(6))
    with pytest.raises(DecodeError, match="too few good shares"):
        recover([forge(shares[0]), forge(shares[1], 3), shares[2], shares[3]], tolerate_bad=True)
    with pytest.raises(DecodeError, match="too few good shares"):
        recover(shares[:2], tolerate_bad=True)


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
    with pytest.raises(DecodeError):  # well formed, but no k good shares: exit 3
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


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_share_file_fuzz_bytes(data):
    """Any bytes as a share file: parsed shares, or IntegrityError naming the problem."""
    try:
        shares = read_shares(data, source="f.txt")
    except IntegrityError as exc:
        assert str(exc).startswith("f.txt")
        return
    assert all(isinstance(s, Share) for s in shares)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["gf256", "p127", "p0x101", "p0x1fffffffffffffff"]),
    k=st.integers(0, 300),
    lines=st.lists(
        st.tuples(st.integers(0, 99999), st.integers(0, 70), st.binary(max_size=90)),
        min_size=1,
        max_size=6,
    ),
    tolerate=st.booleans(),
)
def test_well_formed_hostile_shares_only_raise_project_errors(field, k, lines, tolerate):
    """Lines with valid syntax and CRC but any k, index, length and payload: combining them gives
    a secret or a RedundancyError (never IndexError, ZeroDivisionError, MemoryError...)."""
    group = bytes(8)
    text = [Share(field, k, i, group, length, payload).to_text() for i, length, payload in lines]
    try:
        found = recover(read_shares("\n".join(text).encode()), tolerate_bad=tolerate)
    except RedundancyError:
        return
    assert len(found.used) == k  # only a set that passed the tag can get here


def test_huge_prime_field_is_refused_quickly():
    with pytest.raises(ParameterError, match="more than 4096 bits"):
        parse_prime_field("p0x" + "f" * 2000)


def test_primality():
    assert all(is_probable_prime(p) for p in (2, 3, 257, 2**61 - 1, 2**127 - 1))
    assert not any(is_probable_prime(p) for p in (1, 4, 561, 2**61 + 1, 3215031751))
    assert parse_prime_field("p521") == 2**521 - 1
