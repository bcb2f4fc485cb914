"""SNEAK: propagation checker vs brute force, correctness, counts, security as linear algebra."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest

from redundancy.errors import ConfigError, ParameterError
from redundancy.secret_sharing.network import (
    Network,
    generate,
    k_propagation,
    load,
    propagating_part,
)
from redundancy.secret_sharing.prime import SNEAK_PRIME, rank_mod_p
from redundancy.secret_sharing.sim import simulate
from redundancy.secret_sharing.smt import disjoint_paths, smt_cost
from redundancy.secret_sharing.sneak import sneak_randomness

P = SNEAK_PRIME


def small_graphs(count: int, seed: int = 0):
    rng = random.Random(seed)
    for i in range(count):
        n = rng.randint(3, 7)
        g = nx.gnp_random_graph(n + 1, rng.uniform(0.3, 0.9), seed=rng.randint(0, 10**6))
        yield Network(nx.relabel_nodes(g, {v: ("D" if v == 0 else f"v{v}") for v in g}), "D"), i


def brute_force_propagating(net: Network, k: int) -> bool:
    """Some ordering of all participants satisfies the definition (tries every permutation)."""
    direct = set(net.graph.adj["D"])
    for order in itertools.permutations(net.participants):
        placed: set[str] = set()
        for v in order:
            if v not in direct and len(placed & set(net.graph.adj[v])) < k:
                break
            placed.add(v)
        else:
            return True
    return False


def test_checker_matches_brute_force():
    for net, _ in small_graphs(60):
        for k in (1, 2, 3):
            prop = k_propagation(net, k)
            assert prop.ok == brute_force_propagating(net, k)
            if prop.ok:
                placed: set[str] = set()
                for v in prop.order:
                    assert v in net.graph.adj["D"] or len(placed & set(net.graph.adj[v])) >= k
                    placed.add(v)
            else:
                assert prop.stuck in net.participants and prop.stuck_informed < k


def test_refusal_names_the_stuck_node():
    g = nx.Graph([("D", "a"), ("D", "b"), ("a", "c"), ("b", "c"), ("c", "d"), ("a", "d")])
    net = Network(g, "D")
    assert k_propagation(net, 2).order == ["a", "b", "c", "d"]
    with pytest.raises(ParameterError, match="node 'c' has only 2 neighbour"):
        simulate(net, 3)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_every_participant_gets_a_valid_share(k):
    for net, i in small_graphs(25, seed=k):
        if not k_propagation(net, k).ok:
            continue
        secret = 12345 + i
        result = simulate(net, k, secret, seed=i, randbelow=random.Random(i).randrange)
        assert not result.missing
        assert result.check.startswith("ok")
        assert result.randomness == sneak_randomness(k) == k * (k + 1) // 2 - 1
        assert result.symbols == k * net.n


def test_large_simulation_and_counts():
    net = propagating_part(generate("rgg", 1500, seed=3, degree=20), 3)
    result = simulate(net, 3, seed=1, randbelow=random.Random(2).randrange)
    assert result.check.startswith("ok") and net.n > 1400
    assert result.symbols == 3 * net.n
    non_dealer = sum(1 for v in net.participants for u in net.graph.adj[v] if u != "D")
    requests = 3 * (net.n - net.graph.degree("D"))
    assert result.control == non_dealer + requests


def test_delays_do_not_change_counts():
    net = propagating_part(generate("er", 300, seed=4, degree=14, dealer_degree=30), 3)
    runs = [simulate(net, 3, 7, seed=s, jitter=j) for s, j in ((0, 0.0), (1, 0.5), (2, 5.0))]
    assert len({(r.symbols, r.control, r.randomness) for r in runs}) == 1


def views(net: Network, k: int, transcript) -> dict[str, list[list[int]]]:
    """Each participant's received symbols as linear functionals of M's upper triangle."""
    entries = [(a, b) for a in range(k) for b in range(a, k)]

    def functional(x: int, y: int) -> list[int]:  # psi_x^T M psi_y
        return [
            (pow(x, a, P) * pow(y, b, P) + (pow(x, b, P) * pow(y, a, P) if a != b else 0)) % P
            for a, b in entries
        ]

    seen: dict[str, list[list[int]]] = {v: [] for v in net.participants}
    for dest, msg in transcript:
        if msg["t"] == "row":  # (psi_i^T M)_b = sum_a alpha^a M_ab: psi_i^T M e_b
            x = net.alphas[dest]
            for b in range(k):
                seen[dest].append(
                    [
                        (pow(x, a, P) if c == b else 0) + (pow(x, c, P) if a == b and a != c else 0)
                        for a, c in entries
                    ]
                )
        elif msg["t"] == "sym":
            seen[dest].append(functional(net.alphas[msg["from"]], net.alphas[dest]))
    return seen


def test_security_rank():
    """Any k-1 participants' combined view leaves the secret free; some k-set determines it."""
    secret_unit = [1] + [0] * 9  # M_00 is the first upper-triangle entry
    checked = 0
    for net, i in small_graphs(30, seed=11):
        for k in (2, 3):
            if not k_propagation(net, k).ok or net.n < k:
                continue
            transcript: list = []
            simulate(net, k, 99, seed=i, transcript=transcript)
            seen = views(net, k, transcript)
            unit = secret_unit[: k * (k + 1) // 2]
            for coalition in itertools.combinations(net.participants, k - 1):
                rows = [r for v in coalition for r in seen[v]]
                assert rank_mod_p([*rows, unit], P) == rank_mod_p(rows, P) + 1
            learns = any(
                rank_mod_p([*rows, unit], P) == rank_mod_p(rows, P)
                for c in itertools.combinations(net.participants, k)
                for rows in [[r for v in c for r in seen[v]]]
            )
            assert learns
            checked += 1
    assert checked >= 10


def test_disjoint_paths_match_networkx_min_cost_flow():
    for net, _ in small_graphs(30, seed=5):
        h = nx.DiGraph()
        h.add_node(("D", 1))
        for u in net.participants:
            h.add_edge((u, 0), (u, 1), capacity=1, weight=0)
        for a, b in net.graph.edges:
            h.add_edge((a, 1), (b, 0), capacity=1, weight=1)
            h.add_edge((b, 1), (a, 0), capacity=1, weight=1)
        for v in net.participants:
            flow = nx.max_flow_min_cost(h, ("D", 1), (v, 0))
            value = sum(flow[("D", 1)].values())
            for k in (1, 2, 3):
                found = disjoint_paths(net, v, k)
                assert len(found.paths) == min(k, value)
                inner = [u for p in found.paths for u in p[1:-1]]
                assert len(inner) == len(set(inner))  # node-disjoint
                assert all(
                    net.graph.has_edge(a, b) for p in found.paths for a, b in itertools.pairwise(p)
                )
                if k >= value:
                    assert found.cost == nx.cost_of_flow(h, flow)


def test_smt_cost_formula():
    net = propagating_part(generate("rgg", 120, seed=2, degree=14), 3)
    cost = smt_cost(net, 3)
    direct = net.graph.degree("D")
    assert cost.short is None
    assert cost.randomness == 2 * (1 + net.n - direct) <= 2 * (net.n + 1)
    expected = direct + sum(
        disjoint_paths(net, v, 3).cost for v in net.participants if v not in net.graph.adj["D"]
    )
    assert cost.communication == expected
    line = Network(nx.path_graph(["D", "a", "b"]), "D")
    assert smt_cost(line, 2).short == "b"


def test_loading(tmp_path):
    edges = tmp_path / "g.txt"
    edges.write_text("# comment\nD a\nD b\na b\nb c\na c\n")
    net = load(str(edges))
    assert net.n == 3 and k_propagation(net, 2).ok
    gml = tmp_path / "g.graphml"
    nx.write_graphml(net.graph, gml)
    assert set(load(str(gml)).graph.edges) == set(net.graph.edges)
    (tmp_path / "bad.graphml").write_text("<nope")
    with pytest.raises(ConfigError):
        load(str(tmp_path / "bad.graphml"))
    with pytest.raises(ParameterError, match="dealer 'X'"):
        load(str(edges), dealer="X")
    with pytest.raises(ParameterError, match="neither a file"):
        load("nosuch:12")
    with pytest.raises(ParameterError, match="must be integers"):
        load("rgg:abc")
    assert load("er:30:6:10", seed=1).graph.degree("D") == 10
