"""Encoding a file or a stream into a store (a read -> code -> write pipeline)."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import numpy as np

from redundancy import gf256
from redundancy.erasure.codes import LATEST_CODE_VERSION, LinearCode, parse_code
from redundancy.erasure.location import StoreLocation, check_name
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
from redundancy.erasure.nodes import record_root
from redundancy.erasure.store.shards import (
    DEFAULT_STRIPE_SIZE,
    WRITER_THREADS,
    BackgroundHash,
    Progress,
    flush_and_sync,
    read_fully,
    read_sequentially,
    remove_stale_temporaries,
    root_key,
    shard_relpath,
    write_row,
)
from redundancy.errors import (
    IntegrityError,
    ParameterError,
    RedundancyError,
    check_range,
)


def _source_info(source: Path) -> os.stat_result:
    """``stat`` of the file to encode; a missing, unreadable or non-regular file is bad input."""
    try:
        info = source.stat()
    except FileNotFoundError:
        raise ParameterError(f"{source}: no such file") from None
    except OSError as exc:
        raise ParameterError(f"{source}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ParameterError(f"{source} is not a regular file; expected a file to encode")
    return info


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
    info = _source_info(source)
    check_range("file size", info.st_size, 0, MAX_FILE_SIZE)
    with source.open("rb", buffering=0) as reader:
        try:
            return _encode(
                reader,
                source.name if name is None else name,
                stat.S_IMODE(info.st_mode),
                store,
                code,
                stripe_size,
                overwrite,
                progress,
                nodes,
                info.st_size,
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
        remove_stale_temporaries(home, [MANIFEST_NAME, *mine])
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
    keys = [root_key(root) for root in roots]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ParameterError(f"--nodes names {nodes[i]!r} twice; give each node its own root")
    for root in roots:
        local = root.local_root
        if local is not None and local.exists() and not local.is_dir():
            raise ParameterError(f"node root {root} is a file; expected a folder")
        other = root_key(root) != root_key(primary)
        if other and not overwrite and root.size(MANIFEST_NAME) is not None:
            raise ParameterError(
                f"node root {root} already holds a store; pass --force to replace it"
            )
    return roots


def _save_everywhere(
    manifest: Manifest, primary: StoreLocation, roots: Sequence[StoreLocation]
) -> None:
    """Write the manifest to ``primary`` and a copy into every root (roots relative to each)."""
    written = set()
    for home in [*roots, primary]:  # the primary last: it is where the store is opened
        key = root_key(home)
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
    read_sequentially(reader)

    def read_stripe(stripe: int) -> tuple[np.ndarray, int]:
        want = full if size is None else min(size - stripe * full, full)
        flat = buffers[stripe % 3]
        take = read_fully(reader, memoryview(flat[:want]))
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
        hasher = BackgroundHash(stack)
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
            pending = [pool.submit(write_row, outputs[i], rows[i]) for i in range(n)]
            total += take
            stripe += 1
            if progress:
                progress(take)
        for i, crc in enumerate(future.result() for future in pending):
            checksums[i].append(crc)
        if size is not None and reader.read(1):
            raise _SourceChanged
        list(pool.map(flush_and_sync, outputs))  # in parallel; the atomic close then renames
        return checksums, hasher.hexdigest(), total
