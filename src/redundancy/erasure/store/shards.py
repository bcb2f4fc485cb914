"""Shard files of a store: where they live, their health, and reading them checked.

Shared by encode, decode, verify and repair: constants, reports, the background SHA-256 and
the reader that treats a missing, short or corrupt chunk as an erasure.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from redundancy.erasure.checksum import crc32
from redundancy.erasure.codes import LinearCode
from redundancy.erasure.location import StoreLocation
from redundancy.erasure.manifest import (
    Manifest,
)
from redundancy.erasure.nodes import Layout
from redundancy.errors import (
    DecodeError,
    ParameterError,
)

DEFAULT_STRIPE_SIZE = 1 << 20
STREAM_BLOCK = 1 << 20
WRITER_THREADS = 4  # rows written and checksummed at once (I/O and CRC release the GIL)
Progress = Callable[[int], None] | None


@dataclass
class ShardStatus:
    """Health of one shard file."""

    index: int
    path: str
    state: str  # ok | missing | wrong-size | corrupt
    corrupt_stripes: list[int] = field(default_factory=list)
    node: int | None = None  # its node root (stores encoded with --nodes)


@dataclass
class VerifyReport:
    """Per-shard health and whether every stripe can still be decoded."""

    shards: list[ShardStatus]
    recoverable: bool
    problem: str = ""
    unexpected_files: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)  # node roots, as this run resolved them
    missing_roots: list[int] = field(default_factory=list)  # nodes whose root is gone

    @property
    def healthy(self) -> bool:
        """True if every shard is intact and the store holds no file the manifest does not name."""
        return all(s.state == "ok" for s in self.shards) and not self.unexpected_files

    @property
    def damaged(self) -> list[int]:
        """Indices of shards that are missing, the wrong size or hold corrupt chunks."""
        return [s.index for s in self.shards if s.state != "ok"]


@dataclass
class RepairReport:
    """What a repair rebuilt and how much it read."""

    rebuilt: list[int]
    bytes_read: int
    bytes_written: int
    removed_temporaries: list[str] = field(default_factory=list)
    manifests_written: list[str] = field(default_factory=list)  # after --replace


def shard_relpath(index: int) -> str:
    """Where shard ``index`` lives inside a store: one folder per storage node."""
    return f"node-{index:03d}/shard-{index:03d}.bin"


class BackgroundHash:
    """SHA-256 computed on a worker thread (hashlib releases the GIL), overlapping the I/O."""

    def __init__(self, stack: ExitStack) -> None:
        self._digest = hashlib.sha256()
        self._worker = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        self._pending: Future | None = None

    def update(self, data: memoryview | np.ndarray) -> None:
        """Queue ``data`` (not modified afterwards by the caller); at most one chunk in flight."""
        if self._pending is not None:
            self._pending.result()
        self._pending = self._worker.submit(self._digest.update, data)

    def wait(self) -> None:
        """Return once every queued chunk is digested (its buffer may then be reused)."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def hexdigest(self) -> str:
        """Wait for queued data, then return the digest."""
        self.wait()
        return self._digest.hexdigest()


def read_fully(reader: BinaryIO, view: memoryview) -> int:
    """``readinto`` until ``view`` is full or the file ends; the number of bytes read."""
    done = 0
    while done < len(view):
        got = reader.readinto(view[done:])
        if not got:
            break
        done += got
    return done


def read_sequentially(handle: BinaryIO) -> None:
    """Ask the kernel for a larger readahead on a local file read front to back (else nothing)."""
    with suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)


def write_row(output: BinaryIO, row: np.ndarray) -> int:
    output.write(memoryview(row))
    return crc32(row)


def flush_and_sync(output: BinaryIO) -> None:
    output.flush()
    fileno = getattr(output, "fileno", None)
    if fileno is not None:
        with suppress(OSError, ValueError, io.UnsupportedOperation):
            os.fsync(fileno())  # not a local file (fsspec): its close commits it


class ShardReader:
    """Reads stripe chunks of a store, checking each against its CRC-32; counts bytes read.

    A missing, short or corrupt chunk is an erasure, never data. Other systems that work on
    stores (convertible codes) read through this class too.
    """

    def __init__(
        self,
        store: str | Path | StoreLocation,
        manifest: Manifest,
        code: LinearCode,
        stack: ExitStack,
        layout: Layout | None = None,
    ) -> None:
        location = store if isinstance(store, StoreLocation) else StoreLocation(store)
        self.location = location
        self.layout = layout or Layout(location, manifest)
        self.manifest, self.code = manifest, code
        self.handles: dict[int, BinaryIO] = {}
        self.states: dict[int, str] = {}
        self.corrupt: dict[int, list[int]] = {}
        self.bytes_read = 0
        self._lock = threading.Lock()
        self._handle_locks = {entry.index: threading.Lock() for entry in manifest.shards}
        for entry in manifest.shards:
            home = self.layout.shard_location(entry.index)
            try:
                size = home.size(entry.path)
            except OSError:  # an unreachable root (bucket, mount) is a missing shard
                size = None
            if size is None:
                self.states[entry.index] = "missing"
            elif size != manifest.shard_size(code.k, entry.index):
                self.states[entry.index] = "wrong-size"
            else:
                self.states[entry.index] = "ok"
                handle = stack.enter_context(home.open_read(entry.path))
                read_sequentially(handle)
                self.handles[entry.index] = handle

    def usable(self, index: int) -> bool:
        """True if shard ``index`` exists with the expected size."""
        return index in self.handles

    def read(self, stripe: int, index: int) -> np.ndarray | None:
        """The chunk of shard ``index`` in ``stripe``, or None if missing or corrupt."""
        if index not in self.handles:
            return None
        chunk = np.empty(self.manifest.chunk_length(stripe, self.code.k), dtype=np.uint8)
        return chunk if self.read_into(stripe, index, chunk) else None

    def read_into(self, stripe: int, index: int, out: np.ndarray) -> bool:
        """Read the chunk of shard ``index`` in ``stripe`` into ``out``; False if unusable.

        ``out`` holds the stripe's width; a shard of a shorter member (a store of several
        files) fills only its own part and the rest is zeroed, as the code sees it. Safe to call
        from several threads at once for different shards (each shard has its own handle); a
        missing, short or corrupt chunk is recorded and returns False.
        """
        width = self.manifest.chunk_length(stripe, self.code.k)
        if out.shape != (width,):
            raise ParameterError(f"chunk buffer must hold {width} bytes, got {out.shape}")
        length = self.manifest.shard_chunk_length(stripe, index, self.code.k)
        out[length:] = 0
        if length == 0:
            return True  # past the end of its member: zeros by definition, nothing stored
        handle = self.handles.get(index)
        if handle is None:
            return False
        own = out[:length]
        with self._handle_locks[index]:
            handle.seek(stripe * self.manifest.stripe_size)
            got = read_fully(handle, memoryview(own))
        good = got == length and crc32(own) == self.manifest.shards[index].crc32[stripe]
        with self._lock:
            self.bytes_read += got
            if not good:
                self.corrupt.setdefault(index, []).append(stripe)
                self.states[index] = "corrupt"
        return good

    def describe(self, bad: Iterable[int]) -> str:
        """Shard indices with their states (and roots), for error messages."""
        parts = []
        for i in sorted(bad):
            node = self.layout.node_of(i)
            where = "" if node is None else f" on node {node.index} at {node.location}"
            parts.append(f"{i} ({self.states.get(i, 'excluded')}{where})")
        return ", ".join(parts)

    def rebuild(
        self, stripe: int, targets: list[int], have: dict[int, np.ndarray | None]
    ) -> dict[int, np.ndarray]:
        """Rebuild ``targets`` in ``stripe`` from good chunks, re-planning around corrupt ones."""
        code = self.code
        bad = {i for i in range(code.n) if not self.usable(i)} | set(targets)
        bad |= {i for i, chunk in have.items() if chunk is None}
        chunks = {i: c for i, c in have.items() if c is not None}
        while True:
            available = [i for i in range(code.n) if i not in bad]
            try:
                plan = code.repair_plan(targets, available)
            except DecodeError:
                good = len(available)
                raise DecodeError(
                    f"stripe {stripe}: cannot rebuild shards {targets}; unusable shards: "
                    f"{self.describe(bad)}; {good} good shard(s) left, "
                    f"at least {code.k} independent ones needed"
                ) from None
            missing_read = False
            for i in plan.reads:
                if i not in chunks:
                    chunk = self.read(stripe, i)
                    if chunk is None:
                        bad.add(i)
                        missing_read = True
                        break
                    chunks[i] = chunk
            if not missing_read:
                break
        rebuilt = code.apply_plan(plan, [chunks[i] for i in plan.reads])
        return dict(zip(plan.lost, rebuilt, strict=True))


def remove_stale_temporaries(location: StoreLocation, relpaths: Iterable[str]) -> list[str]:
    """Remove what killed writes of these files left (only names of our temporary pattern)."""
    removed: list[str] = []
    for rel in relpaths:
        removed += location.remove_stale_temporaries(rel)
    return removed


def root_key(root: StoreLocation) -> str:
    return str(root.local_root.resolve()) if root.local_root is not None else root.url.rstrip("/")


def check_decodable(reader: ShardReader, code: LinearCode, rebuild: list[int]) -> None:
    """Raise DecodeError before anything is written if ``rebuild`` cannot be rebuilt.

    Only shard sizes are known at this point; per-chunk checksums are checked while decoding.
    """
    if reader.manifest.stripes == 0 or not rebuild:
        return  # an empty file needs no shard
    usable = [i for i in range(code.n) if reader.usable(i) and i not in rebuild]
    try:
        code.repair_plan(rebuild, usable)
    except DecodeError as exc:
        unusable = [i for i in range(code.n) if not reader.usable(i)]
        raise DecodeError(
            f"{reader.location}: unusable shards: {reader.describe(unusable)}; {exc}"
        ) from None
