"""Convert lambda initial stores into one merged store, reading only what the plan needs.

Crash safety: the initial stores are not touched until the merged manifest is committed. New
parities go to temporary names and are renamed when complete, data shards are hard-linked (no
byte of data is read or moved), and ``convertible.json`` is written last, atomically. A conversion
killed at any point leaves the initial stores fully decodable; a re-run finishes it (and, with
``retire``, removes the initial stores' manifests and parities only after the commit).
Layered stores (LRC or piggyback, ``layered.json``) are handed to ``layered_merge``, and a single
store of a split family to ``split_store``, stores of a general-regime family to ``general_store``.

The target is chosen at run time (``to``; an initial code depends on (k_I, r_I) only), and a
merged store is itself a store to convert: its ``manifest.json`` (an ``ec`` manifest, written
just before the commit) holds its members on their data shards and the final code, which is the
base code of its own shape when r is kept, so rs:6,3 x2 -> rs:12,3 then x2 -> rs:24,3 chains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from redundancy.convertible.algebra.access import merge_plan
from redundancy.convertible.spec import canonical
from redundancy.convertible.stores.general import convert_general, is_general_store
from redundancy.convertible.stores.layered import is_layered_store
from redundancy.convertible.stores.layered_merge import convert_layered_stores
from redundancy.convertible.stores.plan_run import run_plan
from redundancy.convertible.stores.scalar import (
    MERGED_FORMAT,
    MERGED_NAME,
    Member,
    MergedManifest,
    distinct_names,
    load_initial,
    load_merged,
    needs_reencode,
    reencode_note,
    save_merged,
)
from redundancy.convertible.stores.split import convert_split, is_split_store
from redundancy.convertible.stores.stripe_io import (
    ConvertReport,
    retire_stores,
)
from redundancy.erasure import store as ec_store
from redundancy.erasure.manifest import FORMAT, MANIFEST_NAME, Manifest, save_manifest
from redundancy.errors import ParameterError

METHODS = ("optimal", "reencode")

__all__ = ["METHODS", "ConvertReport", "convert_stores"]


def _same_sources(merged: MergedManifest, stores: Sequence[Path]) -> bool:
    sources = merged.inputs or [m.source for m in merged.members]
    return sources == [str(Path(s).resolve()) for s in stores]


def _regime(stores: Sequence[Path], out: Path, to: str | None) -> str | None:
    """The regime of the conversion: from a finished result in ``out``, else the stores' family."""
    if is_general_store(out):
        return "general"
    if is_split_store(out):
        return "split"
    if (out / MERGED_NAME).is_file() or not stores:
        return None
    return load_initial(stores[0], to)[1].conversion.regime


def _ec_manifest(merged: MergedManifest, final_parity: list[list[int]], k_i: int) -> Manifest:
    """The merged store as an ``ec`` store: members on their data shards, the final code."""
    names = distinct_names(merged.members)
    return Manifest(
        format=FORMAT,
        code=merged.code,
        file_size=sum(m.file_size for m in merged.members),
        stripe_size=merged.stripe_size,
        stripes=merged.stripes,
        shards=merged.shards,
        parity_matrix=final_parity,
        members=[m.entry(k_i, name) for m, name in zip(merged.members, names, strict=True)],
        companions=[MERGED_NAME],
    )


def convert_stores(
    stores: Sequence[Path],
    out: Path,
    to: str | None = None,
    method: str = "optimal",
    allow_degraded: bool = False,
    retire: bool = False,
    progress: Callable[[int], None] | None = None,
    pipeline: bool = True,
) -> ConvertReport:
    """Merge ``stores`` (written with one convertible family, in codeword order) into ``out``.

    ``method="reencode"`` reads every data shard instead (the anchor). A missing or corrupt
    shard the plan needs is refused (IntegrityError) unless ``allow_degraded``, which rebuilds it
    from the initial code and reports the extra reads. Never writes a parity it did not verify.
    ``pipeline=False`` runs read, compute and write one after the other (for timing breakdowns).
    """
    if method not in METHODS:
        raise ParameterError(f"method={method!r} is not one of {list(METHODS)}")
    stores = [Path(s) for s in stores]
    out = Path(out)
    if is_layered_store(out) or any(is_layered_store(s) for s in stores):
        return convert_layered_stores(
            stores, out, to, method, allow_degraded, retire, progress, pipeline
        )
    regime = _regime(stores, out, to)
    if regime == "general":
        return convert_general(stores, out, to, method, allow_degraded, retire, progress, pipeline)
    if len(stores) == 1 and regime == "split":
        return convert_split(stores[0], out, to, method, allow_degraded, retire, progress, pipeline)
    if (out / MERGED_NAME).is_file():
        merged, family = load_merged(out)
        if not _same_sources(merged, stores):
            raise ParameterError(f"{out} already holds a merged store of other stores")
        if retire:
            c = family.conversion
            paths = [[ec_store.shard_relpath(i) for i in range(c.k_i + c.r_i)]] * len(stores)
            _retire(stores, paths)
        return ConvertReport(out, family.conversion.describe(), method, 0, 0, 0, 0, resumed=True)
    if len(stores) < 2:
        raise ParameterError(f"stores: got {len(stores)}, a merge needs lambda >= 2 stores")
    if any(out.resolve() == s.resolve() for s in stores):
        raise ParameterError(f"out={out} must be a new folder, not one of the initial stores")
    loaded = [load_initial(s, to) for s in stores]
    specs = {family.spec for _, family, _ in loaded}
    if len(specs) != 1:
        codes = sorted({m.code for m, _, _ in loaded})
        raise ParameterError(f"stores were written with different codes: {codes}")
    sizes = {m.stripe_size for m, _, _ in loaded}
    if len(sizes) != 1:
        raise ParameterError(f"stores have different stripe sizes {sorted(sizes)}; must be equal")
    family = loaded[0][1]
    c = family.conversion
    if c.regime != "merge" or c.lambda_i != len(stores):
        raise ParameterError(
            f"stores: {len(stores)} given, but {specs.pop()} merges k_F/k_I = "
            f"{c.k_f / c.k_i:g} codewords ({c.describe()})"
        )
    if to is not None and canonical(to, "to") != f"rs:{c.k_f},{c.r_f}":
        raise ParameterError(
            f"to={to!r} does not match the stores' family: its final code is rs:{c.k_f},{c.r_f}"
        )
    reencode = method == "reencode" or needs_reencode(loaded)
    plan = merge_plan(family, read_data=reencode)
    stripe_size = sizes.pop()
    chained = any(m.members is not None for m, _, _ in loaded)
    members = [
        member
        for s, (m, _, _) in zip(stores, loaded, strict=True)
        for member in Member.all_of(m, s)
    ]
    if not chained:  # one file per store: the record keeps the format of earlier merged stores
        members = [m.model_copy(update={"data_shards": None}) for m in members]
    method = "reencode" if reencode else method
    report = ConvertReport(out, c.describe(), method, len(plan.reads), len(plan.writes), 0, 0)
    if needs_reencode(loaded):
        report.notes.append(reencode_note(stores, loaded))
    shards, phases = run_plan(stores, loaded, plan, out, report, allow_degraded, progress, pipeline)
    merged = MergedManifest(
        format=MERGED_FORMAT,
        code=family.spec,
        stripe_size=stripe_size,
        stripes=max(m.stripes for m, _, _ in loaded),
        members=members,
        shards=shards,
        bytes_read=report.bytes_read,
        bytes_written=report.bytes_written,
        inputs=[str(s.resolve()) for s in stores],
    )
    with phases.timed("manifest"):
        save_manifest(out, _ec_manifest(merged, family.parities[1].tolist(), c.k_i))
        save_merged(out, merged)
    if retire:
        _retire(stores, [[e.path for e in m.shards] for m, _, _ in loaded])
    report.phases = phases.seconds
    return report


def _retire(stores: Sequence[Path], paths: Sequence[Sequence[str]]) -> None:
    """Remove the merged stores' records (a chained input), then every store's manifest and
    shards."""
    for store in stores:
        (Path(store) / MERGED_NAME).unlink(missing_ok=True)
    retire_stores(stores, MANIFEST_NAME, paths)
