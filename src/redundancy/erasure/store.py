"""Erasure-coded file store: a file becomes n shard files (one folder per storage node).

Data streams stripe by stripe, so memory stays bounded (about n x stripe_size) whatever the file
size. Every shard chunk carries a CRC-32 in the manifest: a corrupt chunk is identified and treated
as an erasure, never decoded into the output, and the whole file's SHA-256 is checked before the
output is renamed into place. Every write is atomic (temporary name, then rename).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from redundancy import gf256
from redundancy.erasure.codes import LinearCode, parse_code
from redundancy.erasure.location import StoreLocation
from redundancy.erasure.manifest import (
    FORMAT,
    MANIFEST_NAME,
    Manifest,
    ShardEntry,
    load_manifest,
    save_manifest,
    stripe_count,
)
from redundancy.errors import DecodeError, ParameterError, check_range
from redundancy.storage_io import atomic_open

DEFAULT_STRIPE_SIZE = 1 << 20
Progress = Callable[[int], None] | None


@dataclass
class ShardStatus:
    """Health of one shard file."""

    index: int
    path: str
    state: str  # ok | missing | wrong-size | corrupt
    corrupt_stripes: list[int] = field(default_factory=list)


@dataclass
class VerifyReport:
    """Per-shard health and whether every stripe can still be decoded."""

    shards: list[ShardStatus]
    recoverable: bool
    problem: str = ""

    @property
    def healthy(self) -> bool:
        """True if every shard is intact."""
        return all(s.state == "ok" for s in self.shards)

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


def shard_relpath(index: int) -> str:
    """Where shard ``index`` lives inside a store: one folder per storage node."""
    return f"node-{index:03d}/shard-{index:03d}.bin"


class _BackgroundHash:
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

    def hexdigest(self) -> str:
        """Wait for queued data, then return the digest."""
        if self._pending is not None:
            self._pending.result()
        return self._digest.hexdigest()


# --------------------------------------------------------------------------- encode
def encode_file(
    source: Path,
    store: str | Path,
    code: str = "rs:10,4",
    stripe_size: int = DEFAULT_STRIPE_SIZE,
    overwrite: bool = False,
    progress: Progress = None,
) -> Manifest:
    """Encode ``source`` into shard files under ``store`` and write the manifest last."""
    source, location = Path(source), StoreLocation(store)
    linear = parse_code(code)
    check_range("stripe_size", stripe_size, 1, 1 << 30)
    if not source.is_file():
        raise ParameterError(f"{source}: no such file")
    if location.size(MANIFEST_NAME) is not None:
        if not overwrite:
            raise ParameterError(f"{store} already holds a store (use overwrite to replace it)")
        location.unlink(MANIFEST_NAME)
    size = source.stat().st_size
    stripes = stripe_count(size, linear.k, stripe_size)
    checksums: list[list[int]] = [[] for _ in range(linear.n)]
    with ExitStack() as stack, source.open("rb") as reader:
        outputs = [
            stack.enter_context(location.atomic_writer(shard_relpath(i))) for i in range(linear.n)
        ]
        hasher = _BackgroundHash(stack)
        remaining = size
        for stripe in range(stripes):
            take = min(remaining, linear.k * stripe_size)
            chunk = stripe_size if stripe < stripes - 1 else -(-take // linear.k)
            data = np.zeros((linear.k, chunk), dtype=np.uint8)
            got = reader.readinto(memoryview(data.reshape(-1))[:take])
            if got != take:
                raise ParameterError(f"{source}: file changed size while being encoded")
            hasher.update(memoryview(data.reshape(-1))[:take])
            remaining -= take
            for i, row in enumerate(np.vstack([data, gf256.matmul(linear.parity_matrix, data)])):
                outputs[i].write(row)
                checksums[i].append(zlib.crc32(row))
            if progress:
                progress(take)
        sha256 = hasher.hexdigest()
    manifest = Manifest(
        format=FORMAT,
        code=code,
        file_name=source.name,
        file_size=size,
        stripe_size=stripe_size,
        stripes=stripes,
        sha256=sha256,
        shards=[
            ShardEntry(index=i, path=shard_relpath(i), crc32=checksums[i]) for i in range(linear.n)
        ],
    )
    save_manifest(location, manifest)
    return manifest


# --------------------------------------------------------------------------- reading shards
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
    ) -> None:
        location = store if isinstance(store, StoreLocation) else StoreLocation(store)
        self.location = location
        self.manifest, self.code = manifest, code
        self.handles: dict[int, BinaryIO] = {}
        self.states: dict[int, str] = {}
        self.corrupt: dict[int, list[int]] = {}
        self.bytes_read = 0
        expected = manifest.shard_size(code.k)
        for entry in manifest.shards:
            size = location.size(entry.path)
            if size is None:
                self.states[entry.index] = "missing"
            elif size != expected:
                self.states[entry.index] = "wrong-size"
            else:
                self.states[entry.index] = "ok"
                self.handles[entry.index] = stack.enter_context(location.open_read(entry.path))

    def usable(self, index: int) -> bool:
        """True if shard ``index`` exists with the expected size."""
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
            self.corrupt.setdefault(index, []).append(stripe)
            self.states[index] = "corrupt"
            return None
        return np.frombuffer(raw, dtype=np.uint8)

    def describe(self, bad: Iterable[int]) -> str:
        """Shard indices with their states, for error messages."""
        return ", ".join(f"{i} ({self.states.get(i, 'excluded')})" for i in sorted(bad))

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
        rebuilt = gf256.matmul(plan.matrix, [chunks[i] for i in plan.reads])
        return dict(zip(plan.lost, rebuilt, strict=True))


# --------------------------------------------------------------------------- decode
def decode_store(
    store: str | Path, output: Path, progress: Progress = None, code: LinearCode | None = None
) -> Manifest:
    """Recover the original file from ``store`` into ``output`` (checked by SHA-256)."""
    location = StoreLocation(store)
    manifest = load_manifest(location)
    code = manifest.build_code(code)
    with ExitStack() as stack:
        reader = ShardReader(location, manifest, code, stack)
        hasher = _BackgroundHash(stack)
        with atomic_open(Path(output)) as out:
            remaining = manifest.file_size
            for stripe in range(manifest.stripes):
                chunks = {i: reader.read(stripe, i) for i in range(code.k)}
                lost = [i for i, c in chunks.items() if c is None]
                if lost:
                    chunks.update(reader.rebuild(stripe, lost, chunks))
                take = min(remaining, code.k * manifest.chunk_length(stripe, code.k))
                data = np.concatenate([chunks[i] for i in range(code.k)])[:take]
                hasher.update(data)
                out.write(data)
                remaining -= take
                if progress:
                    progress(take)
            if hasher.hexdigest() != manifest.sha256:
                raise DecodeError(
                    f"{store}: decoded file does not match the manifest's SHA-256; "
                    "shards and manifest disagree (wrong manifest or undetected corruption)"
                )
    return manifest


# --------------------------------------------------------------------------- verify
def verify_store(
    store: str | Path, progress: Progress = None, code: LinearCode | None = None
) -> VerifyReport:
    """Check every chunk of every shard; say which are damaged and whether data is recoverable."""
    location = StoreLocation(store)
    manifest = load_manifest(location)
    code = manifest.build_code(code)
    with ExitStack() as stack:
        reader = ShardReader(location, manifest, code, stack)
        for stripe in range(manifest.stripes):
            for i in range(code.n):
                reader.read(stripe, i)
            if progress:
                progress(code.k * manifest.chunk_length(stripe, code.k))
    unusable = {i for i in range(code.n) if not reader.usable(i)}
    recoverable, problem = True, ""
    patterns = {
        frozenset(unusable | {i for i, s in reader.corrupt.items() if stripe in s})
        for stripe in range(manifest.stripes)
    }
    for pattern in patterns:
        try:
            code.repair_plan(sorted(pattern), [i for i in range(code.n) if i not in pattern])
        except DecodeError as exc:
            recoverable, problem = False, str(exc)
            break
    shards = [
        ShardStatus(e.index, e.path, reader.states[e.index], reader.corrupt.get(e.index, []))
        for e in manifest.shards
    ]
    return VerifyReport(shards, recoverable, problem)


# --------------------------------------------------------------------------- repair
def repair_store(
    store: str | Path,
    only: Iterable[int] | None = None,
    progress: Progress = None,
    code: LinearCode | None = None,
) -> RepairReport:
    """Rebuild exactly the damaged shards (or those in ``only``) in place, atomically."""
    location = StoreLocation(store)
    manifest = load_manifest(location)
    code = manifest.build_code(code)
    if only is None:
        targets = verify_store(store, code=code).damaged
    else:
        targets = sorted(set(only))
        for i in targets:
            if not 0 <= i < code.n:
                raise ParameterError(f"shard index {i} is out of range (allowed: 0..{code.n - 1})")
    if not targets:
        return RepairReport([], 0, 0)
    written = 0
    with ExitStack() as stack:
        reader = ShardReader(location, manifest, code, stack)
        outputs = {
            i: stack.enter_context(location.atomic_writer(manifest.shards[i].path)) for i in targets
        }
        for stripe in range(manifest.stripes):
            rebuilt = reader.rebuild(stripe, targets, {})
            for i, chunk in rebuilt.items():
                outputs[i].write(chunk)
                written += chunk.size
                if zlib.crc32(chunk) != manifest.shards[i].crc32[stripe]:
                    raise DecodeError(f"stripe {stripe}: rebuilt shard {i} fails its checksum")
            if progress:
                progress(code.k * manifest.chunk_length(stripe, code.k))
        bytes_read = reader.bytes_read
    return RepairReport(targets, bytes_read, written)
