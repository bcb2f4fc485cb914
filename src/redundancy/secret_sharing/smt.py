"""The baseline: secure message transmission (SMT) of each share over k node-disjoint paths.

The dealer Shamir-shares the secret itself (k - 1 random symbols) and sends each participant its
share: directly to a neighbour (1 symbol), otherwise as k additive pieces (k - 1 random pads) along
k node-disjoint paths, so k - 1 curious nodes miss at least one piece. Costs:

- randomness: (k - 1) * (1 + number of non-neighbours)  <=  (k - 1)(n + 1);
- communication: |N(D)| + sum over non-neighbours of the total length of their k paths.

Paths are the cheapest k node-disjoint ones: every node v becomes v_in -> v_out (capacity 1, cost
0), every edge {u, v} the arcs u_out -> v_in and v_out -> u_in (capacity 1, cost 1), and k units of
min-cost flow are pushed from the dealer to v_in by successive shortest paths (Dijkstra with
potentials, stopping at the target).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from redundancy.errors import ParameterError, check_range
from redundancy.secret_sharing.network import Network


class _SplitGraph:
    """Arc arrays of the node-split residual graph; arc e's reverse is e ^ 1."""

    def __init__(self, net: Network) -> None:
        self.index = {v: i for i, v in enumerate(net.graph)}
        self.names = list(net.graph)
        self.source = 2 * self.index[net.dealer] + 1  # the dealer's out-node
        self.head: list[int] = []
        self.cap: list[int] = []
        self.cost: list[int] = []
        self.out: list[list[int]] = [[] for _ in range(2 * len(self.names))]
        for v, i in self.index.items():
            if v != net.dealer:
                self._arc(2 * i, 2 * i + 1, 0)
        for u, v in net.graph.edges:
            self._arc(2 * self.index[u] + 1, 2 * self.index[v], 1)
            self._arc(2 * self.index[v] + 1, 2 * self.index[u], 1)

    def _arc(self, a: int, b: int, cost: int) -> None:
        for tail, head, c, cap in ((a, b, cost, 1), (b, a, -cost, 0)):
            self.out[tail].append(len(self.head))
            self.head.append(head)
            self.cost.append(c)
            self.cap.append(cap)


@dataclass(frozen=True)
class DisjointPaths:
    """The cheapest node-disjoint dealer -> target paths found (fewer than k if none exist)."""

    paths: list[list[str]]
    cost: int


def _shortest_path(g: _SplitGraph, cap: list[int], pot: list[int], target: int) -> list[int] | None:
    dist = {g.source: 0}
    via: dict[int, int] = {}
    done: set[int] = set()
    heap = [(0, g.source)]
    while heap:
        d, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        if u == target:
            break
        for e in g.out[u]:
            if cap[e] <= 0:
                continue
            v = g.head[e]
            nd = d + g.cost[e] + pot[u] - pot[v]
            if nd < dist.get(v, nd + 1):
                dist[v] = nd
                via[v] = e
                heapq.heappush(heap, (nd, v))
    if target not in done:
        return None
    reach = dist[target]
    for v in done:
        pot[v] += dist[v] - reach  # keep reduced costs >= 0 with the early stop
    for i in range(len(pot)):
        pot[i] += reach
    arcs, v = [], target
    while v != g.source:
        arcs.append(via[v])
        v = g.head[via[v] ^ 1]
    return arcs


def disjoint_paths(
    net: Network, target: str, k: int, graph: _SplitGraph | None = None
) -> DisjointPaths:
    """The min-cost set of up to ``k`` node-disjoint paths from the dealer to ``target``."""
    check_range("k", k, 1)
    if target not in net.alphas:
        raise ParameterError(f"target {target!r} is not a participant")
    g = graph or _SplitGraph(net)
    cap = list(g.cap)
    pot = [0] * len(g.out)
    t = 2 * g.index[target]
    found = 0
    while found < k:
        arcs = _shortest_path(g, cap, pot, t)
        if arcs is None:
            break
        for e in arcs:
            cap[e] -= 1
            cap[e ^ 1] += 1
        found += 1
    used = {e for e in range(0, len(cap), 2) if cap[e] == 0 and g.cost[e] == 1}
    paths, total = [], 0
    for first in [e for e in g.out[g.source] if e in used]:
        path, e = [net.dealer], first
        while True:
            v = g.head[e]
            path.append(g.names[v // 2])
            total += 1
            if v == t:
                break
            e = next(a for a in g.out[v + 1] if a in used)
        paths.append(path)
    return DisjointPaths(paths, total)


@dataclass(frozen=True)
class SmtCost:
    """Symbols of randomness and of communication the SMT baseline spends on a network."""

    randomness: int
    communication: int
    short: str | None  # first participant with fewer than k disjoint paths (None if all have k)


def smt_cost(net: Network, k: int) -> SmtCost:
    """SMT's costs, or the first participant that lacks k node-disjoint paths (k-connectivity)."""
    g = _SplitGraph(net)
    direct = set(net.graph.adj[net.dealer])
    communication = len(direct)
    randomness = k - 1
    for v in net.participants:
        if v in direct:
            continue
        found = disjoint_paths(net, v, k, g)
        if len(found.paths) < k:
            return SmtCost(randomness, communication, v)
        communication += found.cost
        randomness += k - 1
    return SmtCost(randomness, communication, None)
