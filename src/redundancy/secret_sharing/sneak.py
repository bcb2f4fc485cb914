"""SNEAK's node code: a dealer and participants as independent actors exchanging messages.

Each actor holds only its own state, its neighbours' names and public points, and reacts to one
message at a time by returning the messages it sends; runtimes (the event simulator in
:mod:`.sim`, the TCP runtime in :mod:`.tcp`) only deliver them. Arithmetic is in GF(p),
p = 2^61 - 1 (Python integers: not constant-time; see :mod:`.prime`).

Algebra. The dealer draws a symmetric k x k matrix M with ``M[0][0] = s`` (k(k+1)/2 - 1 random
symbols). Participant i has point a_i and psi_i = (1, a_i, ..., a_i^(k-1)); its *row* is
r_i = M psi_i (= psi_i^T M by symmetry). Its Shamir share is ``r_i[0] = f(a_i)``,
``f(x) = sum_b M[0][b] x^b``, f(0) = s. Node j tells node m the single symbol
psi_m . r_j = psi_j^T M psi_m = psi_j . r_m, i.e. r_m's polynomial at a_j, so k symbols from
distinct senders give r_m.

Byte strings. The secret is any byte string (default: a fresh 32-byte key). The dealer appends the
tag ``SHA-256(id || secret)[:16]`` and cuts ``secret || tag`` into 7-byte chunks, one GF(p) symbol
each, exactly as Shamir's prime-field path does (:func:`.shamir.prime_symbols`); every chunk gets
its own matrix, and every message carries one value per chunk. A participant's share is then a
Shamir share of field ``p0x1fffffffffffffff`` at index alpha_i
(:meth:`.sim.RunResult.shamir_shares`), so ``redundancy shamir combine`` rebuilds the secret from
any k participants' share files.

Messages (dicts, JSON lines over TCP; :func:`decode_message` checks untrusted ones): ``row``
(dealer -> neighbour, k symbols per chunk), ``informed`` (a node that has its row tells its
participant neighbours; no field symbol), ``request`` (a node that has heard ``informed`` from k
neighbours asks exactly those k; no symbol), ``sym`` (one symbol per chunk, the answer).
Pulling instead of pushing makes the counts independent of timing: each participant receives
exactly k symbols per chunk, so communication is k * n symbols per chunk in every runtime.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from redundancy.errors import IntegrityError, ParameterError
from redundancy.secret_sharing.network import Network
from redundancy.secret_sharing.prime import (
    SNEAK_PRIME,
    evaluate,
    interpolate,
    lagrange_weights,
    prime_field_name,
)
from redundancy.secret_sharing.shamir import (
    GROUP_ID_BYTES,
    prime_layout,
    prime_symbols,
    secret_tag,
)
from redundancy.secret_sharing.shares import TAG_BYTES

Message = dict[str, Any]
Outgoing = list[tuple[str, Message]]
RandBelow = Callable[[int], int]
SNEAK_FIELD = prime_field_name(SNEAK_PRIME)
"""Field token of SNEAK's shares in the Shamir share format."""
DEFAULT_KEY_BYTES = 32
MAX_SECRET_BYTES = 1 << 20
MAX_NAME_CHARS = 256
MESSAGE_KINDS = ("row", "informed", "request", "sym")


def check_threshold(k: int, participants: int) -> None:
    """Refuse a threshold SNEAK cannot serve: 2 <= k <= number of participants.

    Parameters
    ----------
    k : int
        The threshold.
    participants : int
        Number of participants that will hold a share.

    Raises
    ------
    ParameterError
        k < 2 (each share would be the secret in clear) or k > participants (no k shares would
        ever exist, so nobody could recover the secret).

    Examples
    --------
    >>> check_threshold(3, 5)
    """
    if isinstance(k, bool) or not isinstance(k, int):
        raise ParameterError(f"k must be an integer, got {k!r}")
    if k < 2:
        raise ParameterError(
            f"k={k} is out of range (allowed: 2..{max(participants, 2)}): with k < 2 every "
            "participant's share is the secret in clear"
        )
    if k > participants:
        raise ParameterError(
            f"k={k} is out of range (allowed: 2..{participants}): only {participants} "
            "participants, so fewer than k shares would exist and nobody could recover the secret"
        )


def secret_symbols(secret: bytes, group_id: bytes, p: int = SNEAK_PRIME) -> list[int]:
    """``secret || tag`` as GF(p) symbols, the layout of a Shamir prime-field share."""
    return prime_symbols(secret + secret_tag(group_id, secret), p)


def symbol_count(length: int, p: int = SNEAK_PRIME) -> int:
    """Number of GF(p) symbols (chunks) that carry a secret of ``length`` bytes and its tag."""
    block, _ = prime_layout(p)
    return -(-(length + TAG_BYTES) // block)


@dataclass
class Counters:
    """What one actor sent: field symbols, control messages (no symbol), random symbols drawn."""

    symbols: int = 0
    control: int = 0
    randomness: int = 0


@dataclass
class Dealer:
    """Holds the secret; knows its neighbours' names and points only."""

    name: str
    neighbours: dict[str, int]
    k: int
    secret: bytes
    group_id: bytes
    randbelow: RandBelow = secrets.randbelow
    p: int = SNEAK_PRIME
    sent: Counters = field(default_factory=Counters)

    @property
    def values(self) -> list[int]:
        """The field symbols shared: ``secret || tag`` in chunks (see :func:`secret_symbols`)."""
        return secret_symbols(self.secret, self.group_id, self.p)

    def start(self) -> Outgoing:
        """Draw one symmetric matrix per chunk and send every neighbour its rows."""
        matrices = [self._matrix(value) for value in self.values]
        out: Outgoing = []
        for v, alpha in self.neighbours.items():
            psi = [pow(alpha, a, self.p) for a in range(self.k)]
            rows = [
                [sum(m[a][b] * psi[b] for b in range(self.k)) % self.p for a in range(self.k)]
                for m in matrices
            ]
            out.append((v, {"t": "row", "from": self.name, "row": rows}))
            self.sent.symbols += self.k * len(matrices)
        return out

    def _matrix(self, value: int) -> list[list[int]]:
        m = [[0] * self.k for _ in range(self.k)]
        for a in range(self.k):
            for b in range(a, self.k):
                if a or b:
                    m[a][b] = m[b][a] = self.randbelow(self.p)
                    self.sent.randomness += 1
        m[0][0] = value
        return m

    def handle(self, msg: Message) -> Outgoing:
        """The dealer ignores everything after its first move."""
        return []


@dataclass
class Participant:
    """A node: its own point, its neighbours' points, the dealer's name, and what it received.

    ``row`` holds, once known, one row of k symbols per chunk of the secret.
    """

    name: str
    alpha: int
    neighbours: dict[str, int]
    dealer: str
    k: int
    chunks: int
    dealer_adjacent: bool = False
    p: int = SNEAK_PRIME
    row: list[list[int]] | None = None
    sent: Counters = field(default_factory=Counters)
    informed: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)
    symbols: dict[str, list[int]] = field(default_factory=dict)

    @property
    def share(self) -> list[int] | None:
        """f_c(alpha) for every chunk c: this node's Shamir share, once it has its row."""
        return None if self.row is None else [r[0] for r in self.row]

    def start(self) -> Outgoing:
        """Participants wait for messages."""
        return []

    def handle(self, msg: Message) -> Outgoing:
        """React to one message (as :func:`decode_message` returns it); return what to send."""
        kind, sender = msg["t"], msg["from"]
        if kind == "row" and sender == self.dealer and self.row is None:
            return self._got_row([[v % self.p for v in r] for r in msg["row"]])
        if kind == "informed" and sender in self.neighbours and sender not in self.informed:
            self.informed.append(sender)
            return self._ask()
        if kind == "request" and sender in self.neighbours and self.row is not None:
            self.sent.symbols += self.chunks
            at = self.neighbours[sender]
            value = [evaluate(r, at, self.p) for r in self.row]
            return [(sender, {"t": "sym", "from": self.name, "value": value})]
        if (
            kind == "sym"
            and sender in self.requested
            and sender not in self.symbols
            and self.row is None
        ):
            self.symbols[sender] = [v % self.p for v in msg["value"]]
            if len(self.symbols) == self.k:
                xs = [self.neighbours[v] for v in self.symbols]
                got = list(self.symbols.values())
                rows = [interpolate(xs, [g[c] for g in got], self.p) for c in range(self.chunks)]
                return self._got_row(rows)
        return []

    def peer_lost(self, peer: str) -> Outgoing:
        """A neighbour became unreachable: ask another informed neighbour in its place."""
        self.lost.add(peer)
        return self._ask()

    def _ask(self) -> Outgoing:
        if self.row is not None or self.dealer_adjacent:  # its row comes from the dealer
            return []
        live = [v for v in self.requested if v in self.symbols or v not in self.lost]
        need = self.k - len(live)
        spare = [v for v in self.informed if v not in self.requested and v not in self.lost]
        if need <= 0 or len(spare) < need:
            return []
        self.requested.extend(spare[:need])
        self.sent.control += need
        return [(v, {"t": "request", "from": self.name}) for v in spare[:need]]

    def _got_row(self, rows: list[list[int]]) -> Outgoing:
        self.row = rows
        targets = [v for v in self.neighbours if v != self.dealer]
        self.sent.control += len(targets)
        return [(v, {"t": "informed", "from": self.name}) for v in targets]


def decode_message(line: bytes, *, k: int, chunks: int, p: int = SNEAK_PRIME) -> Message:
    """Parse and check one untrusted JSON-line message for a SNEAK actor.

    Parameters
    ----------
    line : bytes
        One received line.
    k, chunks : int
        The run's threshold and symbols per value (public): a ``row`` must be ``chunks`` lists of
        ``k`` field elements, a ``sym`` value ``chunks`` field elements.
    p : int
        The field prime; every symbol must be an integer in ``0..p-1``.

    Returns
    -------
    dict
        The message, with exactly the keys its kind has.

    Raises
    ------
    IntegrityError
        Anything else (not UTF-8 JSON, unknown kind, missing or extra keys, a sender name that is
        not 1..256 characters, wrong shapes, a symbol that is not an integer below p).

    Examples
    --------
    >>> decode_message(b'{"t": "sym", "from": "a", "value": [1, 2]}', k=3, chunks=2)
    {'t': 'sym', 'from': 'a', 'value': [1, 2]}
    """
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError):  # bad UTF-8/JSON, huge integer literals, deep nesting
        raise IntegrityError("SNEAK message is not a JSON line") from None
    if not isinstance(msg, dict) or msg.get("t") not in MESSAGE_KINDS:
        raise IntegrityError(f"SNEAK message kind is not one of {list(MESSAGE_KINDS)}")
    kind = msg["t"]
    keys = {"t", "from"} | {"row": {"row"}, "sym": {"value"}}.get(kind, set())
    if set(msg) != keys:
        raise IntegrityError(
            f"SNEAK {kind!r} message has keys {sorted(msg)}, expected {sorted(keys)}"
        )
    sender = msg["from"]
    if not isinstance(sender, str) or not 1 <= len(sender) <= MAX_NAME_CHARS:
        raise IntegrityError(f"SNEAK message sender must be a name of 1..{MAX_NAME_CHARS} chars")
    if kind == "row":
        rows = msg["row"]
        if not (isinstance(rows, list) and len(rows) == chunks):
            raise IntegrityError(f"SNEAK row must hold {chunks} rows of k={k} symbols")
        for r in rows:
            _check_symbols(r, k, p)
    elif kind == "sym":
        _check_symbols(msg["value"], chunks, p)
    return msg


def _check_symbols(values: Any, count: int, p: int) -> None:
    if not (
        isinstance(values, list)
        and len(values) == count
        and all(type(v) is int and 0 <= v < p for v in values)
    ):
        raise IntegrityError(f"SNEAK message needs {count} integer symbol(s) in 0..{p - 1}")


def build_actors(
    net: Network, k: int, secret: bytes | None, randbelow: RandBelow | None = None
) -> dict[str, Dealer | Participant]:
    """One actor per node of ``net``, each given local knowledge only.

    The dealer shares ``secret`` (bytes), or a fresh ``DEFAULT_KEY_BYTES``-byte key when it is
    None; its randomness (key, split id, matrices) comes from ``randbelow`` (default: the
    ``secrets`` module). Raises ParameterError for a threshold outside 2..n or a secret that is
    not 1..MAX_SECRET_BYTES bytes.
    """
    check_threshold(k, net.n)
    dealer = net.dealer
    draw = randbelow or secrets.randbelow
    if secret is None:
        secret = draw(1 << (8 * DEFAULT_KEY_BYTES)).to_bytes(DEFAULT_KEY_BYTES, "big")
    if not isinstance(secret, bytes | bytearray) or not 1 <= len(secret) <= MAX_SECRET_BYTES:
        raise ParameterError(f"the SNEAK secret must be 1..{MAX_SECRET_BYTES} bytes")
    group_id = draw(1 << (8 * GROUP_ID_BYTES)).to_bytes(GROUP_ID_BYTES, "big")

    def points(v: str) -> dict[str, int]:
        return {u: net.alphas[u] for u in net.graph.adj[v] if u != dealer}

    actors: dict[str, Dealer | Participant] = {
        dealer: Dealer(dealer, points(dealer), k, bytes(secret), group_id, draw)
    }
    chunks = symbol_count(len(secret))
    for v in net.participants:
        adjacent = net.graph.has_edge(v, dealer)
        actors[v] = Participant(v, net.alphas[v], points(v), dealer, k, chunks, adjacent)
    return actors


def sneak_randomness(k: int) -> int:
    """Random symbols SNEAK's dealer draws per chunk: the free entries of a symmetric k x k
    matrix."""
    return k * (k + 1) // 2 - 1


def check_shares(
    shares: dict[int, list[int]],
    k: int,
    values: list[int],
    p: int = SNEAK_PRIME,
    all_subsets_up_to: int = 12,
) -> int:
    """Verify that the points (alpha -> one share symbol per chunk) are a (n, k) Shamir sharing
    of ``values`` (one secret symbol per chunk).

    For every chunk, all points must lie on one polynomial of degree < k with f(0) = the chunk's
    value (then any k combine to it); for at most ``all_subsets_up_to`` points every k-subset is
    also combined explicitly. Returns the number of k-subsets combined per chunk; raises
    IntegrityError naming a bad point.
    """
    xs = sorted(shares)
    if len(xs) < k:
        raise IntegrityError(f"only {len(xs)} shares, need k={k}")
    base = xs[:k]
    subsets = list(combinations(xs, k)) if len(xs) <= all_subsets_up_to else [tuple(base)]
    for c, value in enumerate(values):
        for x in xs[k:]:
            w = lagrange_weights(base, x, p)
            if sum(wi * shares[b][c] for wi, b in zip(w, base, strict=True)) % p != shares[x][c]:
                raise IntegrityError(f"share at point {x} is off the sharing polynomial")
        for subset in subsets:
            w = lagrange_weights(subset, 0, p)
            if sum(wi * shares[b][c] for wi, b in zip(w, subset, strict=True)) % p != value:
                raise IntegrityError(f"shares at points {subset} do not combine to the secret")
    return len(subsets)
