"""Convert lambda initial stores into one merged store, reading only what the plan needs.

Crash safety: the initial stores are not touched until the merged manifest is committed. New
parities go to temporary names and are renamed when complete, data shards are hard-linked (no
byte of data is read or moved), and ``convertible.json`` is written last, atomically. A conversion
killed at any point leaves the initial stores fully decodable; a re-run finishes it (and, with
``retire``, removes the initial stores' manifests and parities only after the commit).
"""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from redundancy.convertible.access import merge_plan
from redundancy.convertible.spec import parse_rs
from redundancy.convertible.stores import (
    MERGED_FORMAT,
    MERGED_NAME,
    Member,
    MergedManifest,
    load_initial,
    load_merged,
    member_chunk,
    save_merged,
)
from redundancy.erasure import store as ec_store
from redundancy.erasure.manifest import MANIFEST_NAME, ShardEntry
from redundancy.erasure.store import ShardReader
from redundancy.errors import IntegrityError, ParameterError
from redundancy.storage_io import atomic_open

METHODS = ("optimal", "reencode")


@dataclass
class ConvertReport:
    """What a conversion read and wrote (per stripe set: shards; in total: bytes)."""

    target: Path
    conversion: str
    method: str
    shards_read: int
    shards_written: int
    bytes_read: int
    bytes_written: int
    bytes_relocated: int = 0  # data copied only when hard links are impossible
    degraded: list[str] = field(default_factory=list)
    resumed: bool = False


def _same_sources(merged: MergedManifest, stores: Sequence[Path]) -> bool:
    return [m.source for m in merged.members] == [str(Path(s).resolve()) for s in stores]


def _retire(stores: Sequence[Path], parity_paths: Sequence[Sequence[str]]) -> None:
    """After the commit: drop each initial store's manifest first, then its files."""
    for store, paths in zip(stores, parity_paths, strict=True):
        (Path(store) / MANIFEST_NAME).unlink(missing_ok=True)
        for rel in paths:
            (Path(store) / rel).unlink(missing_ok=True)
            for folder in (Path(store) / rel).parents:
                if folder == Path(store).parent or not folder.is_dir() or any(folder.iterdir()):
                    break
                folder.rmdir()


def _link(source: Path, target: Path) -> int:
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


def _clear_stale(out: Path) -> None:
    """Remove temporaries a killed run left behind (they were never renamed into place)."""
    if out.is_dir():
        for stale in out.glob("node-*/.*.tmp"):
            stale.unlink()


def convert_stores(
    stores: Sequence[Path],
    out: Path,
    to: str | None = None,
    method: str = "optimal",
    allow_degraded: bool = False,
    retire: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ConvertReport:
    """Merge ``stores`` (written with one cvt: family, in codeword order) into ``out``.

    ``method="reencode"`` reads every data shard instead (the anchor). A missing or corrupt
    shard the plan needs is refused (IntegrityError) unless ``allow_degraded``, which rebuilds it
    from the initial code and reports the extra reads. Never writes a parity it did not verify.
    """
    if method not in METHODS:
        raise ParameterError(f"method={method!r} is not one of {list(METHODS)}")
    stores = [Path(s) for s in stores]
    out = Path(out)
    if (out / MERGED_NAME).is_file():
        merged, family = load_merged(out)
        if not _same_sources(merged, stores):
            raise ParameterError(f"{out} already holds a merged store of other stores")
        if retire:
            code = family.initial_code()
            paths = [[ec_store.shard_relpath(i) for i in range(code.n)]] * len(stores)
            _retire(stores, paths)
        return ConvertReport(out, family.conversion.describe(), method, 0, 0, 0, 0, resumed=True)
    if len(stores) < 2:
        raise ParameterError(f"stores: got {len(stores)}, a merge needs lambda >= 2 stores")
    if any(out.resolve() == s.resolve() for s in stores):
        raise ParameterError(f"out={out} must be a new folder, not one of the initial stores")
    loaded = [load_initial(s) for s in stores]
    specs = {m.code for m, _, _ in loaded}
    if len(specs) != 1:
        raise ParameterError(f"stores were written with different codes: {sorted(specs)}")
    sizes = {m.stripe_size for m, _, _ in loaded}
    if len(sizes) != 1:
        raise ParameterError(f"stores have different stripe sizes {sorted(sizes)}; must be equal")
    family, code = loaded[0][1], loaded[0][2]
    c = family.conversion
    if c.regime != "merge" or c.lambda_i != len(stores):
        raise ParameterError(
            f"stores: {len(stores)} given, but {specs.pop()} merges k_F/k_I = "
            f"{c.k_f / c.k_i:g} codewords ({c.describe()})"
        )
    if to is not None and parse_rs(to, "to") != (c.k_f, c.r_f):
        raise ParameterError(
            f"to={to!r} does not match the stores' family: its final code is rs:{c.k_f},{c.r_f} "
            "(the target is fixed when the stores are encoded)"
        )
    plan = merge_plan(family, read_data=method == "reencode")
    stripe_size = sizes.pop()
    members = [
        Member(
            file_name=m.file_name,
            file_size=m.file_size,
            sha256=m.sha256,
            stripes=m.stripes,
            source=str(s.resolve()),
        )
        for s, (m, _, _) in zip(stores, loaded, strict=True)
    ]
    stripes = max(m.stripes for m in members)
    report = ConvertReport(out, c.describe(), method, len(plan.reads), len(plan.writes), 0, 0)
    _clear_stale(out)
    sums: list[list[int]] = [[] for _ in plan.writes]
    with ExitStack() as stack:
        readers = [
            ShardReader(s, m, code, stack) for s, (m, _, _) in zip(stores, loaded, strict=True)
        ]
        for t, idx in plan.reads:
            if not readers[t].usable(idx) and not allow_degraded:
                raise IntegrityError(
                    f"{stores[t]}: shard {idx} is {readers[t].states[idx]}; conversion refuses "
                    "(repair the store first, or allow degraded conversion)"
                )
        outputs = [
            stack.enter_context(atomic_open(out / ec_store.shard_relpath(c.k_f + j)))
            for _, j in plan.writes
        ]
        for stripe in range(stripes):
            lengths = [member_chunk(m, stripe, stripe_size, c.k_i) for m in members]
            width = max(lengths)
            fetched = {}
            for t, idx in plan.reads:
                chunk = readers[t].read(stripe, idx) if lengths[t] else np.zeros(0, np.uint8)
                if chunk is None:
                    if not allow_degraded:
                        raise IntegrityError(
                            f"{stores[t]}: stripe {stripe} of shard {idx} fails its checksum; "
                            "conversion refuses (repair first, or allow degraded conversion)"
                        )
                    chunk = readers[t].rebuild(stripe, [idx], {})[idx]
                    report.degraded.append(f"{stores[t]} shard {idx} stripe {stripe}")
                fetched[(t, idx)] = np.pad(chunk, (0, width - chunk.size))
            for j, parity in enumerate(plan.apply(fetched).values()):
                outputs[j].write(parity)
                sums[j].append(zlib.crc32(parity))
                report.bytes_written += parity.size
            if progress:
                progress(stripe)
        report.bytes_read = sum(r.bytes_read for r in readers)
    shards: list[ShardEntry] = []
    for t, (manifest, _, _) in enumerate(loaded):
        for i in range(c.k_i):
            rel = ec_store.shard_relpath(t * c.k_i + i)
            report.bytes_relocated += _link(stores[t] / manifest.shards[i].path, out / rel)
            shards.append(ShardEntry(index=len(shards), path=rel, crc32=manifest.shards[i].crc32))
    for j in range(c.r_f):
        rel = ec_store.shard_relpath(c.k_f + j)
        shards.append(ShardEntry(index=len(shards), path=rel, crc32=sums[j]))
    merged = MergedManifest(
        format=MERGED_FORMAT,
        code=family.spec,
        stripe_size=stripe_size,
        stripes=stripes,
        members=members,
        shards=shards,
        bytes_read=report.bytes_read,
        bytes_written=report.bytes_written,
    )
    save_merged(out, merged)
    if retire:
        _retire(stores, [[e.path for e in m.shards] for m, _, _ in loaded])
    return report
