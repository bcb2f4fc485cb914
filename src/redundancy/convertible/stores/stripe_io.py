"""Shared machinery of store conversions: counted positional reads, a stripe pipeline, timings.

Every conversion method (access-optimal, LRC global merge, and the re-encode anchor) runs the same
engine, so their wall times compare honestly: chunks are read with ``os.preadv`` straight into
(zero-padded) numpy buffers, checksummed on the reader thread, the GF(2^8) product runs on the
main thread, and new parities are checksummed and written on a writer thread, each chunk's
writeback to disk started at once (``sync_file_range``), so reads, compute and writes of
consecutive stripes overlap. ``Phases`` records how long each phase was busy (summed over
threads; with the pipeline they overlap, so the sum can exceed the wall time).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from redundancy.erasure.manifest import ShardEntry
from redundancy.erasure.store import shard_relpath
from redundancy.gf256.kernel import isal_library

PHASES = ("read", "crc", "compute", "write", "fsync", "link", "manifest")


class Phases:
    """Busy seconds per phase, safe to update from several threads."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._lock = threading.Lock()

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the time spent in the block to ``phase``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[phase] += elapsed


@dataclass
class ConvertReport:
    """What a conversion read and wrote (per stripe set: shards; in total: bytes)."""

    target: Path
    conversion: str
    method: str
    shards_read: int | str
    shards_written: int
    bytes_read: int
    bytes_written: int
    bytes_relocated: int = 0  # data copied only when hard links are impossible
    degraded: list[str] = field(default_factory=list)
    resumed: bool = False
    phases: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. why every data shard was read


class BufferRing:
    """A few reusable (rows, width) uint8 buffers, so stripes do not fault in fresh pages.

    Stripe s uses slot s mod ``slots``; with one stripe read ahead and one being written, three
    slots keep the pipeline from overwriting a buffer still in use.
    """

    def __init__(self, rows: int, width: int, slots: int = 3) -> None:
        self.rows, self.width = rows, width
        self.slots: list[np.ndarray | None] = [None] * slots

    def get(self, stripe: int, width: int) -> np.ndarray:
        """A C-contiguous (rows, width) view of stripe ``stripe``'s slot (width <= the maximum)."""
        slot = stripe % len(self.slots)
        if self.slots[slot] is None:
            self.slots[slot] = np.empty(self.rows * self.width, np.uint8)
        return self.slots[slot][: self.rows * width].reshape(self.rows, width)


class CountingReader:
    """Positional reads of shard files into numpy buffers; counts every byte actually read."""

    def __init__(self, phases: Phases) -> None:
        self.phases = phases
        self.fds: dict[Path, int] = {}
        self.bytes_read = 0
        self._lock = threading.Lock()

    def _fd(self, path: Path) -> int | None:
        fd = self.fds.get(path)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return None
            self.fds[path] = fd
        return fd

    def prefetch(self, regions: Sequence[tuple[Path, int, int]]) -> None:
        """Ask the kernel to start reading (path, offset, length) regions in the background.

        Only regions the conversion will read next are announced, so the bytes moved are the
        same; the kernel fetches all of them in parallel instead of one read call at a time.
        """
        with self.phases.timed("read"):
            for path, offset, length in regions:
                fd = self._fd(path)
                if fd is not None:
                    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)

    def read_into(self, path: Path, offset: int, out: np.ndarray) -> bool:
        """Fill ``out`` from ``path`` at ``offset``; False if the file is missing or short."""
        with self.phases.timed("read"):
            fd = self._fd(path)
            if fd is None:
                return False
            got = 0
            while got < out.size:
                n = os.preadv(fd, [memoryview(out)[got:]], offset + got)
                if n <= 0:
                    break
                got += n
            with self._lock:
                self.bytes_read += got
        return got == out.size

    def close(self) -> None:
        """Close every file this reader opened."""
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


@cache
def _isal_crc32() -> Callable[[int, int, int], int] | None:
    lib = isal_library()
    if lib is None or not hasattr(lib, "crc32_gzip_refl"):
        return None
    function = lib.crc32_gzip_refl
    function.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint64]
    function.restype = ctypes.c_uint32
    return function


def crc32(data: np.ndarray) -> int:
    """The store's CRC-32 (zlib's polynomial) of a uint8 array; ISA-L's PCLMUL kernel if present."""
    function = _isal_crc32()
    data = np.ascontiguousarray(data)
    if function is None:
        return zlib.crc32(data)
    return int(function(0, data.ctypes.data, data.size))


CRC32_POLYNOMIAL = 0xEDB88320  # zlib's CRC-32, bit-reversed


def _gf2_times(matrix: Sequence[int], vector: int) -> int:
    """A 32 x 32 matrix over GF(2) (one int per column) times a 32-bit vector."""
    total, column = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[column]
        vector >>= 1
        column += 1
    return total


@cache
def _zeros_operator(length: int) -> tuple[int, ...]:
    """The linear map that appending ``length`` zero bytes applies to a CRC-32 register."""
    one_bit = [CRC32_POLYNOMIAL] + [1 << i for i in range(31)]
    step = [_gf2_times(one_bit, column) for column in one_bit]  # two zero bits
    step = [_gf2_times(step, column) for column in step]  # four
    step = [_gf2_times(step, column) for column in step]  # eight: one zero byte
    operator = [1 << i for i in range(32)]
    while length:
        if length & 1:
            operator = [_gf2_times(step, column) for column in operator]
        length >>= 1
        if length:
            step = [_gf2_times(step, column) for column in step]
    return tuple(operator)


def crc32_combine(first: int, second: int, second_length: int) -> int:
    """CRC-32 of A + B from crc32(A), crc32(B) and len(B), without reading any byte (zlib's
    ``crc32_combine``).

    Parameters
    ----------
    first, second
        The CRC-32 values of A and B.
    second_length
        Bytes of B.

    Returns
    -------
    int
        ``zlib.crc32(A + B)``.

    Examples
    --------
    >>> import zlib
    >>> combined = crc32_combine(zlib.crc32(b"layer0"), zlib.crc32(b"layer1"), 6)
    >>> combined == zlib.crc32(b"layer0layer1")
    True
    """
    return _gf2_times(_zeros_operator(second_length), first) ^ second


def chunk_crc32(layer_crcs: Sequence[int], layer_length: int) -> int:
    """CRC-32 of a chunk from the CRC-32s of its equal-length layers (``crc32_combine``).

    Parameters
    ----------
    layer_crcs
        CRC-32 of each layer, in order.
    layer_length
        Bytes of every layer.

    Returns
    -------
    int
        CRC-32 of the layers one after the other.

    Examples
    --------
    >>> import zlib
    >>> chunk_crc32([zlib.crc32(b"ab"), zlib.crc32(b"cd"), zlib.crc32(b"ef")], 2) == zlib.crc32(
    ...     b"abcdef"
    ... )
    True
    """
    total = layer_crcs[0]
    for crc in layer_crcs[1:]:
        total = crc32_combine(total, crc, layer_length)
    return total


def crc_ok(phases: Phases, data: np.ndarray, expected: int) -> bool:
    """Does ``data`` match its stored CRC-32?"""
    with phases.timed("crc"):
        return crc32(data) == expected


SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of dirty pages, do not wait


@cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing a just-written range to disk now, without waiting for it.

    The device then writes while the conversion reads and computes the next stripes, and the
    final fsync has almost nothing left; without it the kernel would hold the dirty pages until
    that fsync and the whole write would happen after the last stripe.
    """
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, length, SYNC_FILE_RANGE_WRITE)


class ParityWriter:
    """Writes new parity chunks (checksummed) to open temporary files, flushing as it goes."""

    def __init__(self, handles: Sequence[BinaryIO], layers: int, phases: Phases) -> None:
        self.handles, self.layers, self.phases = handles, layers, phases
        self.crc32: list[list[Any]] = [[] for _ in handles]
        self.offsets = [0] * len(handles)
        self.bytes_written = 0

    def write(self, chunks: Sequence[np.ndarray]) -> None:
        """Append one stripe: chunk j goes to handle j; CRC-32 per chunk or per layer."""
        for j, chunk in enumerate(chunks):
            with self.phases.timed("crc"):
                if self.layers == 1:
                    self.crc32[j].append(crc32(chunk))
                else:
                    parts = chunk.reshape(self.layers, -1)
                    self.crc32[j].append([crc32(p) for p in parts])
            with self.phases.timed("write"):
                handle = self.handles[j]
                handle.write(chunk)
                handle.flush()
                start_writeback(handle.fileno(), self.offsets[j], chunk.size)
            self.offsets[j] += chunk.size
            self.bytes_written += chunk.size


def run_stripes(
    stripes: int,
    load: Callable[[int], Any],
    compute: Callable[[int, Any], Sequence[np.ndarray]],
    writer: ParityWriter,
    progress: Callable[[int], None] | None = None,
    pipeline: bool = True,
) -> None:
    """load -> compute -> write for every stripe; with ``pipeline`` the three stages overlap."""
    if not pipeline:
        for stripe in range(stripes):
            writer.write(compute(stripe, load(stripe)))
            if progress:
                progress(stripe)
        return
    with ThreadPoolExecutor(1) as reads, ThreadPoolExecutor(1) as writes:
        ahead: Future | None = reads.submit(load, 0) if stripes else None
        pending: Future | None = None
        for stripe in range(stripes):
            fetched = ahead.result()
            ahead = reads.submit(load, stripe + 1) if stripe + 1 < stripes else None
            chunks = compute(stripe, fetched)
            if pending is not None:
                pending.result()
            pending = writes.submit(writer.write, chunks)
            if progress:
                progress(stripe)
        if pending is not None:
            pending.result()


def link(source: Path, target: Path) -> int:
    """Hard-link ``source`` to ``target`` atomically; copy if linking is impossible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
        copied = 0
    except OSError:
        shutil.copyfile(source, tmp)
        copied = source.stat().st_size
    os.replace(tmp, target)
    return copied


def list_shards(
    kept: Sequence[tuple[Path, Sequence[ShardEntry]]],
    out: Path,
    parity_crc32: Sequence[list[int]],
    report: ConvertReport,
    phases: Phases,
) -> list[ShardEntry]:
    """Hard-link the kept data shards into ``out`` in order, then list the new parities after them.

    ``kept``: (store, its data shard entries) per initial store; ``report.bytes_relocated`` counts
    what had to be copied instead of linked.
    """
    shards: list[ShardEntry] = []
    with phases.timed("link"):
        for store, entries in kept:
            for entry in entries:
                rel = shard_relpath(len(shards))
                report.bytes_relocated += link(store / entry.path, out / rel)
                shards.append(ShardEntry(index=len(shards), path=rel, crc32=entry.crc32))
    for crc32 in parity_crc32:
        rel = shard_relpath(len(shards))
        shards.append(ShardEntry(index=len(shards), path=rel, crc32=crc32))
    return shards


def clear_stale(out: Path) -> None:
    """Remove temporaries a killed run left behind (they were never renamed into place)."""
    if out.is_dir():
        for stale in out.glob("node-*/.*.tmp"):
            stale.unlink()


def retire_stores(
    stores: Sequence[Path], manifest_name: str, paths: Sequence[Sequence[str]]
) -> None:
    """After the commit: drop each initial store's manifest first, then its files."""
    for store, rels in zip(stores, paths, strict=True):
        (Path(store) / manifest_name).unlink(missing_ok=True)
        for rel in rels:
            (Path(store) / rel).unlink(missing_ok=True)
            for folder in (Path(store) / rel).parents:
                if folder == Path(store).parent or not folder.is_dir() or any(folder.iterdir()):
                    break
                folder.rmdir()


def drop_cache(paths: Sequence[Path]) -> None:
    """Evict ``paths`` from the page cache (POSIX_FADV_DONTNEED), for cold-cache timings."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
