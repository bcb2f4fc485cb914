"""Convert lambda initial stores into one merged store, reading only what the plan needs.

Crash safety: the initial stores are not touched until the merged manifest is committed. New
parities go to temporary names and are renamed when complete, data shards are hard-linked (no
byte of data is read or moved), and ``convertible.json`` is written last, atomically. A conversion
killed at any point leaves the initial stores fully decodable; a re-run finishes it (and, with
``retire``, removes the initial stores' manifests and parities only after the commit).
Layered stores (LRC or piggyback, ``layered.json``) are handed to ``layered_merge``, and a single
store of a split family to ``split_store``, stores of a general-regime family to ``general_store``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from redundancy.convertible.access import merge_plan
from redundancy.convertible.general_store import convert_general, is_general_store
from redundancy.convertible.layered import is_layered_store
from redundancy.convertible.layered_merge import convert_layered_stores
from redundancy.convertible.plan_run import run_plan
from redundancy.convertible.spec import canonical
from redundancy.convertible.split_store import convert_split, is_split_store
from redundancy.convertible.stores import (
    MERGED_FORMAT,
    MERGED_NAME,
    Member,
    MergedManifest,
    load_initial,
    load_merged,
    save_merged,
)
from redundancy.convertible.stripe_io import (
    ConvertReport,
    retire_stores,
)
from redundancy.erasure import store as ec_store
from redundancy.erasure.manifest import MANIFEST_NAME
from redundancy.errors import ParameterError

METHODS = ("optimal", "reencode")

__all__ = ["METHODS", "ConvertReport", "convert_stores"]


def _same_sources(merged: MergedManifest, stores: Sequence[Path]) -> bool:
    return [m.source for m in merged.members] == [str(Path(s).resolve()) for s in stores]


def _regime(stores: Sequence[Path], out: Path) -> str | None:
    """The regime of the conversion: from a finished result in ``out``, else the stores' family."""
    if is_general_store(out):
        return "general"
    if is_split_store(out):
        return "split"
    if (out / MERGED_NAME).is_file() or not stores:
        return None
    return load_initial(stores[0])[1].conversion.regime


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
    regime = _regime(stores, out)
    if regime == "general":
        return convert_general(stores, out, to, method, allow_degraded, retire, progress, pipeline)
    if len(stores) == 1 and regime == "split":
        return convert_split(stores[0], out, to, method, allow_degraded, retire, progress, pipeline)
    if (out / MERGED_NAME).is_file():
        merged, family = load_merged(out)
        if not _same_sources(merged, stores):
            raise ParameterError(f"{out} already holds a merged store of other stores")
        if retire:
            code = family.initial_code()
            paths = [[ec_store.shard_relpath(i) for i in range(code.n)]] * len(stores)
            retire_stores(stores, MANIFEST_NAME, paths)
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
    if to is not None and canonical(to, "to") != f"rs:{c.k_f},{c.r_f}":
        raise ParameterError(
            f"to={to!r} does not match the stores' family: its final code is rs:{c.k_f},{c.r_f} "
            "(the target is fixed when the stores are encoded)"
        )
    plan = merge_plan(family, read_data=method == "reencode")
    stripe_size = sizes.pop()
    members = [Member.of(m, s) for s, (m, _, _) in zip(stores, loaded, strict=True)]
    report = ConvertReport(out, c.describe(), method, len(plan.reads), len(plan.writes), 0, 0)
    shards, phases = run_plan(
        stores, loaded, members, plan, out, report, allow_degraded, progress, pipeline
    )
    merged = MergedManifest(
        format=MERGED_FORMAT,
        code=family.spec,
        stripe_size=stripe_size,
        stripes=max(m.stripes for m in members),
        members=members,
        shards=shards,
        bytes_read=report.bytes_read,
        bytes_written=report.bytes_written,
    )
    with phases.timed("manifest"):
        save_merged(out, merged)
    if retire:
        retire_stores(stores, MANIFEST_NAME, [[e.path for e in m.shards] for m, _, _ in loaded])
    report.phases = phases.seconds
    return report
