"""Checked reads of an ec-format store's stripe chunks, and rebuilding chunks that fail.

Each chunk is compared with its CRC-32 from the manifest; a missing, short or corrupt chunk is an
erasure, never data. Every byte read is counted, so a conversion can report what it really moved.
"""

from __future__ import annotations

import zlib
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import numpy as np

from redundancy import gf256
from redundancy.erasure.codes import LinearCode
from redundancy.erasure.manifest import Manifest
from redundancy.errors import DecodeError


class ChunkReader:
    """Stripe chunks of one store, checked against the manifest's CRC-32s."""

    def __init__(self, store: Path, manifest: Manifest, code: LinearCode, stack: ExitStack) -> None:
        self.store, self.manifest, self.code = Path(store), manifest, code
        self.handles: dict[int, BinaryIO] = {}
        self.states: dict[int, str] = {}
        self.bytes_read = 0
        expected = manifest.shard_size(code.k)
        for entry in manifest.shards:
            path = self.store / entry.path
            if not path.is_file():
                self.states[entry.index] = "missing"
            elif path.stat().st_size != expected:
                self.states[entry.index] = "wrong-size"
            else:
                self.states[entry.index] = "ok"
                self.handles[entry.index] = stack.enter_context(path.open("rb"))

    def usable(self, index: int) -> bool:
        """True if shard ``index`` exists with the right size."""
        return index in self.handles

    def read(self, stripe: int, index: int) -> np.ndarray | None:
        """The chunk of shard ``index`` in ``stripe``, or None if missing or corrupt."""
        handle = self.handles.get(index)
        if handle is None:
            return None
        length = self.manifest.chunk_length(stripe, self.code.k)
        handle.seek(stripe * self.manifest.stripe_size)
        raw = handle.read(length)
        self.bytes_read += len(raw)
        if len(raw) != length or zlib.crc32(raw) != self.manifest.shards[index].crc32[stripe]:
            self.states[index] = "corrupt"
            return None
        return np.frombuffer(raw, dtype=np.uint8)

    def rebuild(
        self, stripe: int, targets: list[int], have: dict[int, np.ndarray | None]
    ) -> dict[int, np.ndarray]:
        """Rebuild ``targets`` from good chunks, re-planning around any that fail their check."""
        code = self.code
        bad = {i for i in range(code.n) if not self.usable(i)} | set(targets)
        bad |= {i for i, chunk in have.items() if chunk is None}
        chunks = {i: c for i, c in have.items() if c is not None}
        while True:
            available = [i for i in range(code.n) if i not in bad]
            try:
                plan = code.repair_plan(targets, available)
            except DecodeError:
                raise DecodeError(
                    f"{self.store}: stripe {stripe}: cannot rebuild shards {targets}; "
                    f"{len(available)} good shard(s) left, at least {code.k} independent needed"
                ) from None
            failed = [
                i for i in plan.reads if i not in chunks and not self._fetch(stripe, i, chunks)
            ]
            if not failed:
                break
            bad.update(failed)
        rebuilt = gf256.matmul(plan.matrix, np.stack([chunks[i] for i in plan.reads]))
        return dict(zip(plan.lost, rebuilt, strict=True))

    def _fetch(self, stripe: int, index: int, chunks: dict[int, np.ndarray]) -> bool:
        chunk = self.read(stripe, index)
        if chunk is not None:
            chunks[index] = chunk
        return chunk is not None
