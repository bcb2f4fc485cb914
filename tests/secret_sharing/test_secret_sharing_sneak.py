"""SNEAK: propagation checker vs brute force, correctness against an independent Lagrange
interpolation written here, counts, refusals, message fuzzing, security as linear algebra."""

from __future__ import annotations

import contextlib
import itertools
import json
import random

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from secret_sharing_reference import assert_valid_sharing, lagrange_at_zero, secret_from_shares

from redundancy.errors import ConfigError, IntegrityError, ParameterError, RedundancyError
from redundancy.secret_sharing import combine
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
from redundancy.secret_sharing.sneak import (
    Participant,
    check_shares,
    decode_message,
    sneak_randomness,
)

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
        secret = f"secret number {i}".encode()
        result = simulate(net, k, secret, seed=i, randbelow=random.Random(i).randrange)
        assert_valid_sharing(result, secret, k, seed=i)
        assert result.check.startswith("ok")
        chunks = -(-(len(secret) + 16) // 7)
        assert result.chunks == chunks
        assert result.randomness == sneak_randomness(k) * chunks == (k * (k + 1) // 2 - 1) * chunks
        assert result.symbols == k * net.n * chunks


def test_large_simulation_and_counts():
    net = propagating_part(generate("rgg", 1000, seed=3, degree=20), 3)
    result = simulate(net, 3, b"\x07" * 5, seed=1, randbelow=random.Random(2).randrange)
    assert_valid_sharing(result, b"\x07" * 5, 3)
    assert result.check.startswith("ok") and net.n > 900 and result.chunks == 3
    assert result.symbols == 3 * net.n * 3
    non_dealer = sum(1 for v in net.participants for u in net.graph.adj[v] if u != "D")
    requests = 3 * (net.n - net.graph.degree("D"))
    assert result.control == non_dealer + requests


def test_default_secret_is_a_random_32_byte_key():
    net = propagating_part(generate("rgg", 40, seed=1, degree=12), 2)
    first, second = (simulate(net, 2, seed=0) for _ in range(2))
    assert first.length == 32 and first.chunks == 7  # 48 bytes of key and tag, 7 per symbol
    keys = {secret_from_shares(r, sorted(r.shares)[:2]) for r in (first, second)}
    assert len(keys) == 2  # drawn fresh from the secrets module each time


def test_shares_in_shamir_format_combine_to_the_secret():
    net = propagating_part(generate("rgg", 30, seed=2, degree=12), 3)
    key = bytes(range(32))
    shares = simulate(net, 3, key, randbelow=random.Random(5).randrange).shamir_shares()
    lines = [shares[v].to_text() for v in sorted(shares)]
    assert combine(lines[:3]) == key and combine(lines[-3:]) == key
    assert all(line.startswith("sss1:p0x1fffffffffffffff:k=3:") for line in lines)


def test_check_shares_refuses_a_perturbed_share():
    """check_shares must refuse a share moved off the polynomial, and so must Shamir combine."""
    net = propagating_part(generate("rgg", 20, seed=3, degree=10), 3)
    result = simulate(net, 3, b"perturb me", randbelow=random.Random(1).randrange)
    points = {result.points[v]: list(s) for v, s in result.shares.items()}
    values = [lagrange_at_zero({x: s[c] for x, s in list(points.items())[:3]}) for c in range(4)]
    assert check_shares(points, 3, values) >= 1
    victim = sorted(points)[-1]
    points[victim][1] = (points[victim][1] + 1) % P
    with pytest.raises(IntegrityError, match=f"point {victim}"):
        check_shares(points, 3, values)
    wrong = [values[0] ^ 1, *values[1:]]
    first_three = {x: points[x] for x in sorted(points)[:3]}
    with pytest.raises(IntegrityError, match="do not combine to the secret"):
        check_shares(first_three, 3, wrong)


@pytest.mark.parametrize(
    ("edges", "k", "match"),
    [
        ([("D", "a"), ("D", "b")], 3, "k=3 is out of range.*2 participants"),  # n=2 < k
        ([("D", "a"), ("D", "b"), ("a", "b")], 1, "k=1 is out of range.*in clear"),
        ([("D", "a"), ("D", "b"), ("a", "b")], 0, "k=0 is out of range"),
    ],
)
def test_thresholds_sneak_cannot_serve_are_refused(edges, k, match):
    net = Network(nx.Graph(edges), "D")
    with pytest.raises(ParameterError, match=match):
        simulate(net, k, b"secret")


SYMBOLS = st.integers(0, P - 1)


def messages(k: int, chunks: int):
    name = st.text(min_size=1, max_size=8)
    return st.one_of(
        st.builds(lambda f: {"t": "informed", "from": f}, name),
        st.builds(lambda f: {"t": "request", "from": f}, name),
        st.builds(
            lambda f, v: {"t": "sym", "from": f, "value": v},
            name,
            st.lists(SYMBOLS, min_size=chunks, max_size=chunks),
        ),
        st.builds(
            lambda f, r: {"t": "row", "from": f, "row": r},
            name,
            st.lists(st.lists(SYMBOLS, min_size=k, max_size=k), min_size=chunks, max_size=chunks),
        ),
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_message_fuzz_bytes(line):
    with contextlib.suppress(IntegrityError):
        decode_message(line, k=3, chunks=2)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@settings(max_examples=120, deadline=None)
@given(
    kind=st.sampled_from(["row", "sym", "informed", "request", "other"]),
    extra=st.dictionaries(st.sampled_from(["from", "row", "value", "x"]), JSON_VALUES),
)
def test_decode_message_fuzz_json(kind, extra):
    line = json.dumps({"t": kind, **extra}).encode()
    try:
        msg = decode_message(line, k=2, chunks=2)
    except IntegrityError:
        return
    assert msg["t"] == kind and isinstance(msg["from"], str)  # only well-shaped messages pass
    for value in msg.get("value", []) + [v for r in msg.get("row", []) for v in r]:
        assert type(value) is int and 0 <= value < P


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_participant_survives_any_decoded_messages(data):
    """A participant fed any sequence of well-formed (decoded) messages never raises, and what it
    sends is again well formed."""
    k, chunks = 2, 2
    node = Participant("v", 3, {"a": 1, "b": 2, "c": 4}, "D", k, chunks)
    for msg in data.draw(st.lists(messages(k, chunks), max_size=12)):
        if data.draw(st.booleans()):
            msg["from"] = data.draw(st.sampled_from(["a", "b", "c", "D"]))
        sent = node.handle(decode_message(json.dumps(msg).encode(), k=k, chunks=chunks))
        for _, out in sent:
            decode_message(json.dumps(out).encode(), k=k, chunks=chunks)
    assert node.row is None or len(node.row) == chunks


def test_oversized_json_is_refused_not_crashing():
    for line in (b"[" * 100_000, b'{"t": "sym", "from": "a", "value": [' + b"9" * 5000 + b"]}"):
        with pytest.raises(RedundancyError):
            decode_message(line, k=2, chunks=1)


def test_delays_do_not_change_counts():
    net = propagating_part(generate("er", 300, seed=4, degree=14, dealer_degree=30), 3)
    runs = [simulate(net, 3, b"7", seed=s, jitter=j) for s, j in ((0, 0.0), (1, 0.5), (2, 5.0))]
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
            simulate(net, k, b"99", seed=i, transcript=transcript)
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
