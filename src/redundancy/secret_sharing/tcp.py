"""Real runtime for SNEAK: every participant is its own process running an asyncio TCP server on
127.0.0.1, executing the same actor code as the simulator.

The parent binds one listening socket per participant (so addresses are known before anyone
starts), forks the node processes, plays the dealer, and collects each node's final state over a
pipe. Messages are JSON lines, each checked by :func:`.sneak.decode_message` before the actor sees
it: a malformed line closes that connection and changes no state. A node that loses a neighbour
(connection refused, reset or closed) tells its actor, which asks another informed neighbour.
Every child is terminated, then killed if it lingers, and joined before :func:`run_tcp` returns,
whatever happened.

Size limit (:func:`max_participants`): one process per participant, each holding file
descriptors. At fork time a child inherits the parent's listening sockets and pipe ends (up to two
per participant) and later holds up to two connections per neighbour; the parent holds the same
plus the dealer's connections. So ``3 n + FD_RESERVE`` descriptors must fit the soft
``RLIMIT_NOFILE`` (1024 on many systems: n <= 320). Memory grows by one Python process per
participant (see docs/secret_sharing.md for the measured figure). Links are not authenticated or
encrypted: this runtime demonstrates the protocol on loopback; it is not a deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import signal
import socket
import time
from multiprocessing.connection import Connection, wait

from redundancy.errors import ParameterError, RedundancyError
from redundancy.secret_sharing.network import Network, require_k_propagating
from redundancy.secret_sharing.sim import RunResult, summarize
from redundancy.secret_sharing.sneak import (
    Dealer,
    Outgoing,
    Participant,
    RandBelow,
    build_actors,
    check_threshold,
    decode_message,
)

FD_RESERVE = 64  # stdio, the event loop's own descriptors, imported libraries
FDS_PER_PARTICIPANT = 3
STALL_S = 2.0
HOST = "127.0.0.1"


def max_participants() -> int:
    """Largest number of participants :func:`run_tcp` starts under this process's file limit.

    Returns
    -------
    int
        ``(soft RLIMIT_NOFILE - FD_RESERVE) // 3`` (see the module docstring for the count).

    Examples
    --------
    >>> max_participants() >= 1
    True
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(1, (soft - FD_RESERVE) // FDS_PER_PARTICIPANT)


class _Node:
    """Transport for one actor: lazily opened connections, one send at a time."""

    def __init__(self, actor: Dealer | Participant, ports: dict[str, int], crash: bool) -> None:
        self.actor = actor
        self.ports = ports
        self.crash = crash
        self.writers: dict[str, asyncio.StreamWriter] = {}
        self.lock = asyncio.Lock()
        self.informed = asyncio.Event()

    async def dispatch(self, out: Outgoing) -> None:
        async with self.lock:
            queue = list(out)
            while queue:
                dest, msg = queue.pop(0)
                try:
                    writer = self.writers.get(dest) or await self._connect(dest)
                    writer.write(json.dumps(msg).encode() + b"\n")
                    await writer.drain()
                except OSError:
                    queue.extend(self._lost(dest))

    def _lost(self, dest: str) -> Outgoing:
        self.writers.pop(dest, None)
        return self.actor.peer_lost(dest) if isinstance(self.actor, Participant) else []

    async def _connect(self, dest: str) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(HOST, self.ports[dest])
        self.writers[dest] = writer
        asyncio.get_running_loop().create_task(self._watch(dest, reader))
        return writer

    async def _watch(self, dest: str, reader: asyncio.StreamReader) -> None:
        """The peer never writes on this connection: EOF or a reset means it is gone."""
        with contextlib.suppress(OSError):
            await reader.read()
        await self.dispatch(self._lost(dest))

    async def serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        actor = self.actor
        try:
            async for line in reader:
                msg = decode_message(line, k=actor.k, chunks=actor.chunks, p=actor.p)
                if self.crash and msg.get("t") == "request":
                    os._exit(3)  # injected failure: die mid-protocol, holding a request
                await self.dispatch(self.actor.handle(msg))
                if getattr(self.actor, "row", None) is not None:
                    self.informed.set()
        except (OSError, ValueError, RedundancyError):  # ValueError: a line over the reader limit
            return
        finally:
            writer.close()


def _child(
    actor: Participant, sock: socket.socket, ports: dict[str, int], pipe: Connection, crash: bool
) -> None:
    async def main() -> None:
        node = _Node(actor, ports, crash)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await asyncio.start_server(node.serve_client, sock=sock)
        informed = asyncio.create_task(node.informed.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([informed, stopping], return_when=asyncio.FIRST_COMPLETED)
        if informed.done():
            pipe.send(("informed", actor.name))
            await stopping
        s = actor.sent
        pipe.send(("final", actor.name, actor.row, s.symbols, s.control, s.randomness))
        pipe.close()
        os._exit(0)  # skip loop teardown: open connections die with the process

    asyncio.run(main())


def run_tcp(
    net: Network,
    k: int,
    secret: bytes | None = None,
    *,
    timeout: float = 20.0,
    randbelow: RandBelow | None = None,
    crash: str | None = None,
) -> RunResult:
    """Run SNEAK with one OS process per participant on loopback to share ``secret`` (bytes;
    default a fresh 32-byte key).

    At most :func:`max_participants` participants (the open-file limit). ``crash`` names a
    participant that exits abruptly on the first request it receives (to test failures).
    Participants that end without a share are listed in the result's ``missing``. Raises
    ParameterError for too many participants, a threshold outside 2..n, or a dealer that is not
    k-propagating.
    """
    limit = max_participants()
    if net.n > limit:
        raise ParameterError(
            f"participants={net.n} is out of range for the TCP runtime (allowed: 1..{limit}): "
            f"each participant is a process needing {FDS_PER_PARTICIPANT} file descriptors "
            "under the open-file limit (raise it with `ulimit -n`, or use --runtime sim)"
        )
    check_threshold(k, net.n)
    if crash is not None and crash not in net.alphas:
        raise ParameterError(f"crash node {crash!r} is not a participant")
    prop = require_k_propagating(net, k)
    actors = build_actors(net, k, secret, randbelow)
    dealer = actors[net.dealer]
    assert isinstance(dealer, Dealer)
    socks = {}
    for v in net.participants:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((HOST, 0))
        s.listen(64)
        socks[v] = s
    ports = {v: s.getsockname()[1] for v, s in socks.items()}
    ctx = multiprocessing.get_context("fork")
    procs, pipes = {}, {}
    start = time.perf_counter()
    try:
        for v in net.participants:
            parent_end, child_end = ctx.Pipe(duplex=False)
            others = [s for u, s in socks.items() if u != v]
            proc = ctx.Process(
                target=_bootstrap,
                args=(actors[v], socks[v], ports, child_end, crash == v, others),
                daemon=True,
            )
            proc.start()
            child_end.close()
            procs[v], pipes[v] = proc, parent_end
        for s in socks.values():
            s.close()
        asyncio.run(_deal(dealer, ports))
        _wait_informed(procs, pipes, start + timeout)
        _collect(actors, procs, pipes)
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        for s in socks.values():
            s.close()
    return summarize(
        "tcp",
        net,
        k,
        dealer,
        actors,
        1 + max(prop.rounds.values()),
        time.perf_counter() - start,
    )


def _bootstrap(
    actor: Participant,
    sock: socket.socket,
    ports: dict[str, int],
    pipe: Connection,
    crash: bool,
    others: list[socket.socket],
) -> None:
    for s in others:
        s.close()
    _child(actor, sock, ports, pipe, crash)


async def _deal(dealer: Dealer, ports: dict[str, int]) -> None:
    node = _Node(dealer, ports, crash=False)
    await node.dispatch(dealer.start())
    for writer in node.writers.values():
        writer.close()


def _wait_informed(procs: dict, pipes: dict[str, Connection], deadline: float) -> None:
    """Wait until every live participant reports its row, the deadline passes, or (once a node
    has died) no report arrives for ``STALL_S`` seconds."""
    pending = set(procs)
    last = time.perf_counter()
    while pending and time.perf_counter() < deadline:
        for conn in wait([pipes[v] for v in pending], timeout=0.05):
            v = next(u for u in pending if pipes[u] is conn)
            with contextlib.suppress(EOFError):  # EOF: the node died
                conn.recv()
            pending.discard(v)
            last = time.perf_counter()
        pending = {v for v in pending if procs[v].is_alive()}
        died = any(not p.is_alive() for p in procs.values())
        if died and time.perf_counter() - last > STALL_S:
            return


def _collect(actors: dict, procs: dict, pipes: dict[str, Connection]) -> None:
    """Stop every node and copy its final state into the parent's actor objects."""
    for proc in procs.values():
        if proc.is_alive():
            proc.terminate()
    for v, conn in pipes.items():
        while conn.poll(2.0):
            try:
                report = conn.recv()
            except EOFError:
                break
            if report[0] == "final":
                _, _, row, symbols, control, randomness = report
                actor = actors[v]
                actor.row = row
                actor.sent.symbols, actor.sent.control = symbols, control
                actor.sent.randomness = randomness
                break
