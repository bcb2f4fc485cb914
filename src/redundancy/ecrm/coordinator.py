"""The worker-side protocol: sparse pull with degraded reads, two-phase push, background rebuild.

The coordinator holds no table data. It routes each row to its data server and each gradient also
to its stripe's parity server, commits both halves with two-phase commit, serves a lost server's
rows as parity minus the surviving rows, and paces a replacement's rebuild from ``tick()``.

Rebuild protocol, per range r (all calls are non-blocking submissions at a step boundary, so
they fall between two transactions in every server's ordered call queue: a consistent cut):
``begin_range(r)`` on the replacement (updates to r are buffered from here on), ``export_range``
on every peer (their state as of the same cut), then ``queue_install`` hands the exports to the
replacement's own rebuild thread, which fetches, decodes and installs them and replays the buffer
while the replacement keeps serving training calls. At most ``window`` ranges are in flight.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from redundancy.ecrm.cluster import LocalCluster, Pending, RayCluster, ServerUnavailable
from redundancy.ecrm.layout import StripeLayout
from redundancy.errors import DecodeError


class ServerLost(ServerUnavailable):
    """A server died and there is no parity to serve its rows (restart from a checkpoint)."""


@dataclass
class RebuildJob:
    """Progress of one replacement server's range-by-range rebuild."""

    server: int
    num_ranges: int
    detected_s: float
    ready: torch.Tensor = field(init=False)
    next_range: int = 0
    poll: Pending | None = None
    joined: bool = False

    def __post_init__(self) -> None:
        self.ready = torch.zeros(self.num_ranges, dtype=torch.bool)


class Coordinator:
    """Pull/push embedding rows over a cluster; ``parity=False`` is the unprotected baseline."""

    def __init__(
        self,
        cluster: LocalCluster | RayCluster,
        layout: StripeLayout,
        dim: int,
        range_stripes: int,
        dtype: torch.dtype = torch.float32,
        window: int = 2,
    ) -> None:
        self.cluster, self.layout, self.dim = cluster, layout, dim
        self.window = window
        self.range_stripes, self.dtype = range_stripes, dtype
        self.parity = layout.parity
        self.failed: set[int] = set()
        self.jobs: dict[int, RebuildJob] = {}
        self.recoveries: list[dict] = []
        self.decisions: list[int] = []
        self.txn = 0
        self.fault_hook: Callable[[str, int], None] | None = None

    # ---------------------------------------------------------------- failure bookkeeping
    def _fail(self, server: int) -> None:
        if server in self.failed:
            return
        if not self.parity:
            raise ServerLost(server, "no parity to recover from")
        job = self.jobs.get(server)
        if job is not None and job.joined:
            raise DecodeError(f"replacement of server {server} died during its rebuild")
        live_jobs = [j for j in self.jobs.values() if j.server != server]
        if self.failed or live_jobs:
            raise DecodeError(f"server {server} lost while another is down: beyond 1 parity")
        self.failed.add(server)
        self.cluster.replace(server, missing=True)
        nr = self.layout.num_ranges(self.range_stripes)
        self.jobs[server] = RebuildJob(server, nr, time.perf_counter())

    def _readable(self, servers: torch.Tensor, stripes: torch.Tensor) -> torch.Tensor:
        ok = torch.ones(len(servers), dtype=torch.bool)
        for q in self.failed:
            ok &= servers != q
        for q, job in self.jobs.items():
            mine = servers == q
            if bool(mine.any()):
                ok[mine] = job.ready[stripes[mine] // self.range_stripes]
        return ok

    @property
    def recovering(self) -> bool:
        return bool(self.jobs)

    def _gather(self, calls: dict) -> dict:
        out, lost = {}, []
        for key, p in calls.items():
            try:
                out[key] = self.cluster.result(p)
            except ServerUnavailable:
                lost.append(p.server)
        for q in lost:
            self._fail(q)
        if lost:
            raise _Retry()
        return out

    # ---------------------------------------------------------------- pull
    def pull(self, rows: torch.Tensor) -> torch.Tensor:
        """Current values of unique global rows; a lost server's rows are decoded from parity."""
        self.layout.check_rows(rows)
        for _ in range(self.cluster.num_servers + 1):
            try:
                return self._pull(rows)
            except _Retry:
                continue
        raise DecodeError("pull kept failing: more servers lost than parity can cover")

    def _pull(self, rows: torch.Tensor) -> torch.Tensor:
        lay, k = self.layout, self.layout.k
        srv, slot = lay.data_location(rows)
        stripes = rows // k
        direct = self._readable(srv, stripes)
        out = torch.empty(len(rows), self.dim, dtype=self.dtype)
        calls = {}
        for q in torch.unique(srv[direct]).tolist():
            sel = direct & (srv == q)
            calls[("d", q)] = (sel, self.cluster.call(q, "read_data", slot[sel]))
        deg = torch.nonzero(~direct).flatten()
        if len(deg):
            if not self.parity:
                raise ServerLost(int(srv[deg[0]]), "no parity to recover from")
            dstripes = stripes[deg]
            psrv, pslot = lay.parity_location(dstripes)
            sib = (dstripes[:, None] * k + torch.arange(k)).reshape(-1)
            keep = sib != rows[deg].repeat_interleave(k)
            sib_rows = sib[keep]
            ssrv, sslot = lay.data_location(sib_rows)
            if not bool(self._readable(psrv, dstripes).all()) or not bool(
                self._readable(ssrv, sib_rows // k).all()
            ):
                raise DecodeError("a stripe lost two members: degraded read impossible")
            for q in torch.unique(psrv).tolist():
                sel = psrv == q
                calls[("p", q)] = (sel, self.cluster.call(q, "read_parity", pslot[sel]))
            for q in torch.unique(ssrv).tolist():
                sel = ssrv == q
                calls[("s", q)] = (sel, self.cluster.call(q, "read_data", sslot[sel]))
        values = self._gather({key: p for key, (_, p) in calls.items()})
        parity = torch.empty(len(deg), self.dim, dtype=self.dtype)
        sibs = torch.zeros(len(deg) * (k - 1), self.dim, dtype=self.dtype)
        for (kind, _q), (sel, _) in calls.items():
            target = {"d": out, "p": parity, "s": sibs}[kind]
            target[sel] = values[(kind, _q)]
        if len(deg):
            out[deg] = parity - sibs.reshape(len(deg), k - 1, self.dim).sum(1)
        return out

    # ---------------------------------------------------------------- push (two-phase)
    def push(self, rows: torch.Tensor, grads: torch.Tensor) -> int:
        """Apply gradients of unique rows to data rows and parities atomically; returns the txn."""
        self.layout.check_rows(rows)
        if len(torch.unique(rows)) != len(rows):
            raise DecodeError("push needs unique rows (coalesce gradients first)")
        lay = self.layout
        srv, slot = lay.data_location(rows)
        ops: dict[int, list] = {}
        for q in torch.unique(srv).tolist():
            sel = srv == q
            ops.setdefault(q, [None, None])[0] = (slot[sel], grads[sel])
        if self.parity:
            psrv, pslot = lay.parity_location(rows // lay.k)
            pos = rows % lay.k
            for q in torch.unique(psrv).tolist():
                sel = psrv == q
                ops.setdefault(q, [None, None])[1] = (pslot[sel], pos[sel], grads[sel])
        for _ in range(self.cluster.num_servers + 1):
            try:
                return self._two_phase(ops)
            except _Retry:
                continue
        raise DecodeError("push kept failing: more servers lost than parity can cover")

    def _hook(self, event: str, server: int) -> None:
        if self.fault_hook is not None:
            self.fault_hook(event, server)

    def _two_phase(self, ops: dict[int, list]) -> int:
        self.txn += 1
        txn = self.txn
        members = [q for q in ops if q not in self.failed]
        prepared = {}
        for q in members:
            self._hook("prepare", q)
            prepared[q] = self.cluster.call(q, "prepare", txn, *ops[q])
        try:
            self._gather(prepared)
        except _Retry:
            for q in members:
                if q not in self.failed:
                    self.cluster.call(q, "abort", txn)
            raise
        self.decisions.append(txn)
        commits = {}
        for q in members:
            self._hook("commit", q)
            commits[q] = self.cluster.call(q, "commit", txn)
        # The decision is commit: a server lost now is rebuilt from peers that committed.
        with contextlib.suppress(_Retry):
            self._gather(commits)
        return txn

    # ---------------------------------------------------------------- background rebuild
    def tick(self) -> None:
        """Advance every rebuild without waiting: poll progress, start ranges up to the window."""
        for q in list(self.jobs):
            self._advance(self.jobs[q])

    def _advance(self, job: RebuildJob) -> None:
        q = job.server
        if not job.joined:
            if not self.cluster.joined(q):
                return
            job.joined = True
            self.failed.discard(q)
        if job.poll is not None and self.cluster.done(job.poll):
            job.ready = self.cluster.result(job.poll).clone()
            job.poll = None
        done = int(job.ready.sum())
        if done == job.num_ranges:
            del self.jobs[q]
            now = time.perf_counter()
            self.recoveries.append(
                {"server": q, "seconds": now - job.detected_s, "at": now, "ranges": job.num_ranges}
            )
            return
        while job.next_range < job.num_ranges and job.next_range - done < self.window:
            self._cut(q, job.next_range)
            job.next_range += 1
        if job.poll is None:
            job.poll = self.cluster.call(q, "ready_mask")

    def _cut(self, q: int, r: int) -> None:
        self.cluster.call(q, "begin_range", r)
        peers = [p for p in range(self.cluster.num_servers) if p != q]
        exports = [self.cluster.call(p, "export_range", r, q) for p in peers]
        try:
            handles = self.cluster.handoff(exports)
        except ServerUnavailable as exc:
            self._fail(exc.server)
            raise
        self.cluster.call(q, "queue_install", r, handles)

    def finish_recovery(self, timeout_s: float = 3600.0) -> None:
        """Tick until every rebuild is done (used at the end of training and in tests)."""
        deadline = time.perf_counter() + timeout_s
        while self.jobs:
            if time.perf_counter() > deadline:
                raise DecodeError("rebuild did not finish")
            self.tick()
            if self.jobs:
                time.sleep(0.0005)


class _Retry(Exception):
    """Internal: a server was lost mid-operation; retry with the updated view."""
