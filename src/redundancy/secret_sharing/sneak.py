"""SNEAK's node code: a dealer and participants as independent actors exchanging messages.

Each actor holds only its own state, its neighbours' names and public points, and reacts to one
message at a time by returning the messages it sends; runtimes (the event simulator in
:mod:`.sim`, the TCP runtime in :mod:`.tcp`) only deliver them. Arithmetic is in GF(p),
p = 2^61 - 1 (Python integers: not constant-time; see :mod:`.prime`).

Algebra. The dealer draws a symmetric k x k matrix M with M[0][0] = s (k(k+1)/2 - 1 random
symbols). Participant i has point a_i and psi_i = (1, a_i, ..., a_i^(k-1)); its *row* is
r_i = M psi_i (= psi_i^T M by symmetry). Its Shamir share is r_i[0] = f(a_i), f(x) = sum_b
M[0][b] x^b, f(0) = s. Node j tells node m the single symbol psi_m . r_j = psi_j^T M psi_m
= psi_j . r_m, i.e. r_m's polynomial at a_j, so k symbols from distinct senders give r_m.

Messages (dicts, JSON-ready): ``row`` (dealer -> neighbour, k symbols), ``informed`` (a node that
has its row tells its participant neighbours; no field symbol), ``request`` (a node that has heard
``informed`` from k neighbours asks exactly those k; no symbol), ``sym`` (one symbol, the answer).
Pulling instead of pushing makes the counts independent of timing: each participant not next to
the dealer receives exactly k symbols, so communication is k * n symbols in every runtime.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

from redundancy.errors import IntegrityError, ParameterError, check_range
from redundancy.secret_sharing.network import Network
from redundancy.secret_sharing.prime import SNEAK_PRIME, evaluate, interpolate, lagrange_weights

Message = dict
Outgoing = list[tuple[str, Message]]
RandBelow = Callable[[int], int]


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
    secret: int
    randbelow: RandBelow = secrets.randbelow
    p: int = SNEAK_PRIME
    sent: Counters = field(default_factory=Counters)

    def start(self) -> Outgoing:
        """Draw M and send every neighbour its row."""
        check_range("k", self.k, 1)
        if not 0 <= self.secret < self.p:
            raise ParameterError(f"secret must be in 0..{self.p - 1}")
        m = [[0] * self.k for _ in range(self.k)]
        for a in range(self.k):
            for b in range(a, self.k):
                if a or b:
                    m[a][b] = m[b][a] = self.randbelow(self.p)
                    self.sent.randomness += 1
        m[0][0] = self.secret
        out: Outgoing = []
        for v, alpha in self.neighbours.items():
            psi = [pow(alpha, a, self.p) for a in range(self.k)]
            row = [sum(m[a][b] * psi[b] for b in range(self.k)) % self.p for a in range(self.k)]
            out.append((v, {"t": "row", "from": self.name, "row": row}))
            self.sent.symbols += self.k
        return out

    def handle(self, msg: Message) -> Outgoing:
        """The dealer ignores everything after its first move."""
        return []


@dataclass
class Participant:
    """A node: its own point, its neighbours' points, the dealer's name, and what it received."""

    name: str
    alpha: int
    neighbours: dict[str, int]
    dealer: str
    k: int
    dealer_adjacent: bool = False
    p: int = SNEAK_PRIME
    row: list[int] | None = None
    sent: Counters = field(default_factory=Counters)
    informed: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)
    symbols: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> int | None:
        """f(alpha): this node's Shamir share, once it has its row."""
        return None if self.row is None else self.row[0]

    def start(self) -> Outgoing:
        """Participants wait for messages."""
        return []

    def handle(self, msg: Message) -> Outgoing:
        """React to one message; return what to send."""
        kind, sender = msg["t"], msg["from"]
        if kind == "row" and sender == self.dealer and self.row is None:
            return self._got_row([int(v) % self.p for v in msg["row"]])
        if kind == "informed" and sender in self.neighbours:
            self.informed.append(sender)
            return self._ask()
        if kind == "request" and sender in self.neighbours and self.row is not None:
            self.sent.symbols += 1
            value = evaluate(self.row, self.neighbours[sender], self.p)
            return [(sender, {"t": "sym", "from": self.name, "value": value})]
        if kind == "sym" and sender in self.requested and self.row is None:
            self.symbols[sender] = int(msg["value"]) % self.p
            if len(self.symbols) == self.k:
                xs = [self.neighbours[v] for v in self.symbols]
                return self._got_row(interpolate(xs, list(self.symbols.values()), self.p))
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

    def _got_row(self, row: list[int]) -> Outgoing:
        self.row = row
        targets = [v for v in self.neighbours if v != self.dealer]
        self.sent.control += len(targets)
        return [(v, {"t": "informed", "from": self.name}) for v in targets]


def build_actors(
    net: Network, k: int, secret: int | None, randbelow: RandBelow | None = None
) -> dict[str, Dealer | Participant]:
    """One actor per node of ``net``, each given local knowledge only.

    The dealer shares ``secret``, or a uniformly random field element when it is None; its
    randomness comes from ``randbelow`` (default: the ``secrets`` module).
    """
    dealer = net.dealer
    draw = randbelow or secrets.randbelow

    def points(v: str) -> dict[str, int]:
        return {u: net.alphas[u] for u in net.graph.adj[v] if u != dealer}

    dealer_actor = Dealer(dealer, points(dealer), k, 0 if secret is None else secret, draw)
    if secret is None:  # drawn after construction: the field size is the dealer's
        dealer_actor.secret = draw(dealer_actor.p)
    actors: dict[str, Dealer | Participant] = {dealer: dealer_actor}
    for v in net.participants:
        adjacent = net.graph.has_edge(v, dealer)
        actors[v] = Participant(v, net.alphas[v], points(v), dealer, k, adjacent)
    return actors


def sneak_randomness(k: int) -> int:
    """Random symbols SNEAK's dealer draws: the free entries of a symmetric k x k matrix."""
    return k * (k + 1) // 2 - 1


def check_shares(
    shares: dict[int, int], k: int, secret: int, p: int = SNEAK_PRIME, all_subsets_up_to: int = 12
) -> int:
    """Verify that the points (alpha -> share) are a (n, k) Shamir sharing of ``secret``.

    All points must lie on one polynomial of degree < k with f(0) = secret (then any k combine
    to it); for at most ``all_subsets_up_to`` points every k-subset is also combined explicitly.
    Returns the number of k-subsets combined; raises IntegrityError naming a bad point.
    """
    xs = sorted(shares)
    if len(xs) < k:
        raise IntegrityError(f"only {len(xs)} shares, need k={k}")
    base = xs[:k]
    for x in xs[k:]:
        w = lagrange_weights(base, x, p)
        if sum(wi * shares[b] for wi, b in zip(w, base, strict=True)) % p != shares[x]:
            raise IntegrityError(f"share at point {x} is off the sharing polynomial")
    subsets = list(combinations(xs, k)) if len(xs) <= all_subsets_up_to else [tuple(base)]
    for subset in subsets:
        w = lagrange_weights(subset, 0, p)
        if sum(wi * shares[b] for wi, b in zip(w, subset, strict=True)) % p != secret:
            raise IntegrityError(f"shares at points {subset} do not combine to the secret")
    return len(subsets)
