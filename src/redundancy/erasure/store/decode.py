"""Decoding a store back into its file(s), rebuilding lost chunks on the fly."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from redundancy.erasure.codes import LinearCode, RepairPlan
from redundancy.erasure.location import StoreLocation, temp_pattern
from redundancy.erasure.manifest import (
    Manifest,
    load_manifest,
)
from redundancy.erasure.nodes import Layout
from redundancy.erasure.store.shards import (
    STREAM_BLOCK,
    WRITER_THREADS,
    BackgroundHash,
    Progress,
    ShardReader,
    check_decodable,
)
from redundancy.errors import (
    DecodeError,
    ParameterError,
)
from redundancy.storage_io import atomic_open, temp_prefix


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
    hasher = BackgroundHash(stack)
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
        if stripe >= 2:  # stripe - 2 is hashed (see BackgroundHash.update): once it is also
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
                reader.code.apply_plan(plan, inputs, out=rows[at : at + 1])
            else:
                for i, row in zip(plan.lost, reader.code.apply_plan(plan, inputs), strict=True):
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

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from redundancy.erasure.store import encode_file, shard_relpath
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_bytes(b"0123456789" * 50)
    >>> _ = encode_file(folder / "a.txt", folder / "a.ec", code="rs:3,2")
    >>> (folder / "a.ec" / shard_relpath(0)).unlink()  # a lost data shard
    >>> _ = decode_store(folder / "a.ec", folder / "back.txt")
    >>> (folder / "back.txt").read_bytes() == (folder / "a.txt").read_bytes()
    True
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
        check_decodable(reader, code, [i for i in range(code.k) if not reader.usable(i)])
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
