"""One parameter server's shard: data and parity rows, optimizer state, two-phase updates, rebuild.

Plain torch, no Ray: the Ray actor in ``cluster.py`` wraps this class unchanged, so every rule
(optimizer maths, commit, buffering during rebuild) is tested in-process.

Optimizer rules keep parity == sum of data rows: SGD is linear, so the parity takes the same
-lr * g per member; Adagrad keeps k accumulators per parity row (a copy of each member's) and
applies the identical delta lr * g / (sqrt(acc) + eps) that the member's own server applies.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from redundancy.ecrm.layout import StripeLayout
from redundancy.ecrm.rebuild import Installer, decode, export_for
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


_TABLE_BITS = 20


@functools.lru_cache(maxsize=4)
def _init_table(seed: int, dim: int, dtype: str, std: float) -> torch.Tensor:
    """The fixed table init_rows draws windows from (uniform, variance std^2; read-only)."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.rand((1 << _TABLE_BITS) + dim, generator=gen, dtype=torch.float64)
    return ((table * 2 - 1) * (std * 3.0**0.5)).to(getattr(torch, dtype))


def init_rows(rows: torch.Tensor, spec: ShardSpec) -> torch.Tensor:
    """Deterministic initial value of global rows (padding rows = 0).

    Every server evaluates it for the rows it needs, so parity starts equal to the sum of its
    stripe with no communication. Row r is the window of ``dim`` consecutive values starting at
    hash(r) in a fixed seeded table of 2^20 uniform values: a row gather, cheap at gigabytes.
    """
    table = _init_table(spec.seed, spec.dim, spec.dtype, spec.init_std)
    h = (rows.to(torch.int64) * 0x9E3779B1) & 0xFFFFFFFF
    start = (h ^ (h >> 15)) & ((1 << _TABLE_BITS) - 1)
    values = table.unfold(0, spec.dim, 1).index_select(0, start)
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
        self._lock = threading.Lock()
        self._installer: Installer | None = None
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
        with self._lock:
            self._require_ready(self.data_stripes[slots])
            return self.data[slots]

    def read_parity(self, slots: torch.Tensor) -> torch.Tensor:
        """Parity rows of the given parity slots."""
        with self._lock:
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
        with self._lock:
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
    def export_range(self, r: int, lost: int) -> dict:
        """What this (healthy) server sends towards rebuilding server ``lost``'s range ``r``."""
        with self._lock:
            if int(self.range_state[r]) != READY:
                raise DecodeError(f"server {self.server} cannot serve range {r}: not rebuilt")
            return export_for(self, r, lost)

    def begin_range(self, r: int) -> int:
        """Start rebuilding range ``r``: updates to it are buffered from now until install."""
        with self._lock:
            if int(self.range_state[r]) == MISSING:
                self.range_state[r] = REBUILDING
                self._buffer[r] = []
        return r

    def install_range(self, r: int, *exports: dict) -> int:
        """Decode range ``r`` from the peers' exports, install it, replay the buffered updates.

        Decoding runs without the lock (it only reads the exports), so reads and commits of other
        ranges proceed meanwhile; the final copy and replay are atomic with respect to them.
        """
        if int(self.range_state[r]) != REBUILDING:
            raise IntegrityError(f"server {self.server}: range {r} is not being rebuilt")
        dec = decode(self, r, list(exports))
        with self._lock:
            self.data[dec["dslots"]] = dec["data"]
            self.parity[dec["pslots"]] = dec["parity"]
            if self.adagrad:
                self.data_acc[dec["dslots"]] = dec["data_acc"]
                self.parity_acc[dec["pslots"]] = dec["parity_acc"]
            self.range_state[r] = READY
            for kind, op in self._buffer.pop(r, []):
                self._apply(kind, op)
        return r

    def queue_install(self, r: int, exports: list) -> int:
        """Hand range ``r`` to this server's rebuild thread and return at once (exports may be
        Ray ObjectRefs: the thread fetches them, so this actor keeps serving training calls)."""
        if self._installer is None:
            self._installer = Installer(lambda rr, ex: self.install_range(rr, *ex))
        self._installer.submit(r, exports)
        return r

    def ready_mask(self) -> torch.Tensor:
        """Which ranges are READY; raises if the rebuild thread failed."""
        if self._installer is not None and self._installer.error is not None:
            err = self._installer.error
            raise DecodeError(f"server {self.server}: rebuild failed: {err}") from err
        return self.range_state == READY

    def close(self) -> None:
        """Stop the rebuild thread (if any)."""
        if self._installer is not None:
            self._installer.close()

    # ---------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Tensors that define this shard (for the checkpoint baseline and for comparisons)."""
        with self._lock:
            return {name: t.clone() for name, t in self._tensors().items()}

    def _tensors(self) -> dict:
        out = {"data": self.data, "parity": self.parity}
        if self.adagrad:
            out["data_acc"], out["parity_acc"] = self.data_acc, self.parity_acc
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
            torch.save(self._tensors(), handle)
        return time.perf_counter() - start

    def load(self, path: str) -> bool:
        """Restore this shard from a checkpoint written by ``save``."""
        try:
            state = torch.load(path, weights_only=True, mmap=True)
        except (OSError, RuntimeError) as exc:
            raise IntegrityError(f"cannot load shard checkpoint {path}: {exc}") from None
        return self.load_state_dict(state)
