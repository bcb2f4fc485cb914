"""Erasure-coded file store: a file becomes n shard files (one folder per storage node).

Data streams stripe by stripe, so memory stays bounded (about n x stripe_size) whatever the file
size. Every shard chunk carries a CRC-32 in the manifest: a corrupt chunk is identified and treated
as an erasure, never decoded into the output, and the whole file's SHA-256 is checked before the
output is renamed into place. Every write is atomic (temporary name, then rename).
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from redundancy import gf256
from redundancy.erasure.checksum import crc32
from redundancy.erasure.codes import LATEST_CODE_VERSION, LinearCode, RepairPlan, parse_code
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
from redundancy.erasure.nodes import Layout, record_root
from redundancy.errors import (
    DecodeError,
    IntegrityError,
    ParameterError,
    RedundancyError,
    check_range,
)
from redundancy.storage_io import atomic_open, temp_prefix

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

    def wait(self) -> None:
        """Return once every queued chunk is digested (its buffer may then be reused)."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def hexdigest(self) -> str:
        """Wait for queued data, then return the digest."""
        self.wait()
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
    nodes: Sequence[str] | None = None,
    name: str | None = None,
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
    nodes
        Node roots (folders on other disks, fsspec URLs): shard i goes under root
        ``i % len(nodes)``, the manifest into ``store`` and a copy into every root, so the
        store opens from any of them. Default: every shard under ``store``.
    name
        File name recorded for ``decode`` (a plain name; default: ``source``'s name).

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

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.txt").write_bytes(b"hello, erasure codes" * 100)
    >>> manifest = encode_file(folder / "notes.txt", folder / "notes.ec", code="rs:4,2")
    >>> len(manifest.shards), manifest.file_size
    (6, 2000)
    """
    source = Path(source)
    size = _source_size(source)
    check_range("file size", size, 0, MAX_FILE_SIZE)
    with source.open("rb", buffering=0) as reader:
        try:
            return _encode(
                reader,
                source.name if name is None else name,
                stat.S_IMODE(source.stat().st_mode),
                store,
                code,
                stripe_size,
                overwrite,
                progress,
                nodes,
                size,
            )
        except _SourceChanged:
            raise ParameterError(f"{source}: file changed size while being encoded") from None


def encode_stream(
    reader: BinaryIO,
    name: str,
    store: str | Path,
    code: str = "rs:10,4",
    stripe_size: int = DEFAULT_STRIPE_SIZE,
    overwrite: bool = False,
    progress: Progress = None,
    nodes: Sequence[str] | None = None,
) -> Manifest:
    """Encode everything ``reader`` yields until its end (a pipe, stdin) as the file ``name``.

    The length need not be known in advance: stripes are read one after another and the last,
    shorter one is laid out as a file of that length would be, so the store is exactly what
    :func:`encode_file` writes for the same bytes (no mode is recorded: ``decode`` gives the
    output a new file's normal mode). Memory stays at three stripes.

    Parameters
    ----------
    reader
        Binary stream read with ``readinto`` until it returns 0 bytes.
    name
        File name recorded in the manifest (a plain name: ``decode`` writes it).
    store, code, stripe_size, overwrite, progress, nodes
        As for :func:`encode_file`.

    Returns
    -------
    Manifest
        What was written (also saved as ``manifest.json``).

    Raises
    ------
    ParameterError
        Bad name, code spec or stripe size, a stream longer than the largest file a store
        holds, or an existing store without ``overwrite``.

    Examples
    --------
    >>> import io, tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> manifest = encode_stream(io.BytesIO(b"x" * 1000), "x.bin", folder / "x.ec", "rs:4,2")
    >>> manifest.file_name, manifest.file_size, manifest.stripes
    ('x.bin', 1000, 1)
    """
    return _encode(reader, name, None, store, code, stripe_size, overwrite, progress, nodes, None)


def _encode(
    reader: BinaryIO,
    name: str,
    mode: int | None,
    store: str | Path,
    code: str,
    stripe_size: int,
    overwrite: bool,
    progress: Progress,
    nodes: Sequence[str] | None,
    size: int | None,
) -> Manifest:
    """Encode ``reader`` (``size`` bytes, or until its end when None) into ``store``."""
    location = StoreLocation(store)
    linear = parse_code(code)
    check_range("stripe_size", stripe_size, 1, MAX_STRIPE_SIZE)
    try:
        check_name(name, "name of the file to encode")
    except IntegrityError as exc:  # the user's own input, not a damaged store
        raise ParameterError(str(exc)) from None
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
    roots = _node_roots(nodes, location, overwrite)
    homes = [location if not roots else roots[i % len(roots)] for i in range(linear.n)]
    for home in {id(h): h for h in [location, *homes]}.values():
        mine = [p for p, h in zip(paths, homes, strict=True) if h is home]
        _remove_stale_temporaries(home, [MANIFEST_NAME, *mine])
    with ExitStack() as stack:
        outputs = [
            stack.enter_context(home.atomic_writer(path))
            for home, path in zip(homes, paths, strict=True)
        ]
        checksums, sha256, size = _encode_stripes(
            reader, outputs, linear, size, stripe_size, progress
        )
    manifest = Manifest(
        format=FORMAT,
        code=code,
        file_name=name,
        file_size=size,
        file_mode=mode,
        stripe_size=stripe_size,
        stripes=stripe_count(size, linear.k, stripe_size),
        sha256=sha256,
        shards=[
            ShardEntry(
                index=i, path=path, crc32=checksums[i], node=i % len(roots) if roots else None
            )
            for i, path in enumerate(paths)
        ],
        code_version=LATEST_CODE_VERSION,
        nodes=[record_root(root, location) for root in roots] or None,
        store_id=secrets.token_hex(16) if roots else None,
    )
    _save_everywhere(manifest, location, roots)
    for old in sorted(set(replaced) - set(paths)):
        location.unlink(old)
    return manifest


def _node_roots(
    nodes: Sequence[str] | None, primary: StoreLocation, overwrite: bool
) -> list[StoreLocation]:
    """The roots named with --nodes, checked: distinct, and holding no other store."""
    if not nodes:
        return []
    roots = [StoreLocation(text) for text in nodes]
    keys = [_root_key(root) for root in roots]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ParameterError(f"--nodes names {nodes[i]!r} twice; give each node its own root")
    for root in roots:
        local = root.local_root
        if local is not None and local.exists() and not local.is_dir():
            raise ParameterError(f"node root {root} is a file; expected a folder")
        other = _root_key(root) != _root_key(primary)
        if other and not overwrite and root.size(MANIFEST_NAME) is not None:
            raise ParameterError(
                f"node root {root} already holds a store; pass --force to replace it"
            )
    return roots


def _root_key(root: StoreLocation) -> str:
    return str(root.local_root.resolve()) if root.local_root is not None else root.url.rstrip("/")


def _save_everywhere(
    manifest: Manifest, primary: StoreLocation, roots: Sequence[StoreLocation]
) -> None:
    """Write the manifest to ``primary`` and a copy into every root (roots relative to each)."""
    written = set()
    for home in [*roots, primary]:  # the primary last: it is where the store is opened
        key = _root_key(home)
        if key in written:
            continue
        written.add(key)
        copy = manifest
        if manifest.nodes:
            recorded = [record_root(root, home) for root in roots]
            copy = manifest.model_copy(update={"nodes": recorded})
        save_manifest(home, copy)


class _SourceChanged(Exception):
    """The file to encode ended before its size said, or went on after it."""


def _encode_stripes(
    reader: BinaryIO,
    outputs: list[BinaryIO],
    code: LinearCode,
    size: int | None,
    stripe_size: int,
    progress: Progress,
) -> tuple[list[list[int]], str, int]:
    """Read, encode and write every stripe; return per-shard CRC-32s, SHA-256 and byte count.

    ``size`` is the source's length, or None for a stream read until its end. A stripe read
    short is the last one; its chunk is the ceiling of its bytes over k, the layout a file of
    that length gets, so a stream and a file of the same bytes give the same store. A known
    ``size`` is checked: a source that ends early or goes on raises ``_SourceChanged``.

    A pipeline over three stripe buffers: a reader thread fills stripe s + 1 while the main
    thread computes the parities of stripe s in place and the worker threads write stripe s - 1
    (checksumming each row) and the hash thread digests it; ISA-L, file I/O, CRC and SHA-256
    all run outside the GIL. Each buffer holds the n rows of one stripe, data then parity, so
    nothing is copied: rows are written from views. Writes of one file stay in order (stripe s
    is submitted only after stripe s - 1 is written).
    """
    k, n = code.k, code.n
    full = k * stripe_size
    checksums: list[list[int]] = [[] for _ in range(n)]
    widest = stripe_size if size is None else min(stripe_size, -(-size // k) or 1)
    buffers = [np.empty(n * widest, dtype=np.uint8) for _ in range(3)]
    _read_sequentially(reader)

    def read_stripe(stripe: int) -> tuple[np.ndarray, int]:
        want = full if size is None else min(size - stripe * full, full)
        flat = buffers[stripe % 3]
        take = _read_fully(reader, memoryview(flat[:want]))
        if size is not None and take != want:
            raise _SourceChanged
        if size is None and stripe * full + take > MAX_FILE_SIZE:
            raise ParameterError(f"the input is longer than a store holds ({MAX_FILE_SIZE} bytes)")
        chunk = stripe_size if take == full else -(-take // k)
        flat[take : k * chunk] = 0
        return flat[: n * chunk].reshape(n, chunk), take

    total = 0
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=WRITER_THREADS))
        prefetch = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        hasher = _BackgroundHash(stack)
        pending: list[Future] = []
        known = None if size is None else stripe_count(size, k, stripe_size)
        upcoming = prefetch.submit(read_stripe, 0) if known != 0 else None
        stripe = 0
        while upcoming is not None:
            rows, take = upcoming.result()
            if take == 0:  # a stream that ended on a stripe boundary
                break
            more = take == full if known is None else stripe + 1 < known
            # its buffer held stripe - 2: written and hashed by now
            upcoming = prefetch.submit(read_stripe, stripe + 1) if more else None
            hasher.update(rows.reshape(-1)[:take])
            gf256.matmul(code.parity_matrix, rows[:k], out=rows[k:])
            for i, crc in enumerate(future.result() for future in pending):
                checksums[i].append(crc)
            pending = [pool.submit(_write_row, outputs[i], rows[i]) for i in range(n)]
            total += take
            stripe += 1
            if progress:
                progress(take)
        for i, crc in enumerate(future.result() for future in pending):
            checksums[i].append(crc)
        if size is not None and reader.read(1):
            raise _SourceChanged
        list(pool.map(_flush_and_sync, outputs))  # in parallel; the atomic close then renames
        return checksums, hasher.hexdigest(), total


def _read_fully(reader: BinaryIO, view: memoryview) -> int:
    """``readinto`` until ``view`` is full or the file ends; the number of bytes read."""
    done = 0
    while done < len(view):
        got = reader.readinto(view[done:])
        if not got:
            break
        done += got
    return done


def _read_sequentially(handle: BinaryIO) -> None:
    """Ask the kernel for a larger readahead on a local file read front to back (else nothing)."""
    with suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)


def _write_row(output: BinaryIO, row: np.ndarray) -> int:
    output.write(memoryview(row))
    return crc32(row)


def _flush_and_sync(output: BinaryIO) -> None:
    output.flush()
    fileno = getattr(output, "fileno", None)
    if fileno is not None:
        with suppress(OSError, ValueError, io.UnsupportedOperation):
            os.fsync(fileno())  # not a local file (fsspec): its close commits it


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
                _read_sequentially(handle)
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
            got = _read_fully(handle, memoryview(own))
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
        rebuilt = gf256.matmul(plan.matrix, [chunks[i] for i in plan.reads])
        return dict(zip(plan.lost, rebuilt, strict=True))


# --------------------------------------------------------------------------- decode
def decode_target(
    store: str | Path | StoreLocation,
    manifest: Manifest,
    output: str | Path | None = None,
    name: str | None = None,
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
    name
        The file's recorded name (default: the manifest's ``file_name``; a member's name for a
        store of several files).

    Returns
    -------
    Path
        The output file.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> str(decode_target("/data/photo.jpg.ec", SimpleNamespace(file_name="photo.jpg")))
    '/data/photo.jpg'
    """
    location = store if isinstance(store, StoreLocation) else StoreLocation(store)
    name = name or manifest.file_name
    if output is None:
        if location.local_root is None:
            return Path(name)
        return location.local_root.resolve().parent / name
    text = str(output)
    if Path(output).is_dir() or text.endswith(("/", os.sep)):
        return Path(output) / name
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


@dataclass(frozen=True)
class StoredFile:
    """One file of a store: its record and the consecutive data shards ``first..first+count-1``."""

    name: str
    size: int
    sha256: str
    mode: int | None
    stripes: int
    first: int
    count: int


def stored_files(manifest: Manifest, k: int) -> list[StoredFile]:
    """The files ``manifest`` records: its one file, or each member in data-shard order.

    Parameters
    ----------
    manifest
        A validated manifest whose code has ``k`` data shards (``Manifest.build_code``).
    k
        Data shards of the code.

    Returns
    -------
    list of StoredFile
        Name, size, SHA-256, output mode and data shards of each file.
    """
    if manifest.members is None:
        return [
            StoredFile(
                manifest.file_name,
                manifest.file_size,
                manifest.sha256,
                manifest.output_mode(),
                manifest.stripes,
                0,
                k,
            )
        ]
    files, first = [], 0
    for member in manifest.members:
        mode = manifest.output_mode(member.file_mode)
        files.append(
            StoredFile(
                member.file_name,
                member.file_size,
                member.sha256,
                mode,
                member.stripes,
                first,
                member.data_shards,
            )
        )
        first += member.data_shards
    return files


def _decode_into(
    reader: ShardReader,
    manifest: Manifest,
    out: BinaryIO,
    progress: Progress,
    stack: ExitStack,
    file: StoredFile,
) -> None:
    """Write ``file`` decoded to ``out``; raise DecodeError if its SHA-256 is not the recorded one.

    A pipeline over three stripe buffers: the file's data chunks of stripe s + 1 are read (and
    their CRCs checked) on worker threads while stripes s and s - 1 are hashed and written, so
    the SHA-256 thread (the slowest stage) always has a stripe waiting. Shards known to be
    missing before the run (absent, wrong size) are planned once: the other chunks their
    rebuild reads are fetched with the stripe, and the lost rows are computed straight into the
    buffer. A chunk found corrupt while reading is rebuilt around (re-planned). A one-file
    store's file is written straight from the buffer (no copies); a member shorter than the
    stripe is first cut out of the padding.
    """
    k = reader.code.k
    if file.stripes == 0:
        if hashlib.sha256().hexdigest() != file.sha256:
            raise DecodeError(f"{reader.location}: empty file does not match the SHA-256")
        return
    hasher = _BackgroundHash(stack)
    pool = stack.enter_context(ThreadPoolExecutor(max_workers=WRITER_THREADS))
    writer = stack.enter_context(ThreadPoolExecutor(max_workers=1))
    widest = manifest.chunk_length(0, k)
    shards = range(file.first, file.first + file.count)
    known_lost, plan, extra = _plan_known_losses(reader, shards)
    buffers = [np.empty(file.count * widest, dtype=np.uint8) for _ in range(3)]
    extra_buffers = [np.empty(len(extra) * widest, dtype=np.uint8) for _ in range(3)]

    def fetch(stripe: int) -> tuple[int, np.ndarray, list[Future], np.ndarray, list[Future]]:
        width = manifest.chunk_length(stripe, k)
        rows = buffers[stripe % 3][: file.count * width].reshape(file.count, width)
        extra_rows = extra_buffers[stripe % 3][: len(extra) * width].reshape(len(extra), width)
        reads = [pool.submit(reader.read_into, stripe, i, rows[i - file.first]) for i in shards]
        extra_reads = [
            pool.submit(reader.read_into, stripe, i, row)
            for i, row in zip(extra, extra_rows, strict=True)
        ]
        return width, rows, reads, extra_rows, extra_reads

    upcoming = fetch(0)
    writes: list[Future] = []  # one per stripe, done in order (one writer thread)
    remaining = file.size
    for stripe in range(file.stripes):
        width, rows, reads, extra_rows, extra_reads = upcoming
        good = [future.result() for future in reads]
        extra_good = [future.result() for future in extra_reads]
        if stripe >= 2:  # stripe - 2 is hashed (see _BackgroundHash.update): once it is also
            writes[stripe - 2].result()  # written, its buffer takes stripe + 1
        if stripe + 1 < file.stripes:
            upcoming = fetch(stripe + 1)
        lost = [i for i, ok in zip(shards, good, strict=True) if not ok]
        if lost and plan is not None and lost == known_lost and all(extra_good):
            sources = {i: rows[i - file.first] for i in shards if i not in known_lost}
            sources.update(zip(extra, extra_rows, strict=True))
            inputs = [sources[i] for i in plan.reads]
            if len(lost) == 1:  # into the buffer row itself
                at = lost[0] - file.first
                gf256.matmul(plan.matrix, inputs, out=rows[at : at + 1])
            else:
                for i, row in zip(plan.lost, gf256.matmul(plan.matrix, inputs), strict=True):
                    rows[i - file.first] = row
        elif lost:
            have = {i: rows[i - file.first] for i, ok in zip(shards, good, strict=True) if ok}
            have.update(
                (i, row if ok else None)
                for i, row, ok in zip(extra, extra_rows, extra_good, strict=True)
            )
            for i, row in reader.rebuild(stripe, lost, have).items():
                rows[i - file.first] = row
        own = manifest.shard_chunk_length(stripe, file.first, k)
        flat = rows.reshape(-1) if own == width else np.ascontiguousarray(rows[:, :own]).ravel()
        take = min(remaining, file.count * own)
        hasher.update(flat[:take])
        writes.append(writer.submit(out.write, memoryview(flat[:take])))
        remaining -= take
        if progress:
            progress(take)
    for write in writes[-2:]:  # the earlier ones were waited for in the loop
        write.result()
    if hasher.hexdigest() != file.sha256:
        raise DecodeError(
            f"{reader.location}: decoded {file.name} does not match the manifest's SHA-256; "
            "shards and manifest disagree (wrong manifest or undetected corruption)"
        )


def _plan_known_losses(
    reader: ShardReader, shards: range
) -> tuple[list[int], RepairPlan | None, list[int]]:
    """Data shards of ``shards`` missing before any read, their repair plan (None if there is
    nothing to rebuild or no plan), and the shards outside ``shards`` that plan reads."""
    known_lost = [i for i in shards if not reader.usable(i)]
    if not known_lost:
        return known_lost, None, []
    code = reader.code
    available = [i for i in range(code.n) if reader.usable(i)]
    try:
        plan = code.repair_plan(known_lost, available)
    except DecodeError:
        return known_lost, None, []  # reported stripe by stripe by ShardReader.rebuild
    return known_lost, plan, [i for i in plan.reads if i not in shards]


def decode_store(
    store: str | Path,
    output: str | Path | BinaryIO | None = None,
    progress: Progress = None,
    code: LinearCode | None = None,
    *,
    force: bool = False,
    member: str | None = None,
) -> Manifest:
    """Recover the original file from ``store`` (checked by SHA-256 before it is visible).

    A store of several files (``members``) decodes one of them (``member``) like a one-file
    store, or all of them into the folder ``output`` (default: beside the store).

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
    member
        Name of the one member to decode (stores of several files only).

    Returns
    -------
    Manifest
        The store's manifest.

    Raises
    ------
    IntegrityError
        Missing or invalid manifest (bad names, duplicate shard paths, absurd sizes).
    ParameterError
        The output is a folder, exists (without ``force``) or does not fit on its disk;
        ``member`` is not a member's name, or given for a one-file store; a store of several
        files without ``member`` asked to write to a stream.
    DecodeError
        Too few good shards, or the decoded bytes fail the SHA-256; no output is left behind.
    """
    location = StoreLocation(store)
    manifest = load_manifest(location)
    code = manifest.build_code(code)
    files = _chosen_files(location, manifest, code.k, member)
    stream = output if hasattr(output, "write") else None
    if stream is not None and len(files) > 1:
        raise ParameterError(
            f"{location} holds {len(files)} files {[f.name for f in files]}; name one with "
            "--member (member=) to write it to a stream, or decode them into a folder"
        )
    targets = [] if stream is not None else _targets(location, manifest, output, files)
    for target, file in zip(targets, files, strict=False):
        _check_target(target, file.size, force)
    with ExitStack() as stack:
        reader = ShardReader(location, manifest, code, stack)
        _check_decodable(reader, code, [i for i in range(code.k) if not reader.usable(i)])
        if stream is not None:
            spool = stack.enter_context(tempfile.TemporaryFile())
            _decode_into(reader, manifest, spool, progress, stack, files[0])
            spool.seek(0)
            shutil.copyfileobj(spool, stream, STREAM_BLOCK)
            stream.flush()
            return manifest
        for target, file in zip(targets, files, strict=True):
            for stale in target.parent.glob(glob.escape(temp_prefix(target.name)) + "*"):
                if temp_pattern(target.name).fullmatch(stale.name) and stale.is_file():
                    stale.unlink()  # what a killed decode to this target left
            with atomic_open(target, mode=file.mode) as out:
                _decode_into(reader, manifest, out, progress, stack, file)
    return manifest


def _chosen_files(
    location: StoreLocation, manifest: Manifest, k: int, member: str | None
) -> list[StoredFile]:
    """The files a decode writes: all of them, or the member named ``member``."""
    files = stored_files(manifest, k)
    if member is None:
        return files
    if manifest.members is None:
        raise ParameterError(
            f"{location} holds one file; --member (member=) is for stores of several"
        )
    chosen = [f for f in files if f.name == member]
    if not chosen:
        raise ParameterError(
            f"member={member!r} is not in {location}; its members: {[f.name for f in files]}"
        )
    return chosen


def _targets(
    location: StoreLocation,
    manifest: Manifest,
    output: str | Path | None,
    files: list[StoredFile],
) -> list[Path]:
    """Output paths: as ``decode_target`` for one file; for several, each name inside the folder
    ``output`` (created if missing; default: the store's parent folder)."""
    if manifest.members is None or len(files) == 1:
        return [decode_target(location, manifest, output, files[0].name)]
    folder = Path(output) if output is not None else decode_target(location, manifest, None, ".")
    if folder.exists() and not folder.is_dir():
        raise ParameterError(
            f"{folder} is a file; a store of {len(files)} files decodes into a folder"
        )
    with suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    return [folder / file.name for file in files]


def missing_roots(store: str | Path, manifest: Manifest) -> list[tuple[int, str]]:
    """(node, root) of every node root of ``store`` that is gone (a failed disk, a lost bucket).

    Parameters
    ----------
    store
        The folder or URL the manifest was read from.
    manifest
        Its validated manifest.

    Returns
    -------
    list of (int, str)
        Empty for a single-root store or when every root is there.
    """
    layout = Layout(StoreLocation(store), manifest)
    return [(node.index, str(node.location)) for node in layout.missing_roots()]


# --------------------------------------------------------------------------- verify
def _scan_all(reader: ShardReader, progress: Progress, stack: ExitStack) -> None:
    """Read and CRC-check every chunk of every usable shard, several shards at once.

    Each worker thread streams whole shards front to back into one reused buffer (I/O and CRC
    run outside the GIL); damage is recorded in ``reader``. Progress is reported in file bytes.
    """
    manifest, k = reader.manifest, reader.code.k
    usable = [i for i in range(reader.code.n) if reader.usable(i)]
    if not usable or manifest.stripes == 0:
        return
    done = dict.fromkeys(usable, 0)  # stripes checked per shard (each written by one thread)

    def scan(index: int) -> None:
        buffer = np.empty(manifest.chunk_length(0, k), dtype=np.uint8)
        for stripe in range(manifest.stripes):
            reader.read_into(stripe, index, buffer[: manifest.chunk_length(stripe, k)])
            done[index] = stripe + 1

    pool = stack.enter_context(ThreadPoolExecutor(max_workers=WRITER_THREADS))
    futures = [pool.submit(scan, i) for i in usable]
    reported, total = 0, len(usable) * manifest.stripes
    while futures:
        finished, _ = wait(futures, timeout=0.2)
        for future in finished:
            future.result()
        futures = [f for f in futures if f not in finished]
        covered = manifest.file_size * sum(done.values()) // total
        if progress and covered > reported:
            progress(covered - reported)
            reported = covered


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
        _scan_all(reader, progress, stack)
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
        ShardStatus(
            e.index, e.path, reader.states[e.index], reader.corrupt.get(e.index, []), e.node
        )
        for e in manifest.shards
    ]
    layout = reader.layout
    missing = [node.index for node in layout.missing_roots()]
    unexpected = _unexpected_files(layout, manifest, missing)
    roots = [str(node.location) for node in layout.roots]
    return VerifyReport(shards, recoverable, problem, unexpected, roots, missing)


def _unexpected_files(layout: Layout, manifest: Manifest, missing: list[int]) -> list[str]:
    """Files in the store the manifest does not name (e.g. temporaries of a killed run).

    A single-root store owns its whole folder. A node root may hold other things (it can be a
    whole disk), so there only the shard folders and manifest temporaries are looked at; such
    files are listed as ``ROOT: path``.
    """
    named = {MANIFEST_NAME, *(manifest.companions or []), *(e.path for e in manifest.shards)}
    if not layout.multi_root:
        return [path for path in layout.base.files() if path not in named]
    found: list[str] = []
    manifest_temporary = temp_pattern(MANIFEST_NAME)
    for node in layout.roots:
        if node.index in missing:
            continue
        folders = {e.path.split("/")[0] for e in manifest.shards if e.node == node.index}
        for path in node.location.files():
            top = path.split("/")[0]
            if path not in named and (top in folders or manifest_temporary.fullmatch(path)):
                found.append(f"{node.location}: {path}")
    return found


# --------------------------------------------------------------------------- repair
def repair_store(
    store: str | Path,
    only: Iterable[int] | None = None,
    progress: Progress = None,
    code: LinearCode | None = None,
    replace: dict[int, str] | None = None,
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
    replace
        Node index -> new root (stores encoded with ``nodes``): every shard of that node is
        rebuilt under the new root, then the manifest copies record it (each atomically).

    Returns
    -------
    RepairReport
        Which shards were rebuilt, bytes read and written, temporaries removed, manifests
        rewritten.

    Raises
    ------
    IntegrityError
        Missing or invalid manifest, or a folder in the way of a shard file.
    ParameterError
        An index in ``only`` or ``replace`` is out of range, or a shard would be written into a
        root outside the manifest's folder that the user did not name (see
        ``redundancy.erasure.nodes``) or that cannot be written.
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
    old_layout = Layout(location, manifest)
    layout = Layout(location, manifest, replace)
    moved = [e.index for e in manifest.shards if e.node is not None and e.node in (replace or {})]
    if only is not None:
        targets = sorted(set(only))
    else:
        damaged = verify_store(store, code=code).damaged if manifest.stripes else []
        targets = sorted(set(damaged) | set(moved))
    homes = {i: layout.shard_location(i) for i in targets}
    for node in layout.roots:
        mine = [i for i in targets if manifest.shards[i].node == node.index]
        if mine:
            layout.check_writable(node, mine)
    removed = _remove_stale_temporaries(
        location, [MANIFEST_NAME, *(e.path for e in manifest.shards if e.node is None)]
    )
    for node in layout.roots:
        if node.exists() and layout.may_write(node):
            mine = [e.path for e in manifest.shards if e.node == node.index]
            removed += _remove_stale_temporaries(node.location, [MANIFEST_NAME, *mine])
    if not targets and not replace:
        return RepairReport([], 0, 0, removed)
    written = 0
    with ExitStack() as stack:
        reader = ShardReader(location, manifest, code, stack, layout=old_layout)
        _check_decodable(reader, code, targets)
        outputs = {
            i: stack.enter_context(homes[i].atomic_writer(manifest.shards[i].path)) for i in targets
        }
        for stripe in range(manifest.stripes):
            rebuilt = reader.rebuild(stripe, targets, {})
            for i, chunk in rebuilt.items():
                own = chunk[: manifest.shard_chunk_length(stripe, i, code.k)]
                if not own.size:
                    continue  # past the end of its member: nothing stored
                outputs[i].write(own)
                written += own.size
                if crc32(own) != manifest.shards[i].crc32[stripe]:
                    raise DecodeError(f"stripe {stripe}: rebuilt shard {i} fails its checksum")
            if progress:
                progress(code.k * manifest.chunk_length(stripe, code.k))
        bytes_read = reader.bytes_read
    updated = _update_manifests(location, manifest, layout) if replace else []
    return RepairReport(targets, bytes_read, written, removed, updated)


def _update_manifests(base: StoreLocation, manifest: Manifest, layout: Layout) -> list[str]:
    """Record the new roots: a manifest copy in every root this run may write, then ``base``.

    Each copy is replaced atomically (temporary name, then rename); copies in roots this run
    may not write (or that are gone) keep the old roots and are listed by nothing: open the
    store from ``base`` or a rewritten root.
    """
    roots = [node.location for node in layout.roots]
    updated: list[str] = []
    written = {_root_key(base)}
    for node in layout.roots:
        key = _root_key(node.location)
        if key in written or not layout.may_write(node):
            continue
        if not node.named and not node.exists():
            continue
        written.add(key)
        recorded = [record_root(root, node.location) for root in roots]
        save_manifest(node.location, manifest.model_copy(update={"nodes": recorded}))
        updated.append(str(node.location))
    recorded = [record_root(root, base) for root in roots]
    save_manifest(base, manifest.model_copy(update={"nodes": recorded}))
    return [*updated, str(base)]
