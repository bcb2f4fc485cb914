"""The TCP runtime (one process per node, loopback only): the shares it leaves rebuild the secret
under an independent Lagrange interpolation, counts match the simulator, it survives a participant
that dies mid-protocol and malformed messages, and it runs past the former 64-process cap."""

from __future__ import annotations

import asyncio
import multiprocessing
import random

import pytest
from secret_sharing_reference import assert_valid_sharing, secret_from_shares

from redundancy.errors import ParameterError
from redundancy.secret_sharing import tcp
from redundancy.secret_sharing.network import Network, generate, k_propagation, propagating_part
from redundancy.secret_sharing.sim import simulate
from redundancy.secret_sharing.sneak import build_actors
from redundancy.secret_sharing.tcp import run_tcp

KEY = bytes(range(100, 132))


@pytest.fixture(scope="module")
def net() -> Network:
    for seed in range(50):
        candidate = propagating_part(generate("rgg", 14, seed=seed, degree=10), 3)
        if candidate.n >= 10 and candidate.n > len(candidate.graph.adj[candidate.dealer]):
            return candidate
    raise AssertionError("no suitable graph")


def test_tcp_shares_rebuild_the_secret_and_match_the_simulator(net):
    assert net.n >= 10
    tcp_run = run_tcp(net, 3, KEY, timeout=15, randbelow=random.Random(7).randrange)
    sim = simulate(net, 3, KEY, seed=0, randbelow=random.Random(7).randrange)
    assert_valid_sharing(tcp_run, KEY, 3)
    assert tcp_run.check.startswith("ok")
    assert (tcp_run.symbols, tcp_run.control, tcp_run.randomness) == (
        sim.symbols,
        sim.control,
        sim.randomness,
    )
    assert tcp_run.shares == sim.shares  # same dealer randomness: same shares, whatever the timing
    assert not multiprocessing.active_children()


def test_tcp_survives_a_crash(net):
    direct = set(net.graph.adj[net.dealer])
    victim = next(  # a dealer neighbour next to a node that needs symbols: it will be asked
        v for v in direct if any(u not in direct and u != net.dealer for u in net.graph.adj[v])
    )
    result = run_tcp(net, 3, KEY, timeout=15, crash=victim)
    graph = net.graph.copy()
    graph.remove_node(victim)
    reachable = set(k_propagation(Network(graph, net.dealer), 3).order)
    assert victim in result.missing
    assert set(result.missing) == set(net.participants) - reachable
    survivors = sorted(result.shares)
    assert secret_from_shares(result, survivors[:3]) == KEY
    assert secret_from_shares(result, survivors[-3:]) == KEY
    assert not multiprocessing.active_children()


def test_tcp_runs_more_than_64_participants():
    net = propagating_part(generate("rgg", 75, seed=1, degree=14), 3)
    assert net.n > 64
    result = run_tcp(net, 3, KEY, timeout=30)
    assert_valid_sharing(result, KEY, 3)
    assert not multiprocessing.active_children()


def test_tcp_limits(net, monkeypatch):
    with pytest.raises(ParameterError, match="crash node"):
        run_tcp(net, 3, KEY, crash="nobody")
    with pytest.raises(ParameterError, match="k=1 is out of range"):
        run_tcp(net, 1, KEY)
    monkeypatch.setattr(tcp, "max_participants", lambda: 5)
    with pytest.raises(ParameterError, match=r"participants=.*file descriptors"):
        run_tcp(net, 3, KEY)


def test_malformed_lines_close_the_connection_and_change_nothing(net):
    """A node's server drops a connection that sends a malformed line, and keeps no state."""
    actors = build_actors(net, 3, KEY, random.Random(1).randrange)
    name = next(v for v in net.participants if v not in net.graph.adj[net.dealer])
    node = tcp._Node(actors[name], {}, crash=False)
    bad = [b"not json\n", b'{"t": "row", "from": "D", "row": [[1, 2]]}\n', b"[" * 5000 + b"\n"]

    async def feed(line: bytes) -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(line + b'{"t": "informed", "from": "%s"}\n' % net.participants[0].encode())
        reader.feed_eof()

        class Writer:
            def close(self) -> None:
                pass

        await node.serve_client(reader, Writer())

    for line in bad:
        asyncio.run(feed(line))
    assert node.actor.row is None and node.actor.informed == []
