"""Self-describing Shamir shares and the checks that stop ``combine`` from returning garbage.

Text form (one line, ASCII)::

    sss1:<field>:k=<k>:i=<index>:id=<16 hex>:len=<secret bytes>:<payload base64url>:<crc32 hex>

- ``field``: ``gf256`` (byte-wise, like Vault and SLIP-39) or a prime field (``p521``, ``p127``,
  ``p25519`` or ``p0x<hex>``);
- ``id``: a random identifier drawn once per split, shared by all its shares, so a share of a
  different secret is named instead of being silently mixed in;
- the payload is the share of ``secret || tag`` where ``tag = SHA-256(id || secret)[:16]``. The tag
  is the "checksum of the secret": it travels *inside* the shared value (as SLIP-39's digest share
  does), so fewer than k shares learn nothing about it, yet any wrong combination is detected. A
  plain hash in the clear would let one share-holder test guesses of a low-entropy secret.
- the CRC-32 covers the rest of the line and catches typos and truncation before any arithmetic.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from redundancy.errors import DecodeError, IntegrityError, RedundancyError
from redundancy.secret_sharing.prime import parse_prime_field

PREFIX = "sss1"
TAG_BYTES = 16
_LINE = re.compile(
    r"^sss1:(?P<field>gf256|p[0-9a-z]+):k=(?P<k>\d{1,5}):i=(?P<i>\d{1,5}):id=(?P<id>[0-9a-f]{16}):"
    r"len=(?P<len>\d{1,10}):(?P<payload>[A-Za-z0-9_-]*):(?P<crc>[0-9a-f]{8})$"
)


@dataclass(frozen=True)
class Share:
    """One participant's share: the point ``(index, payload)`` of the split ``group_id``.

    Shares come from :func:`~redundancy.secret_sharing.split`; :meth:`to_text` and
    :meth:`from_text` convert to and from the one-line text form of the module docstring.

    Attributes
    ----------
    field : str
        ``"gf256"`` or a prime field name such as ``"p521"``.
    k : int
        Threshold: how many shares recover the secret.
    index : int
        This share's point, 1..n.
    group_id : bytes
        8 random bytes drawn once per split, shared by all its shares.
    length : int
        Length of the secret in bytes.
    payload : bytes
        The share of ``secret || tag``.

    Examples
    --------
    >>> from redundancy.secret_sharing import split
    >>> share = split(b"key", n=3, k=2)[0]
    >>> share.field, share.k, share.index, share.length
    ('gf256', 2, 1, 3)
    >>> Share.from_text(share.to_text()) == share
    True
    """

    field: str
    k: int
    index: int
    group_id: bytes
    length: int
    payload: bytes

    def to_text(self) -> str:
        """The self-describing one-line form (see the module docstring)."""
        body = (
            f"{PREFIX}:{self.field}:k={self.k}:i={self.index}:id={self.group_id.hex()}:"
            f"len={self.length}:{base64.urlsafe_b64encode(self.payload).decode().rstrip('=')}"
        )
        return f"{body}:{binascii.crc32(body.encode()):08x}"

    @classmethod
    def from_text(cls, text: str) -> Share:
        """Parse and check one line; raises IntegrityError naming what is wrong."""
        line = text.strip()
        if not line.startswith(PREFIX + ":"):
            raise IntegrityError(f"not a share: expected a line starting with '{PREFIX}:'")
        match = _LINE.match(line)
        if match is None:
            raise IntegrityError(f"malformed share line: {line[:60]!r}")
        body = line[: line.rfind(":")]
        if f"{binascii.crc32(body.encode()):08x}" != match["crc"]:
            raise IntegrityError(f"share i={match['i']}: checksum mismatch (typo or truncation)")
        field = match["field"]
        if field != "gf256":
            parse_prime_field(field)
        b64 = match["payload"]
        try:
            payload = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError):
            raise IntegrityError(f"share i={match['i']}: payload is not base64url") from None
        return cls(
            field=field,
            k=int(match["k"]),
            index=int(match["i"]),
            group_id=bytes.fromhex(match["id"]),
            length=int(match["len"]),
            payload=payload,
        )


def read_shares(data: bytes, source: str = "input") -> list[Share]:
    """Parse a share file: one share line per line; blank lines and ``#`` comments are skipped.

    Parameters
    ----------
    data : bytes
        The file's bytes (untrusted).
    source : str
        Name of the file, used in error messages.

    Returns
    -------
    list of Share
        The shares in file order (not yet checked as a set: see :func:`check_share_set`).

    Raises
    ------
    IntegrityError
        The data is not ASCII text, or a line is not a valid share (the message names the line).

    Examples
    --------
    >>> from redundancy.secret_sharing import split
    >>> text = "".join(s.to_text() + "\\n" for s in split(b"key", n=3, k=2))
    >>> [s.index for s in read_shares(("# my shares\\n" + text).encode())]
    [1, 2, 3]
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise IntegrityError(
            f"{source}: byte {exc.start} is not ASCII; a share file holds 'sss1:' lines only"
        ) from None
    shares = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            shares.append(Share.from_text(line))
        except RedundancyError as exc:
            raise IntegrityError(f"{source} line {number}: {exc}") from None
    return shares


def as_shares(items: Iterable[Share | str]) -> list[Share]:
    """Accept Share objects or their text lines."""
    return [s if isinstance(s, Share) else Share.from_text(s) for s in items]


def check_share_set(shares: Sequence[Share]) -> list[Share]:
    """Validate a set of shares before combining; return them sorted by index.

    Raises DecodeError for fewer than k shares and IntegrityError for a duplicate, a share of a
    different split (id, field, k or length differ), or an index out of range.
    """
    if not shares:
        raise DecodeError("no shares given")
    first = shares[0]
    for s in shares[1:]:
        for attr in ("group_id", "field", "k", "length"):
            if getattr(s, attr) != getattr(first, attr):
                mine, theirs = getattr(s, attr), getattr(first, attr)
                if attr == "group_id":
                    mine, theirs = mine.hex(), theirs.hex()
                raise IntegrityError(
                    f"share i={s.index} belongs to a different split ({attr}={mine}, "
                    f"share i={first.index} has {attr}={theirs})"
                )
    seen: set[int] = set()
    for s in shares:
        if s.index in seen:
            raise IntegrityError(f"duplicate share index i={s.index}")
        seen.add(s.index)
        if s.index < 1:
            raise IntegrityError(f"share index i={s.index} is out of range (allowed: >= 1)")
    if first.k < 2:
        raise IntegrityError(f"share threshold k={first.k} is out of range (allowed: >= 2)")
    if len(shares) < first.k:
        raise DecodeError(
            f"need k={first.k} shares of split {first.group_id.hex()}, got {len(shares)} "
            f"(indices {sorted(seen)})"
        )
    return sorted(shares, key=lambda s: s.index)
