"""Verifying a store chunk by chunk and repairing exactly the damaged shards."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from redundancy.erasure.checksum import crc32
from redundancy.erasure.codes import LinearCode
from redundancy.erasure.location import StoreLocation, temp_pattern
from redundancy.erasure.manifest import (
    MANIFEST_NAME,
    Manifest,
    load_manifest,
    save_manifest,
)
from redundancy.erasure.nodes import Layout, record_root
from redundancy.erasure.store.shards import (
    WRITER_THREADS,
    Progress,
    RepairReport,
    ShardReader,
    ShardStatus,
    VerifyReport,
    check_decodable,
    remove_stale_temporaries,
    root_key,
)
from redundancy.errors import (
    DecodeError,
    ParameterError,
)


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

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from redundancy.erasure.store import encode_file, shard_relpath
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_bytes(b"0123456789" * 50)
    >>> _ = encode_file(folder / "a.txt", folder / "a.ec", code="rs:3,2")
    >>> (folder / "a.ec" / shard_relpath(4)).unlink()
    >>> report = verify_store(folder / "a.ec")
    >>> report.damaged, report.recoverable
    ([4], True)
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

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from redundancy.erasure.store import encode_file, shard_relpath
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_bytes(b"0123456789" * 50)
    >>> _ = encode_file(folder / "a.txt", folder / "a.ec", code="lrc:4,2,1")
    >>> (folder / "a.ec" / shard_relpath(1)).unlink()
    >>> report = repair_store(folder / "a.ec")
    >>> report.rebuilt, (folder / "a.ec" / shard_relpath(1)).exists()
    ([1], True)
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
    removed = remove_stale_temporaries(
        location, [MANIFEST_NAME, *(e.path for e in manifest.shards if e.node is None)]
    )
    for node in layout.roots:
        if node.exists() and layout.may_write(node):
            mine = [e.path for e in manifest.shards if e.node == node.index]
            removed += remove_stale_temporaries(node.location, [MANIFEST_NAME, *mine])
    if not targets and not replace:
        return RepairReport([], 0, 0, removed)
    written = 0
    with ExitStack() as stack:
        reader = ShardReader(location, manifest, code, stack, layout=old_layout)
        check_decodable(reader, code, targets)
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
    written = {root_key(base)}
    for node in layout.roots:
        key = root_key(node.location)
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
