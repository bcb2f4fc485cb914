"""Erasure-coded file store: a file becomes n shard files (one folder per storage node).

Data streams stripe by stripe, so memory stays bounded (about n x stripe_size) whatever the file
size. Every shard chunk carries a CRC-32 in the manifest: a corrupt chunk is identified and treated
as an erasure, never decoded into the output, and the whole file's SHA-256 is checked before the
output is renamed into place. Every write is atomic (temporary name, then rename).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import stat
import tempfile
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
from redundancy.erasure.location import StoreLocation, check_name, temp_pattern
from redundancy.erasure.manifest import (
    FORMAT,
    MANIFEST_NAME,
    MAX_FILE_SIZE,
    MAX_STRIPE_SIZE,
    Manifest,
    ShardEntry,
    load_manifest,
    save_manifest,
    stripe_count,
)
from redundancy.errors import DecodeError, ParameterError, RedundancyError, check_range
from redundancy.storage_io import atomic_open, temp_prefix

DEFAULT_STRIPE_SIZE = 1 << 20
STREAM_BLOCK = 1 << 20
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
    unexpected_files: list[str] = field(default_factory=list)

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
def _source_size(source: Path) -> int:
    """Size of the file to encode; a missing, unreadable or non-regular file is bad input."""
    try:
        info = source.stat()
    except FileNotFoundError:
        raise ParameterError(f"{source}: no such file") from None
    except OSError as exc:
        raise ParameterError(f"{source}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ParameterError(f"{source} is not a regular file; expected a file to encode")
    return info.st_size


def _remove_stale_temporaries(location: StoreLocation, relpaths: Iterable[str]) -> list[str]:
    """Remove what killed writes of these files left (only names of our temporary pattern)."""
    removed: list[str] = []
    for rel in relpaths:
        removed += location.remove_stale_temporaries(rel)
    return removed


def encode_file(
    source: Path,
    store: str | Path,
    code: str = "rs:10,4",
    stripe_size: int = DEFAULT_STRIPE_SIZE,
    overwrite: bool = False,
    progress: Progress = None,
) -> Manifest:
    """Encode ``source`` into shard files under ``store`` and write the manifest last.

    Temporaries left in the store by a killed earlier run are removed first (only names of the
    pattern this store writes). With ``overwrite``, shard files of the replaced store that the
    new code does not use are removed after the new manifest is in place.

    Parameters
    ----------
    source
        File to encode.
    store
        Store folder or fsspec URL.
    code
        Code spec (``rs:K,M``, ``rs-vand:K,M``, ``lrc:K,L,G``).
    stripe_size
        Bytes of each shard per stripe (1..2**30).
    overwrite
        Replace an existing store instead of refusing.
    progress
        Called with the number of source bytes done after each stripe.

    Returns
    -------
    Manifest
        What was written (also saved as ``manifest.json``).

    Raises
    ------
    ParameterError
        Bad code spec or stripe size, missing source, existing store without ``overwrite``.
    IntegrityError
        The store path is a file, or something is in the way of a shard file.
    """
    source, location = Path(source), StoreLocation(store)
    linear = parse_code(code)
    check_range("stripe_size", stripe_size, 1, MAX_STRIPE_SIZE)
    size = _source_size(source)
    check_range("file size", size, 0, MAX_FILE_SIZE)
    check_name(source.name, "name of the file to encode")
    local = location.local_root
    if local is not None and local.exists() and not local.is_dir():
        raise ParameterError(f"{store} is a file; expected a store folder (new or existing)")
    replaced: list[str] = []
    if location.size(MANIFEST_NAME) is not None:
        if not overwrite:
            raise ParameterError(
                f"{store} already holds a store; pass --force (overwrite=True) to replace it"
            )
        try:
            replaced = [entry.path for entry in load_manifest(location).shards]
        except RedundancyError:
            replaced = []  # an invalid old manifest names nothing we may remove
        location.unlink(MANIFEST_NAME)
    paths = [shard_relpath(i) for i in range(linear.n)]
    _remove_stale_temporaries(location, [*paths, MANIFEST_NAME])
    stripes = stripe_count(size, linear.k, stripe_size)
    checksums: list[list[int]] = [[] for _ in range(linear.n)]
    with ExitStack() as stack, source.open("rb") as reader:
        outputs = [stack.enter_context(location.atomic_writer(path)) for path in paths]
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
        file_mode=stat.S_IMODE(source.stat().st_mode),
        stripe_size=stripe_size,
        stripes=stripes,
        sha256=sha256,
        shards=[ShardEntry(index=i, path=path, crc32=checksums[i]) for i, path in enumerate(paths)],
    )
    save_manifest(location, manifest)
    for old in sorted(set(replaced) - set(paths)):
        location.unlink(old)
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
def decode_target(
    store: str | Path | StoreLocation, manifest: Manifest, output: str | Path | None = None
) -> Path:
    """The file ``decode_store`` writes for ``output``.

    Parameters
    ----------
    store
        The store (its folder's parent is the default destination of a local store).
    manifest
        The store's validated manifest (its ``file_name`` is a plain name).
    output
        None: the original file name beside a local store (in the current folder for a URL
        store); an existing folder, or a path ending in ``/``: the original name inside it;
        anything else: that file.

    Returns
    -------
    Path
        The output file.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> str(decode_target("/data/photo.jpg.ec", SimpleNamespace(file_name="photo.jpg")))
    '/data/photo.jpg'
    """
    location = store if isinstance(store, StoreLocation) else StoreLocation(store)
    if output is None:
        if location.local_root is None:
            return Path(manifest.file_name)
        return location.local_root.resolve().parent / manifest.file_name
    text = str(output)
    if Path(output).is_dir() or text.endswith(("/", os.sep)):
        return Path(output) / manifest.file_name
    return Path(output)


def _check_target(target: Path, size: int, force: bool) -> None:
    """Refuse a folder, an existing file without ``force``, or a disk too small for ``size``."""
    if target.is_dir():
        raise ParameterError(f"{target} is a folder; expected a file name")
    if (target.exists() or target.is_symlink()) and not force:
        raise ParameterError(f"{target} exists; pass --force to replace it")
    folder = next((p for p in target.absolute().parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise ParameterError(f"{folder} is a file; cannot write {target} inside it")
    if folder is not None and shutil.disk_usage(folder).free < size:
        free = shutil.disk_usage(folder).free
        raise ParameterError(f"{target}: the decoded file needs {size} bytes, {free} are free")


def _check_decodable(reader: ShardReader, code: LinearCode, rebuild: list[int]) -> None:
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


def _decode_into(
    reader: ShardReader, manifest: Manifest, out: BinaryIO, progress: Progress, stack: ExitStack
) -> None:
    """Write the decoded file to ``out``; raise DecodeError if its SHA-256 is not the manifest's."""
    code = reader.code
    hasher = _BackgroundHash(stack)
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
            f"{reader.location}: decoded file does not match the manifest's SHA-256; "
            "shards and manifest disagree (wrong manifest or undetected corruption)"
        )


def decode_store(
    store: str | Path,
    output: str | Path | BinaryIO | None = None,
    progress: Progress = None,
    code: LinearCode | None = None,
    *,
    force: bool = False,
) -> Manifest:
    """Recover the original file from ``store`` (checked by SHA-256 before it is visible).

    Parameters
    ----------
    store
        Store folder or fsspec URL.
    output
        Where to write (see ``decode_target``: None, a folder, or a file), or a writable binary
        stream (e.g. ``sys.stdout.buffer``), which receives the bytes only once they are verified.
    progress
        Called with the number of bytes decoded after each stripe.
    code
        A code ``parse_code`` does not know (see ``Manifest.build_code``).
    force
        Replace an existing output file.

    Returns
    -------
    Manifest
        The store's manifest.

    Raises
    ------
    IntegrityError
        Missing or invalid manifest (bad names, duplicate shard paths, absurd sizes).
    ParameterError
        The output is a folder, exists (without ``force``) or does not fit on its disk.
    DecodeError
        Too few good shards, or the decoded bytes fail the SHA-256; no output is left behind.
    """
    location = StoreLocation(store)
    manifest = load_manifest(location)
    code = manifest.build_code(code)
    stream = output if hasattr(output, "write") else None
    target = None if stream is not None else decode_target(location, manifest, output)
    if target is not None:
        _check_target(target, manifest.file_size, force)
    with ExitStack() as stack:
        reader = ShardReader(location, manifest, code, stack)
        _check_decodable(reader, code, [i for i in range(code.k) if not reader.usable(i)])
        if target is None:
            spool = stack.enter_context(tempfile.TemporaryFile())
            _decode_into(reader, manifest, spool, progress, stack)
            spool.seek(0)
            shutil.copyfileobj(spool, stream, STREAM_BLOCK)
            stream.flush()
            return manifest
        for stale in target.parent.glob(glob.escape(temp_prefix(target.name)) + "*"):
            if temp_pattern(target.name).fullmatch(stale.name) and stale.is_file():
                stale.unlink()  # what a killed decode to this target left
        with atomic_open(target, mode=manifest.output_mode()) as out:
            _decode_into(reader, manifest, out, progress, stack)
    return manifest


# --------------------------------------------------------------------------- verify
def verify_store(
    store: str | Path, progress: Progress = None, code: LinearCode | None = None
) -> VerifyReport:
    """Check every chunk of every shard and list files the manifest does not name.

    Parameters
    ----------
    store
        Store folder or fsspec URL.
    progress
        Called with the number of file bytes covered after each stripe.
    code
        A code ``parse_code`` does not know (see ``Manifest.build_code``).

    Returns
    -------
    VerifyReport
        Per-shard state, unexpected files (e.g. temporaries of a killed run), and whether every
        stripe can still be decoded.

    Raises
    ------
    IntegrityError
        Missing or invalid manifest.
    """
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
    named = {MANIFEST_NAME, *(e.path for e in manifest.shards)}
    unexpected = [path for path in location.files() if path not in named]
    return VerifyReport(shards, recoverable, problem, unexpected)


# --------------------------------------------------------------------------- repair
def repair_store(
    store: str | Path,
    only: Iterable[int] | None = None,
    progress: Progress = None,
    code: LinearCode | None = None,
) -> RepairReport:
    """Rebuild exactly the damaged shards (or those in ``only``) in place, atomically.

    Temporaries a killed earlier write left beside the store's files are removed first (only
    names of the pattern this store writes); other files the manifest does not name are left
    alone (``verify_store`` lists them).

    Parameters
    ----------
    store
        Store folder or fsspec URL.
    only
        Shard indices to rebuild (default: every damaged shard).
    progress
        Called with the number of file bytes covered after each stripe.
    code
        A code ``parse_code`` does not know (see ``Manifest.build_code``).

    Returns
    -------
    RepairReport
        Which shards were rebuilt, bytes read and written, temporaries removed.

    Raises
    ------
    IntegrityError
        Missing or invalid manifest, or a folder in the way of a shard file.
    ParameterError
        An index in ``only`` is out of range.
    DecodeError
        Too few good shards to rebuild the targets (nothing is replaced).
    """
    location = StoreLocation(store)
    manifest = load_manifest(location)
    code = manifest.build_code(code)
    if only is not None:
        for i in sorted(set(only)):
            if not 0 <= i < code.n:
                raise ParameterError(f"shard index {i} is out of range (allowed: 0..{code.n - 1})")
    removed = _remove_stale_temporaries(
        location, [MANIFEST_NAME, *(e.path for e in manifest.shards)]
    )
    targets = verify_store(store, code=code).damaged if only is None else sorted(set(only))
    if not targets:
        return RepairReport([], 0, 0, removed)
    written = 0
    with ExitStack() as stack:
        reader = ShardReader(location, manifest, code, stack)
        _check_decodable(reader, code, targets)
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
    return RepairReport(targets, bytes_read, written, removed)
