"""One parameter server's shard: data and parity rows, optimizer state, two-phase updates, rebuild.

Plain torch, no Ray: the Ray actor in ``cluster.py`` wraps this class unchanged, so every rule
(optimizer maths, commit, buffering during rebuild) is tested in-process.

Optimizer rules keep parity == sum of data rows: SGD is linear, so the parity takes the same
-lr * g per member; Adagrad keeps k accumulators per parity row (a copy of each member's) and
applies the identical delta lr * g / (sqrt(acc) + eps) that the member's own server applies.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from redundancy.ecrm.layout import StripeLayout
from redundancy.errors import DecodeError, IntegrityError
from redundancy.storage_io import atomic_open

READY, MISSING, REBUILDING = 0, 1, 2


@dataclass(frozen=True)
class ShardSpec:
    """Everything a server needs to build its shard (picklable, sent to Ray actors)."""

    layout: StripeLayout
    dim: int
    optimizer: str = "adagrad"
    lr: float = 0.05
    eps: float = 1e-8
    dtype: str = "float32"
    init_std: float = 0.05
    seed: int = 0
    range_stripes: int = 512


def init_rows(rows: torch.Tensor, spec: ShardSpec) -> torch.Tensor:
    """Deterministic initial value of global rows (a hash of row and column; padding rows = 0).

    Every server evaluates it for the rows it needs, so parity starts equal to the sum of its
    stripe with no communication.
    """
    dtype = getattr(torch, spec.dtype)
    cols = torch.arange(spec.dim, dtype=torch.int64)
    h = (rows.to(torch.int64)[:, None] * spec.dim + cols) & 0xFFFFFFFF
    h = (h * 0x61C88647 + spec.seed * 0x5BD1E995) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x7FEB352D) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x5BD1E995) & 0xFFFFFFFF
    h ^= h >> 16
    unit = h.to(torch.float64) / float(0xFFFFFFFF) * 2.0 - 1.0
    values = (unit * (spec.init_std * 3.0**0.5)).to(dtype)
    values[rows >= spec.layout.total_rows] = 0
    return values


def adagrad_delta(acc: torch.Tensor, grad: torch.Tensor, lr: float, eps: float) -> tuple:
    """(new accumulator, delta to subtract): the one formula both data and parity servers use."""
    acc = acc + grad * grad
    return acc, lr * grad / (acc.sqrt() + eps)


class ShardStore:
    """Data and parity rows of server ``server``; ``missing=True`` makes an empty replacement."""

    def __init__(self, spec: ShardSpec, server: int, *, missing: bool = False) -> None:
        lay = spec.layout
        self.spec, self.server, self.layout = spec, server, lay
        dtype = getattr(torch, spec.dtype)
        self.adagrad = spec.optimizer == "adagrad"
        self.data_stripes, self.data_pos = lay.data_slot_stripes(server)
        self.parity_stripes = lay.parity_slot_stripes(server)
        self.data = torch.zeros(lay.data_slots, spec.dim, dtype=dtype)
        self.parity = torch.zeros(lay.parity_slots, spec.dim, dtype=dtype)
        self.data_acc = torch.zeros_like(self.data) if self.adagrad else None
        self.parity_acc = (
            torch.zeros(lay.parity_slots, lay.k, spec.dim, dtype=dtype) if self.adagrad else None
        )
        nr = lay.num_ranges(spec.range_stripes)
        self.range_state = torch.full((nr,), MISSING if missing else READY, dtype=torch.uint8)
        self._pending: dict[int, tuple] = {}
        self._buffer: dict[int, list[tuple]] = {}
        if not missing:
            self._initialise()

    def _initialise(self, chunk: int = 1 << 18) -> None:
        k = self.layout.k
        for lo in range(0, len(self.data), chunk):
            sl = slice(lo, lo + chunk)
            self.data[sl] = init_rows(self.data_stripes[sl] * k + self.data_pos[sl], self.spec)
        for lo in range(0, len(self.parity), chunk):
            s = self.parity_stripes[lo : lo + chunk]
            members = (s[:, None] * k + torch.arange(k)).reshape(-1)
            vals = init_rows(members, self.spec).reshape(len(s), k, -1)
            self.parity[lo : lo + chunk] = vals.sum(1)

    # ---------------------------------------------------------------- reads
    def pid(self) -> int:
        """Process id (so a test can kill the server's process)."""
        return os.getpid()

    def ping(self) -> bool:
        return True

    def read_data(self, slots: torch.Tensor) -> torch.Tensor:
        """Rows of the given data slots (they must be in READY ranges)."""
        self._require_ready(self.data_stripes[slots])
        return self.data[slots]

    def read_parity(self, slots: torch.Tensor) -> torch.Tensor:
        """Parity rows of the given parity slots."""
        self._require_ready(self.parity_stripes[slots])
        return self.parity[slots]

    def _require_ready(self, stripes: torch.Tensor) -> None:
        states = self.range_state[stripes // self.spec.range_stripes]
        if bool((states != READY).any()):
            raise DecodeError(f"server {self.server}: read of rows that are not rebuilt yet")

    # ---------------------------------------------------------------- two-phase updates
    def prepare(self, txn: int, data_op: tuple | None, parity_op: tuple | None) -> int:
        """Phase 1: hold the update; nothing is applied until ``commit(txn)``."""
        self._pending[txn] = (data_op, parity_op)
        return txn

    def commit(self, txn: int) -> int:
        """Phase 2: apply a prepared update (honouring ranges that are missing or rebuilding)."""
        if txn not in self._pending:
            raise IntegrityError(f"server {self.server}: commit of unknown transaction {txn}")
        data_op, parity_op = self._pending.pop(txn)
        if data_op is not None:
            self._route("data", data_op)
        if parity_op is not None:
            self._route("parity", parity_op)
        return txn

    def abort(self, txn: int) -> int:
        """Drop a prepared update (coordinator decided abort)."""
        self._pending.pop(txn, None)
        return txn

    def pending(self) -> list[int]:
        """Prepared transactions awaiting a decision."""
        return sorted(self._pending)

    def _route(self, kind: str, op: tuple) -> None:
        slots = op[0]
        stripes = (self.data_stripes if kind == "data" else self.parity_stripes)[slots]
        ranges = stripes // self.spec.range_stripes
        states = self.range_state[ranges]
        if bool((states == READY).all()):
            self._apply(kind, op)
            return
        ready = states == READY
        if bool(ready.any()):
            self._apply(kind, tuple(t[ready] for t in op))
        for r in torch.unique(ranges[states == REBUILDING]).tolist():
            sel = ranges == r
            self._buffer.setdefault(r, []).append((kind, tuple(t[sel] for t in op)))
        # MISSING ranges: dropped; their rebuild reads the peers, which already hold this update.

    def _apply(self, kind: str, op: tuple) -> None:
        lr, eps = self.spec.lr, self.spec.eps
        if kind == "data":
            slots, grads = op
            grads = grads.to(self.data.dtype)
            if self.adagrad:
                acc, delta = adagrad_delta(self.data_acc[slots], grads, lr, eps)
                self.data_acc[slots] = acc
                self.data[slots] -= delta
            else:
                self.data[slots] -= lr * grads
        else:
            slots, pos, grads = op
            grads = grads.to(self.parity.dtype)
            if self.adagrad:
                acc, delta = adagrad_delta(self.parity_acc[slots, pos], grads, lr, eps)
                self.parity_acc[slots, pos] = acc
            else:
                delta = lr * grads
            self.parity.index_add_(0, slots, delta, alpha=-1)

    # ---------------------------------------------------------------- rebuild
    def _window(self, r: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """Data and parity slots of this server whose stripes fall in range ``r``."""
        rs, n, k = self.spec.range_stripes, self.layout.num_servers, self.layout.k
        a, b = r * rs, (r + 1) * rs
        lo, hi = (a // n) * k, min(-(-b // n) * k, self.layout.data_slots)
        cand = torch.arange(lo, hi)
        st = self.data_stripes[cand]
        dslots = cand[(st >= a) & (st < b)]
        plo, phi = a // n, min(-(-b // n), self.layout.parity_slots)
        pc = torch.arange(plo, phi)
        pst = self.parity_stripes[pc] if len(pc) else pc
        pslots = pc[(pst >= a) & (pst < b)]
        return dslots, pslots, a, b

    def export_range(self, r: int) -> dict:
        """What this (healthy) server holds for range ``r``: rows and optimizer state."""
        if int(self.range_state[r]) != READY:
            raise DecodeError(f"server {self.server} cannot serve range {r}: it is being rebuilt")
        dslots, pslots, _, _ = self._window(r)
        return {
            "data_stripes": self.data_stripes[dslots],
            "data_pos": self.data_pos[dslots],
            "data": self.data[dslots].clone(),
            "data_acc": self.data_acc[dslots].clone() if self.adagrad else None,
            "parity_stripes": self.parity_stripes[pslots],
            "parity": self.parity[pslots].clone(),
            "parity_acc": self.parity_acc[pslots].clone() if self.adagrad else None,
        }

    def begin_range(self, r: int) -> int:
        """Start rebuilding range ``r``: updates to it are buffered from now until install."""
        if int(self.range_state[r]) == MISSING:
            self.range_state[r] = REBUILDING
            self._buffer[r] = []
        return r

    def install_range(self, r: int, *exports: dict) -> int:
        """Decode range ``r`` from the peers' exports, then replay the buffered updates."""
        if int(self.range_state[r]) != REBUILDING:
            raise IntegrityError(f"server {self.server}: range {r} is not being rebuilt")
        dslots, pslots, a, b = self._window(r)
        k, dim, dtype = self.layout.k, self.spec.dim, self.data.dtype
        m = b - a
        d_rows = torch.zeros(m, k, dim, dtype=dtype)
        d_acc = torch.zeros(m, k, dim, dtype=dtype)
        d_have = torch.zeros(m, k, dtype=torch.bool)
        p_rows = torch.zeros(m, dim, dtype=dtype)
        p_acc = torch.zeros(m, k, dim, dtype=dtype)
        p_have = torch.zeros(m, dtype=torch.bool)
        for ex in exports:
            s, j = ex["data_stripes"] - a, ex["data_pos"]
            d_rows[s, j], d_have[s, j] = ex["data"], True
            if self.adagrad:
                d_acc[s, j] = ex["data_acc"]
            ps = ex["parity_stripes"] - a
            p_rows[ps], p_have[ps] = ex["parity"], True
            if self.adagrad:
                p_acc[ps] = ex["parity_acc"]
        s, j = self.data_stripes[dslots] - a, self.data_pos[dslots]
        others = d_have[s].sum(1) - d_have[s, j].long()
        if len(s) and not (bool(p_have[s].all()) and bool((others == k - 1).all())):
            raise DecodeError(f"range {r}: parity or a sibling row is lost too (2 failures)")
        d_rows[s, j] = 0
        self.data[dslots] = p_rows[s] - d_rows[s].sum(1)
        if self.adagrad:
            self.data_acc[dslots] = p_acc[s, j]
        ps = self.parity_stripes[pslots] - a
        if len(ps) and not bool(d_have[ps].all()):
            raise DecodeError(f"range {r}: a data row of a parity stripe is lost too")
        self.parity[pslots] = d_rows[ps].sum(1)
        if self.adagrad:
            self.parity_acc[pslots] = d_acc[ps]
        self.range_state[r] = READY
        for kind, op in self._buffer.pop(r, []):
            self._apply(kind, op)
        return r

    def missing_ranges(self) -> list[int]:
        return torch.nonzero(self.range_state != READY).flatten().tolist()

    # ---------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Tensors that define this shard (for the checkpoint baseline and for comparisons)."""
        out = {"data": self.data.clone(), "parity": self.parity.clone()}
        if self.adagrad:
            out["data_acc"] = self.data_acc.clone()
            out["parity_acc"] = self.parity_acc.clone()
        return out

    def load_state_dict(self, state: dict) -> bool:
        """Replace this shard's tensors (checkpoint restore); all ranges become READY."""
        for name, value in state.items():
            current = getattr(self, name)
            if current is None or current.shape != value.shape:
                raise IntegrityError(f"checkpoint tensor {name} does not match server layout")
            current.copy_(value)
        self.range_state.fill_(READY)
        self._pending.clear()
        self._buffer.clear()
        return True

    def save(self, path: str) -> float:
        """Checkpoint this shard to ``path`` atomically; returns the seconds it took."""
        start = time.perf_counter()
        with atomic_open(Path(path)) as handle:
            torch.save(self.state_dict(), handle)
        return time.perf_counter() - start

    def load(self, path: str) -> bool:
        """Restore this shard from a checkpoint written by ``save``."""
        try:
            state = torch.load(path, weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise IntegrityError(f"cannot load shard checkpoint {path}: {exc}") from None
        return self.load_state_dict(state)
