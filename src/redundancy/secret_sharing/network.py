"""The network SNEAK runs on: a networkx graph with a dealer, where every node knows only its
one-hop neighbours; the k-propagating condition; graph loading and named generators.

Node labels are strings (they travel in messages); participant i gets the public evaluation
point alpha_i = i + 1 in the graph's node order (dealer excluded).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from redundancy.errors import ConfigError, ParameterError, check_range

DEALER = "D"
GENERATORS = ("rgg", "er")


@dataclass(frozen=True)
class Network:
    """A graph, its dealer, and the public point of every participant.

    Participants get the points 1..n in graph order (the dealer excluded).

    Parameters
    ----------
    graph : networkx.Graph
        The network; nodes are names, edges the links a node can send on.
    dealer : str, default "D"
        The node that holds the secret.

    Attributes
    ----------
    alphas : dict of str to int
        Each participant's public point (its share index).

    Raises
    ------
    ParameterError
        If the dealer is not a node, or there is no participant.

    Examples
    --------
    >>> import networkx as nx
    >>> net = Network(nx.complete_graph(["D", "a", "b", "c"]))
    >>> net.alphas, net.n
    ({'a': 1, 'b': 2, 'c': 3}, 3)
    """

    graph: nx.Graph
    dealer: str = DEALER
    alphas: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        if self.dealer not in self.graph:
            raise ParameterError(f"dealer {self.dealer!r} is not a node of the graph")
        if self.graph.number_of_nodes() < 2:
            raise ParameterError("the graph needs the dealer and at least one participant")
        points = {v: i + 1 for i, v in enumerate(v for v in self.graph if v != self.dealer)}
        object.__setattr__(self, "alphas", points)

    @property
    def participants(self) -> list[str]:
        """Every node but the dealer, in graph order."""
        return list(self.alphas)

    @property
    def n(self) -> int:
        """Number of participants."""
        return len(self.alphas)

    def neighbours(self, node: str) -> list[str]:
        """One-hop neighbours of ``node`` (the only topology a node knows)."""
        return list(self.graph.adj[node])


@dataclass(frozen=True)
class Propagation:
    """Result of the k-propagating check.

    ``order``: participants that can obtain a row, each a dealer neighbour or with >= k neighbours
    earlier in the order; ``rounds[v]``: the synchronous round in which v completes (0 = dealer
    neighbours); ``stuck``: when some participant cannot be reached, the one closest to it (most
    informed neighbours), with ``stuck_informed`` such neighbours.
    """

    order: list[str]
    rounds: dict[str, int]
    stuck: str | None
    stuck_informed: int

    @property
    def ok(self) -> bool:
        """True if every participant is reached (the dealer is k-propagating)."""
        return self.stuck is None


def k_propagation(net: Network, k: int) -> Propagation:
    """k-threshold bootstrap percolation from the dealer's neighbours, round by round."""
    check_range("k", k, 1)
    g, dealer = net.graph, net.dealer
    rounds = {v: 0 for v in g.adj[dealer]}
    order = list(rounds)
    count = dict.fromkeys(net.participants, 0)
    frontier, r = order, 0
    while frontier:
        r += 1
        nxt = []
        for u in frontier:
            for v in g.adj[u]:
                if v == dealer or v in rounds:
                    continue
                count[v] += 1
                if count[v] == k:
                    nxt.append(v)
        for v in nxt:
            rounds[v] = r
        order.extend(nxt)
        frontier = nxt
    missing = [v for v in net.participants if v not in rounds]
    if not missing:
        return Propagation(order, rounds, None, 0)
    stuck = max(missing, key=lambda v: count[v])
    return Propagation(order, rounds, stuck, count[stuck])


def require_k_propagating(net: Network, k: int) -> Propagation:
    """The propagation, or ParameterError naming the stuck node."""
    prop = k_propagation(net, k)
    if not prop.ok:
        raise ParameterError(
            f"dealer {net.dealer!r} is not {k}-propagating: node {prop.stuck!r} has only "
            f"{prop.stuck_informed} neighbour(s) that can obtain a row, needs k={k}"
        )
    return prop


def propagating_part(net: Network, k: int) -> Network:
    """The sub-network of the dealer and the participants it can reach k-propagatingly.

    Removing unreachable participants changes nothing for the others (they never informed
    anyone), so experiments on random graphs use this part and report its size.
    """
    prop = k_propagation(net, k)
    return Network(nx.Graph(net.graph.subgraph([net.dealer, *prop.order])), net.dealer)


def generate(
    kind: str, n: int, seed: int = 0, degree: float = 8.0, dealer_degree: int | None = None
) -> Network:
    """A named random graph with ``n`` participants plus a dealer ``D``.

    ``rgg``: random geometric in the unit square with mean degree ~``degree`` (the dealer at the
    centre); ``er``: Erdos-Renyi G(n+1, degree/n). With ``dealer_degree`` the dealer is instead
    linked to that many participants (the nearest ones for ``rgg``, random ones for ``er``): a
    well-connected dealer is what lets SNEAK bootstrap on sparse Erdos-Renyi graphs.
    """
    check_range("n", n, 1, 1_000_000)
    if not degree > 0:
        raise ParameterError(f"degree={degree} must be > 0")
    if kind == "rgg":
        radius = math.sqrt(degree / (math.pi * (n + 1)))
        rng = random.Random(seed)
        pos = {v: (rng.random(), rng.random()) if v else (0.5, 0.5) for v in range(n + 1)}
        g = nx.random_geometric_graph(n + 1, radius, pos=pos)
    elif kind == "er":
        g = nx.gnp_random_graph(n + 1, min(1.0, degree / max(n, 1)), seed=seed)
    else:
        raise ParameterError(f"graph generator {kind!r} is unknown (allowed: {list(GENERATORS)})")
    if dealer_degree is not None:
        check_range("dealer_degree", dealer_degree, 1, n)
        g.remove_edges_from(list(g.edges(0)))
        if kind == "rgg":
            pos = nx.get_node_attributes(g, "pos")
            near = sorted(range(1, n + 1), key=lambda v: math.dist(pos[v], pos[0]))
        else:
            near = random.Random(seed + 1).sample(range(1, n + 1), n)
        g.add_edges_from((0, v) for v in near[:dealer_degree])
    mapping = {v: (DEALER if v == 0 else str(v)) for v in g}
    plain = nx.Graph()
    plain.add_nodes_from(mapping[v] for v in sorted(g))
    plain.add_edges_from((mapping[u], mapping[v]) for u, v in g.edges)
    return Network(plain, DEALER)


def load(spec: str, dealer: str = DEALER, seed: int = 0) -> Network:
    """A network from a file (``.graphml``, else an edge list ``u v`` per line) or a generator
    spec ``kind:n[:degree[:dealer_degree]]`` such as ``rgg:200`` or ``er:1000:20:40``."""
    path = Path(spec)
    if path.exists():
        try:
            if path.suffix.lower() == ".graphml":
                raw = nx.read_graphml(path)
            else:
                raw = nx.read_edgelist(path, nodetype=str, data=False, comments="#")
        except (OSError, nx.NetworkXError, ValueError, TypeError, SyntaxError) as exc:
            raise ConfigError(f"cannot read graph file {path}: {exc}") from None
        g = nx.Graph()
        g.add_nodes_from(str(v) for v in raw)
        g.add_edges_from((str(u), str(v)) for u, v in raw.edges if u != v)
        return Network(g, dealer)
    kind, _, rest = spec.partition(":")
    if kind not in GENERATORS:
        raise ParameterError(
            f"graph {spec!r} is neither a file nor a generator spec "
            f"(kind:n[:degree[:dealer_degree]], kind in {list(GENERATORS)})"
        )
    parts = rest.split(":") if rest else []
    try:
        n = int(parts[0]) if parts else 50
        degree = float(parts[1]) if len(parts) > 1 else 8.0
        dealer_degree = int(parts[2]) if len(parts) > 2 else None
    except ValueError:
        raise ParameterError(
            f"graph spec {spec!r}: n and dealer_degree must be integers, degree a number"
        ) from None
    return generate(kind, n, seed=seed, degree=degree, dealer_degree=dealer_degree)
