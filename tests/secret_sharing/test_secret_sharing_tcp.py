"""The TCP runtime (one process per node, loopback only): same counts as the simulator, and it
survives a participant that dies mid-protocol without leaving processes behind."""

from __future__ import annotations

import multiprocessing
import random

import pytest

from redundancy.errors import ParameterError
from redundancy.secret_sharing.network import Network, generate, k_propagation, propagating_part
from redundancy.secret_sharing.sim import simulate
from redundancy.secret_sharing.tcp import run_tcp


@pytest.fixture(scope="module")
def net() -> Network:
    for seed in range(50):
        candidate = propagating_part(generate("rgg", 14, seed=seed, degree=10), 3)
        if candidate.n >= 10 and candidate.n > len(candidate.graph.adj[candidate.dealer]):
            return candidate
    raise AssertionError("no suitable graph")


def test_tcp_matches_simulator(net):
    assert net.n >= 10
    tcp = run_tcp(net, 3, 1234, timeout=15, randbelow=random.Random(7).randrange)
    sim = simulate(net, 3, 1234, seed=0, randbelow=random.Random(7).randrange)
    assert tcp.check.startswith("ok") and not tcp.missing
    assert (tcp.symbols, tcp.control, tcp.randomness) == (sim.symbols, sim.control, sim.randomness)
    assert tcp.shares == sim.shares  # same dealer randomness: same shares, whatever the timing
    assert not multiprocessing.active_children()


def test_tcp_survives_a_crash(net):
    direct = set(net.graph.adj[net.dealer])
    victim = next(  # a dealer neighbour next to a node that needs symbols: it will be asked
        v for v in direct if any(u not in direct and u != net.dealer for u in net.graph.adj[v])
    )
    result = run_tcp(net, 3, 99, timeout=15, crash=victim)
    graph = net.graph.copy()
    graph.remove_node(victim)
    reachable = set(k_propagation(Network(graph, net.dealer), 3).order)
    assert victim in result.missing
    assert set(result.missing) == set(net.participants) - reachable
    assert "others ok" in result.check or result.check.startswith("1 participant")
    assert not multiprocessing.active_children()


def test_tcp_limits(net):
    with pytest.raises(ParameterError, match="crash node"):
        run_tcp(net, 3, 1, crash="nobody")
    with pytest.raises(ParameterError, match="participants=100"):
        run_tcp(generate("rgg", 100, seed=1), 2, 1)
