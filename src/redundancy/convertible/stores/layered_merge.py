"""Merge lam layered stores (LRC global merge or piggyback) into one, reading only the bound.

Kept nodes (data, and an LRC's local parities) are hard links; only the family's new nodes are
computed, from the symbols ``family.reads`` names (one layer of most shards, some shards in full),
written under temporary names, and ``layered.json`` (stage ``final``) is written last. A conversion
killed at any point leaves the initial stores untouched and decodable; a re-run finishes it.
Members must have the same shard size (layers of shorter shards would not line up).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from redundancy import gf256
from redundancy.convertible.algebra.bounds import format_units
from redundancy.convertible.spec import canonical
from redundancy.convertible.stores.layered import (
    LAYERED_NAME,
    LayeredFamily,
    LayeredManifest,
    LayeredShard,
    Symbol,
    is_layered_store,
    load_layered,
    read_node,
    solve,
)
from redundancy.convertible.stores.stripe_io import (
    BufferRing,
    ConvertReport,
    CountingReader,
    ParityWriter,
    Phases,
    clear_stale,
    crc32,
    crc_ok,
    link,
    retire_stores,
    run_stripes,
)
from redundancy.erasure.manifest import MANIFEST_NAME, save_manifest
from redundancy.erasure.store import shard_relpath
from redundancy.errors import DecodeError, IntegrityError, ParameterError
from redundancy.storage_io import atomic_open, atomic_write_bytes


def _runs(reads: Sequence[Symbol]) -> list[tuple[int, int, int, int]]:
    """Group symbols into contiguous reads: (codeword, node, first layer, count)."""
    runs: list[list[int]] = []
    for t, node, a in reads:
        if runs and runs[-1][:2] == [t, node] and runs[-1][2] + runs[-1][3] == a:
            runs[-1][3] += 1
        else:
            runs.append([t, node, a, 1])
    return [(t, node, a, n) for t, node, a, n in runs]


def _check_initial(
    stores: Sequence[Path], to: str | None
) -> tuple[list[LayeredManifest], LayeredFamily]:
    """Load lam initial stores of one family with the same shard layout."""
    loaded = []
    for store in stores:
        manifest, family = load_layered(store)
        if manifest.stage != "initial":
            raise ParameterError(f"{store} is an already merged store, not an initial one")
        loaded.append((manifest, family))
    specs = {m.code for m, _ in loaded}
    if len(specs) != 1:
        raise ParameterError(f"stores were written with different codes: {sorted(specs)}")
    shapes = {(m.stripe_size, m.stripes, m.last_chunk) for m, _ in loaded}
    if len(shapes) != 1:
        raise ParameterError(
            "layered stores must have the same stripe size and shard size (their layers must "
            f"line up); got (stripe_size, stripes, last chunk) = {sorted(shapes)}"
        )
    family = loaded[0][1]
    if family.lam != len(stores):
        raise ParameterError(
            f"stores: {len(stores)} given, but {specs.pop()} merges lambda={family.lam} codewords"
        )
    if to is not None and canonical(to, "to") != family.final_spec:
        raise ParameterError(
            f"to={to!r} does not match the stores' family: its final code is "
            f"{family.final_spec} (the target is fixed when the stores are encoded)"
        )
    return [manifest for manifest, _ in loaded], family


def _rebuild_shard(
    counter: CountingReader,
    store: Path,
    manifest: LayeredManifest,
    family: LayeredFamily,
    node: int,
    target: Path,
) -> int:
    """Decode a lost shard of an initial store into ``target``, checked against its CRC-32s."""
    alpha, written = family.alpha, 0
    with atomic_open(target) as out:
        for stripe in range(manifest.stripes):
            have = {}
            for other in range(family.n_i):
                if other != node:
                    layers, good = read_node(counter, store, manifest, other, stripe)
                    have.update({(other, a): layers[a] for a in range(alpha) if good[a]})
            want = [node * alpha + a for a in range(alpha)]
            rows = solve(family.initial_generator, alpha, have, want, f"{store} stripe {stripe}")
            if [crc32(row) for row in rows] != manifest.shards[node].crc32[stripe]:
                raise DecodeError(f"{store}: rebuilt shard {node} fails its checksums")
            out.write(rows.reshape(-1))
            written += rows.size
    return written


def _resume(stores: Sequence[Path], out: Path, method: str, retire: bool) -> ConvertReport:
    manifest, family = load_layered(out)
    if manifest.stage != "final" or [m.source for m in manifest.members] != [
        str(Path(s).resolve()) for s in stores
    ]:
        raise ParameterError(f"{out} already holds a store of other stores")
    if retire:
        _retire(stores, [[shard_relpath(i) for i in range(family.n_i)]] * len(stores))
    return ConvertReport(out, manifest.code, method, 0, 0, 0, 0, resumed=True)


def _retire(stores: Sequence[Path], paths: Sequence[Sequence[str]]) -> None:
    """Remove each initial store's ``ec`` manifest, then its layered manifest and shards."""
    for store in stores:
        (Path(store) / MANIFEST_NAME).unlink(missing_ok=True)
    retire_stores(stores, LAYERED_NAME, paths)


def convert_layered_stores(
    stores: Sequence[Path],
    out: Path,
    to: str | None = None,
    method: str = "optimal",
    allow_degraded: bool = False,
    retire: bool = False,
    progress: Callable[[int], None] | None = None,
    pipeline: bool = True,
) -> ConvertReport:
    """Merge lam initial layered stores into ``out`` (``method="reencode"``: read all data)."""
    stores, out = [Path(s) for s in stores], Path(out)
    if is_layered_store(out):
        return _resume(stores, out, method, retire)
    if len(stores) < 2:
        raise ParameterError(f"stores: got {len(stores)}, a merge needs lambda >= 2 stores")
    if any(out.resolve() == s.resolve() for s in stores):
        raise ParameterError(f"out={out} must be a new folder, not one of the initial stores")
    if not all(is_layered_store(s) for s in stores):
        raise ParameterError(
            "stores mix layered (LRC or piggyback) and scalar convertible stores; all must be "
            "written with the same code"
        )
    manifests, fam = _check_initial(stores, to)
    alpha, news = fam.alpha, len(fam.new_nodes)
    if method == "reencode":
        k, a_n = fam.k_i, range(alpha)
        reads = [(t, i, a) for t in range(fam.lam) for i in range(k) for a in a_n]
        matrix, units = fam.reencode_matrix, format_units(fam.lam * fam.k_i)
    else:
        reads, matrix, units = list(fam.reads), fam.matrix, format_units(fam.units)
    runs = _runs(reads)
    report = ConvertReport(out, fam.spec, method, units, news, 0, 0)
    size = manifests[0].shard_size
    for t, node, _, _ in runs:
        path = stores[t] / manifests[t].shards[node].path
        state = "missing" if not path.is_file() else "wrong-size"
        if (not path.is_file() or path.stat().st_size != size) and not allow_degraded:
            raise IntegrityError(
                f"{stores[t]}: shard {node} is {state}; conversion refuses "
                "(repair the store first, or allow degraded conversion)"
            )
    clear_stale(out)
    phases = Phases()
    counter = CountingReader(phases)
    stripe_size = manifests[0].stripe_size
    inputs = BufferRing(len(reads), stripe_size // alpha)
    outputs = BufferRing(news * alpha, stripe_size // alpha)

    def regions(stripe: int) -> list[tuple[Path, int, int]]:
        if stripe >= manifests[0].stripes:
            return []
        width = manifests[0].chunk(stripe) // alpha
        return [
            (
                stores[t] / manifests[t].shards[node].path,
                stripe * stripe_size + a * width,
                n * width,
            )
            for t, node, a, n in runs
        ]

    def load(stripe: int) -> list[np.ndarray | None]:
        counter.prefetch(regions(stripe + 1) if stripe else regions(0) + regions(1))
        width = manifests[0].chunk(stripe) // alpha
        block = inputs.get(stripe, width)
        fetched: list[np.ndarray | None] = []
        for t, node, first, count in runs:
            entry = manifests[t].shards[node]
            buf = block[len(fetched) : len(fetched) + count]
            offset = stripe * stripe_size + first * width
            ok = counter.read_into(stores[t] / entry.path, offset, buf.reshape(-1))
            for j in range(count):
                good = ok and crc_ok(phases, buf[j], entry.crc32[stripe][first + j])
                fetched.append(buf[j] if good else None)
        return fetched

    def rebuild(stripe: int, t: int, lost: list[int], fetched: list) -> None:
        """Fill the lost symbols of codeword ``t`` from every good symbol of it (degraded)."""
        have = {}
        for node in range(fam.n_i):
            layers, good = read_node(counter, stores[t], manifests[t], node, stripe)
            have.update({(node, a): layers[a] for a in range(alpha) if good[a]})
        want = [reads[col][1] * alpha + reads[col][2] for col in lost]
        rows = solve(fam.initial_generator, alpha, have, want, f"{stores[t]} stripe {stripe}")
        for col, row in zip(lost, rows, strict=True):
            fetched[col] = row
            _, node, a = reads[col]
            report.degraded.append(f"{stores[t]} shard {node} layer {a} stripe {stripe}")

    def compute(stripe: int, fetched: list[np.ndarray | None]) -> list[np.ndarray]:
        for t in range(fam.lam):
            lost = [col for col, s in enumerate(reads) if s[0] == t and fetched[col] is None]
            if lost and not allow_degraded:
                _, node, a = reads[lost[0]]
                raise IntegrityError(
                    f"{stores[t]}: stripe {stripe} layer {a} of shard {node} is missing or fails "
                    "its checksum; conversion refuses (repair first, or allow degraded conversion)"
                )
            if lost:
                rebuild(stripe, t, lost, fetched)
        with phases.timed("compute"):
            new = gf256.matmul_sparse(matrix, fetched, out=outputs.get(stripe, fetched[0].size))
        return [new[j * alpha : (j + 1) * alpha].reshape(-1) for j in range(news)]

    with ExitStack() as stack:
        stack.callback(counter.close)
        handles = [
            stack.enter_context(atomic_open(out / shard_relpath(index))) for index in fam.new_nodes
        ]
        writer = ParityWriter(handles, alpha, phases)
        run_stripes(manifests[0].stripes, load, compute, writer, progress, pipeline)
        with phases.timed("fsync"):
            stack.close()
    report.bytes_written = writer.bytes_written
    shards: list[LayeredShard | None] = [None] * fam.n_f
    with phases.timed("link"):
        for t, node, index in fam.kept:
            entry, rel = manifests[t].shards[node], shard_relpath(index)
            shards[index] = LayeredShard(index=index, path=rel, crc32=entry.crc32)
            source = stores[t] / entry.path
            if source.is_file() and source.stat().st_size == size:
                report.bytes_relocated += link(source, out / rel)
                continue
            if not allow_degraded:
                raise IntegrityError(f"{stores[t]}: shard {node} is missing; conversion refuses")
            report.bytes_written += _rebuild_shard(
                counter, stores[t], manifests[t], fam, node, out / rel
            )
            report.degraded.append(f"{stores[t]} shard {node} rebuilt into {rel}")
    report.bytes_read = counter.bytes_read
    for j, index in enumerate(fam.new_nodes):
        shards[index] = LayeredShard(index=index, path=shard_relpath(index), crc32=writer.crc32[j])
    members = [
        man.members[0].model_copy(update={"source": str(s.resolve())})
        for s, man in zip(stores, manifests, strict=True)
    ]
    final = manifests[0].model_copy(
        update={
            "stage": "final",
            "members": members,
            "shards": shards,
            "bytes_read": report.bytes_read,
            "bytes_written": report.bytes_written,
        }
    )
    with phases.timed("manifest"):
        save_manifest(out, final.ec_manifest(fam))  # what `ec` reads; layered.json commits
        atomic_write_bytes(out / LAYERED_NAME, final.model_dump_json(indent=1).encode())
    if retire:
        _retire(stores, [[e.path for e in man.shards] for man in manifests])
    report.phases = phases.seconds
    return report
