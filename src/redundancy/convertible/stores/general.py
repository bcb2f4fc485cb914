"""General-regime conversion on disk: lambda_I stores of [n_I, k_I] -> lambda_F [n_F, k_F].

The stores are ordinary initial stores (``convert encode --code rs:3,2 --to rs:4,2``); the result
is one new folder. Data shards never move: initial shard (t, i) becomes shard t k_I + i of the
result (a hard link), and final codeword u is the data shards ``GeneralConversion.layout[u]`` plus
its r_F new parities (shard lcm + u r_F + j). Only ``GeneralConversion.reads`` are read (the
read-access bound), new parities go to temporary names and ``general.json`` is written last, so a
killed run leaves the initial stores decodable and a re-run finishes. Members may have different
sizes (shorter ones count as zeros, as in the merge).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from redundancy.convertible.algebra.access import ConversionPlan
from redundancy.convertible.algebra.general import GeneralConversion
from redundancy.convertible.spec import canonical, parse_spec
from redundancy.convertible.stores.plan_run import run_plan
from redundancy.convertible.stores.safe_paths import check_paths
from redundancy.convertible.stores.scalar import (
    ConvertedManifest,
    Member,
    check_checksums,
    check_members,
    check_stripes,
    codewords_manifest,
    codewords_parity_matrix,
    load_initial,
    member_chunk,
    member_targets,
    needs_reencode,
    read_chunk,
    read_manifest,
    reencode_note,
)
from redundancy.convertible.stores.stripe_io import (
    ConvertReport,
    retire_stores,
)
from redundancy.erasure.manifest import MANIFEST_NAME, save_manifest
from redundancy.erasure.store import shard_relpath
from redundancy.errors import DecodeError, IntegrityError, ParameterError
from redundancy.storage_io import atomic_open, atomic_write_bytes

GENERAL_FORMAT = "redundancy-convertible-general/1"
GENERAL_NAME = "general.json"


class GeneralManifest(ConvertedManifest):
    """``general.json``: the family, the lambda_I members, data and new parity shards."""

    stripes: int = Field(ge=0)
    members: list[Member]

    @model_validator(mode="after")
    def _consistent(self) -> GeneralManifest:
        check_stripes(self.shards, self.members, self.stripes)
        return self


def is_general_store(store: Path) -> bool:
    """Does ``store`` hold the result of a general-regime conversion?"""
    return (Path(store) / GENERAL_NAME).is_file()


def load_general(store: Path) -> tuple[GeneralManifest, GeneralConversion]:
    """Read and cross-check ``general.json``."""
    path = Path(store) / GENERAL_NAME
    manifest = read_manifest(path, GeneralManifest, "general")
    family = parse_spec(manifest.code)
    c = family.conversion
    gen = GeneralConversion(family)
    shards = c.lcm + c.lambda_f * c.r_f
    if manifest.format != GENERAL_FORMAT or c.regime != "general" or len(manifest.shards) != shards:
        raise IntegrityError(f"{path}: format or shard count disagrees with {manifest.code}")
    if len(manifest.members) != c.lambda_i:
        raise IntegrityError(f"{path}: {len(manifest.members)} members, expected {c.lambda_i}")
    check_members(manifest.members, c.k_i, manifest.stripe_size, str(path))
    if manifest.stripes != max(m.stripes for m in manifest.members):
        raise IntegrityError(f"{path}: stripes={manifest.stripes} disagrees with its members")
    check_checksums(manifest.shards, manifest.members, c.k_i, manifest.stripes, str(path))
    check_paths(Path(store), [s.path for s in manifest.shards], str(path))
    return manifest, gen


def _reencode_plan(gen: GeneralConversion) -> ConversionPlan:
    """The anchor: every data shard of every initial codeword read."""
    c = gen.conversion
    targets = gen.target_vectors()
    reads = tuple((t, i) for t in range(c.lambda_i) for i in range(c.k_i))
    return ConversionPlan(reads, tuple(targets), np.array(list(targets.values()), np.uint8))


def convert_general(
    stores: Sequence[Path],
    out: Path,
    to: str | None = None,
    method: str = "optimal",
    allow_degraded: bool = False,
    retire: bool = False,
    progress: Callable[[int], None] | None = None,
    pipeline: bool = True,
) -> ConvertReport:
    """Convert lambda_I initial stores of one general-regime family into the new folder ``out``."""
    stores, out = [Path(s) for s in stores], Path(out)
    if is_general_store(out):
        done, gen = load_general(out)
        if [m.source for m in done.members] != [str(s.resolve()) for s in stores]:
            raise ParameterError(f"{out} already holds a conversion of other stores")
        if retire:
            n_i = gen.conversion.k_i + gen.conversion.r_i
            retire_stores(
                stores, MANIFEST_NAME, [[shard_relpath(i) for i in range(n_i)]] * len(stores)
            )
        return ConvertReport(out, gen.conversion.describe(), method, 0, 0, 0, 0, resumed=True)
    if any(out.resolve() == s.resolve() for s in stores):
        raise ParameterError(f"out={out} must be a new folder, not one of the initial stores")
    loaded = [load_initial(s, to) for s in stores]
    if len({m.code for m, _, _ in loaded}) != 1:
        raise ParameterError(
            f"stores were written with different codes: {[m.code for m, _, _ in loaded]}"
        )
    if len({m.stripe_size for m, _, _ in loaded}) != 1:
        raise ParameterError("stores have different stripe sizes; must be equal")
    family = loaded[0][1]
    c = family.conversion
    if len(stores) != c.lambda_i:
        raise ParameterError(
            f"stores: {len(stores)} given, but {family.spec} converts lambda_I={c.lambda_i} "
            f"codewords ({c.describe()})"
        )
    if to is not None and canonical(to, "to") != f"rs:{c.k_f},{c.r_f}":
        raise ParameterError(
            f"to={to!r} does not match the stores' family: its final code is rs:{c.k_f},{c.r_f}"
        )
    gen = GeneralConversion(family)
    method = "reencode" if needs_reencode(loaded) else method
    plan = _reencode_plan(gen) if method == "reencode" else gen.plan()
    size = loaded[0][0].stripe_size
    members = [
        Member.of(m, s).model_copy(update={"file_mode": m.file_mode})
        for s, (m, _, _) in zip(stores, loaded, strict=True)
    ]
    stripes = max(m.stripes for m in members)
    report = ConvertReport(out, c.describe(), method, len(plan.reads), len(plan.writes), 0, 0)
    if needs_reencode(loaded):
        report.notes.append(reencode_note(stores, loaded))
    shards, phases = run_plan(stores, loaded, plan, out, report, allow_degraded, progress, pipeline)
    result = GeneralManifest(
        format=GENERAL_FORMAT,
        code=family.spec,
        stripe_size=size,
        stripes=stripes,
        members=members,
        shards=shards,
        bytes_read=report.bytes_read,
        bytes_written=report.bytes_written,
    )
    parity = codewords_parity_matrix(family.parities[1], gen.layout, c.k_i, c.lcm)
    ec_manifest = codewords_manifest(
        family.spec, size, members, shards, parity, c.r_f, GENERAL_NAME, c.k_i
    )
    with phases.timed("manifest"):  # ``ec`` reads the result; general.json is the commit point
        save_manifest(out, ec_manifest)
        atomic_write_bytes(out / GENERAL_NAME, result.model_dump_json(indent=1).encode())
    if retire:
        retire_stores(stores, MANIFEST_NAME, [[e.path for e in m.shards] for m, _, _ in loaded])
    report.phases = phases.seconds
    return report


def decode_general(
    store: Path,
    out_dir: Path,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Recover every member file; each final codeword decodes from any k_F of its n_F shards.

    Existing files are replaced only with ``force``; ``progress(n)`` gets the bytes decoded.
    """
    store, out_dir = Path(store), Path(out_dir)
    manifest, gen = load_general(store)
    c, final, size = gen.conversion, gen.final_code(), manifest.stripe_size
    targets = member_targets(manifest.members, out_dir, force)

    def chunk(index: int, stripe: int, length: int) -> np.ndarray | None:
        entry = manifest.shards[index]
        if not length:
            return np.zeros(0, np.uint8)
        return read_chunk(store / entry.path, stripe * size, length, entry.crc32[stripe])

    with ExitStack() as stack:
        outs = [stack.enter_context(atomic_open(t)) for t in targets]
        digests = [hashlib.sha256() for _ in targets]
        remaining = [m.file_size for m in manifest.members]
        for stripe in range(manifest.stripes):
            sizes = [member_chunk(m, stripe, size, c.k_i) for m in manifest.members]
            width = max(sizes)
            data: dict[tuple[int, int], np.ndarray] = {}
            for u, layout in enumerate(gen.layout):
                shards = [chunk(t * c.k_i + i, stripe, sizes[t]) for t, i in layout]
                shards = [None if s is None else np.pad(s, (0, width - s.size)) for s in shards]
                shards += [chunk(c.lcm + u * c.r_f + j, stripe, width) for j in range(c.r_f)]
                if any(s is None for s in shards[: c.k_f]):
                    try:
                        shards = final.reconstruct_data(shards)
                    except DecodeError as exc:
                        raise DecodeError(
                            f"{store}: stripe {stripe}, codeword {u}: {exc}"
                        ) from None
                for (t, i), s in zip(layout, shards[: c.k_f], strict=False):
                    data[t, i] = s[: sizes[t]]
            for t in range(c.lambda_i):
                if sizes[t]:
                    part = np.concatenate([data[t, i] for i in range(c.k_i)])[: remaining[t]]
                    digests[t].update(part)
                    outs[t].write(part)
                    remaining[t] -= part.size
                    if progress:
                        progress(part.size)
        for member, digest in zip(manifest.members, digests, strict=True):
            if digest.hexdigest() != member.sha256:
                raise DecodeError(f"{store}: member {member.file_name} fails its SHA-256")
    return targets
