"""In-process discrete-event runtime for SNEAK: delivers the actors' messages with seeded random
delays (1 + jitter * U[0, 1) time units per hop), one message at a time, no shared state.
Thousands of nodes take about a second.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from redundancy.secret_sharing.network import Network, require_k_propagating
from redundancy.secret_sharing.shares import Share
from redundancy.secret_sharing.sneak import (
    SNEAK_FIELD,
    Dealer,
    Message,
    Participant,
    RandBelow,
    build_actors,
    check_shares,
    check_threshold,
)

SYMBOL_BYTES = 8  # one GF(2^61 - 1) symbol in a share payload (the Shamir prime layout)


@dataclass
class RunResult:
    """What one SNEAK run did and whether its outcome is a valid sharing.

    Counts (``symbols``, ``randomness``) add up over all chunks.

    Attributes
    ----------
    runtime : str
        Which runtime ran it (``"sim"`` or ``"tcp"``).
    n : int
        Number of participants.
    k : int
        Threshold.
    symbols : int
        GF(p) symbols sent by all nodes.
    control : int
        Control messages sent.
    randomness : int
        Random GF(p) symbols drawn.
    rounds : int
        Synchronous rounds until the last participant completes.
    elapsed : float
        Time of the last delivery (virtual units for ``sim``, seconds for ``tcp``).
    shares : dict of str to list of int
        Each participant that finished -> its share (one GF(p) symbol per chunk).
    points : dict of str to int
        Each such participant's public point.
    missing : list of str
        Participants left without a share.
    check : str
        The verdict on the shares (starts with ``"ok"`` when they form a valid sharing).
    chunks : int
        GF(p) symbols that carry the secret and its tag.
    length : int
        Length of the secret in bytes.
    group_id : bytes
        The split's identifier, as in a Shamir share.

    Examples
    --------
    >>> import networkx as nx
    >>> from redundancy.secret_sharing.network import Network
    >>> result = simulate(Network(nx.complete_graph(["D", "a", "b", "c"])), k=2, secret=b"hi")
    >>> result.n, result.k, result.missing, result.check.startswith("ok")
    (3, 2, [], True)
    """

    runtime: str
    n: int
    k: int
    symbols: int
    control: int
    randomness: int
    rounds: int
    elapsed: float
    shares: dict[str, list[int]] = field(repr=False)
    points: dict[str, int] = field(repr=False)
    missing: list[str]
    check: str
    chunks: int
    length: int
    group_id: bytes = field(repr=False)

    def shamir_shares(self) -> dict[str, Share]:
        """Each participant's share in the Shamir share format (``redundancy shamir combine``).

        Returns
        -------
        dict of str to Share
            Participant name -> its share of field ``SNEAK_FIELD`` at index alpha.

        Examples
        --------
        >>> import networkx as nx
        >>> from redundancy.secret_sharing import combine
        >>> from redundancy.secret_sharing.network import Network
        >>> net = Network(nx.Graph([("D", "a"), ("D", "b"), ("a", "c"), ("b", "c")]), "D")
        >>> shares = simulate(net, 2, b"key").shamir_shares()
        >>> combine([shares["a"], shares["c"]])
        b'key'
        """
        return {
            v: Share(
                SNEAK_FIELD,
                self.k,
                self.points[v],
                self.group_id,
                self.length,
                b"".join(x.to_bytes(SYMBOL_BYTES, "big") for x in share),
            )
            for v, share in self.shares.items()
        }


def summarize(
    runtime: str,
    net: Network,
    k: int,
    dealer: Dealer,
    actors: dict[str, Dealer | Participant],
    rounds: int,
    elapsed: float,
) -> RunResult:
    """Add up the actors' counters and verify the shares they hold."""
    shares = {v: a.share for v, a in actors.items() if isinstance(a, Participant) and a.row}
    missing = [v for v in net.participants if v not in shares]
    check = "ok"
    if len(shares) >= k:
        tested = check_shares({net.alphas[v]: s for v, s in shares.items()}, k, dealer.values)
        check = f"ok: all {len(shares)} shares on one polynomial, {tested} k-subset(s) combined"
    if missing:
        check = f"{len(missing)} participant(s) without a share {missing[:10]}; others {check}"
    return RunResult(
        runtime=runtime,
        n=net.n,
        k=k,
        symbols=sum(a.sent.symbols for a in actors.values()),
        control=sum(a.sent.control for a in actors.values()),
        randomness=sum(a.sent.randomness for a in actors.values()),
        rounds=rounds,
        elapsed=elapsed,
        shares=shares,
        points={v: net.alphas[v] for v in shares},
        missing=missing,
        check=check,
        chunks=len(dealer.values),
        length=len(dealer.secret),
        group_id=dealer.group_id,
    )


def simulate(
    net: Network,
    k: int,
    secret: bytes | None = None,
    *,
    seed: int = 0,
    jitter: float = 0.5,
    randbelow: RandBelow | None = None,
    transcript: list[tuple[str, Message]] | None = None,
) -> RunResult:
    """Run SNEAK on ``net`` to share ``secret``, delivering messages in a discrete-event loop.

    The dealer knows only its neighbours; each participant ends with a Shamir share of the
    secret, and the outcome is checked (``RunResult.check``).

    Parameters
    ----------
    net : Network
        The graph and its dealer; the dealer must be k-propagating.
    k : int
        Threshold, 2..n.
    secret : bytes, optional
        The secret (default: a fresh 32-byte key).
    seed : int, default 0
        Seeds the message delays only.
    jitter : float, default 0.5
        Each hop takes 1 + jitter * U[0, 1) time units.
    randbelow : callable, optional
        ``randbelow(p) -> int`` randomness for the dealer (default: the ``secrets`` module).
    transcript : list, optional
        Every delivered (receiver, message) is appended to it.

    Returns
    -------
    RunResult
        Counts, rounds, the shares and the check of the outcome.

    Raises
    ------
    ParameterError
        If k is outside 2..n, or the dealer is not k-propagating (naming the stuck node).

    Examples
    --------
    >>> import networkx as nx
    >>> from redundancy.secret_sharing import combine
    >>> from redundancy.secret_sharing.network import Network
    >>> result = simulate(Network(nx.complete_graph(["D", "a", "b", "c"])), k=2, secret=b"hi")
    >>> result.check
    'ok: all 3 shares on one polynomial, 3 k-subset(s) combined'
    >>> shares = result.shamir_shares()
    >>> combine([shares["a"], shares["c"]])
    b'hi'
    """
    check_threshold(k, net.n)
    prop = require_k_propagating(net, k)
    actors = build_actors(net, k, secret, randbelow)
    dealer = actors[net.dealer]
    assert isinstance(dealer, Dealer)
    delays = random.Random(seed)
    queue: list[tuple[float, int, str, Message]] = []
    seq = 0
    now = 0.0

    def send(batch: list[tuple[str, Message]]) -> None:
        nonlocal seq
        for dest, msg in batch:
            seq += 1
            heapq.heappush(queue, (now + 1.0 + jitter * delays.random(), seq, dest, msg))

    send(dealer.start())
    while queue:
        now, _, dest, msg = heapq.heappop(queue)
        if transcript is not None:
            transcript.append((dest, msg))
        send(actors[dest].handle(msg))
    rounds = 1 + max(prop.rounds.values(), default=0)
    return summarize("sim", net, k, dealer, actors, rounds, now)
