"""Split one stored [n_I, k_I] codeword into lambda [n_F, k_F] codewords (k_I = lambda k_F) on disk.

Stable and access-optimal (``access.split_plan``): the data shards stay (hard links into the new
folder), codeword u of the result is data shards u k_F .. (u + 1) k_F - 1 plus its r_F new
parities, and only (lambda - 1) k_F data shards and r_F old parities are read (the last block's
parities come from the old parities minus the other blocks). New parities are written under
temporary names and ``split.json`` last, so a killed run leaves the initial store decodable and a
re-run finishes. ``method="reencode"`` reads all k_I data shards instead (the anchor).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import model_validator

from redundancy.convertible.algebra.access import ConversionPlan, ConvertibleFamily, split_plan
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
from redundancy.ui import check_output

SPLIT_FORMAT = "redundancy-convertible-split/1"
SPLIT_NAME = "split.json"


class SplitManifest(ConvertedManifest):
    """``split.json``: the family, the original file, and k_I data + lambda r_F parity shards."""

    member: Member

    @model_validator(mode="after")
    def _consistent(self) -> SplitManifest:
        check_stripes(self.shards, [self.member], self.member.stripes)
        return self


def is_split_store(store: Path) -> bool:
    """Does ``store`` hold the result of a split?"""
    return (Path(store) / SPLIT_NAME).is_file()


def load_split(store: Path) -> tuple[SplitManifest, ConvertibleFamily]:
    """Read and cross-check ``split.json``."""
    path = Path(store) / SPLIT_NAME
    manifest = read_manifest(path, SplitManifest, "split")
    family = parse_spec(manifest.code)
    c = family.conversion
    if manifest.format != SPLIT_FORMAT or len(manifest.shards) != c.k_i + c.lambda_f * c.r_f:
        raise IntegrityError(f"{path}: format or shard count disagrees with {manifest.code}")
    check_members([manifest.member], c.k_i, manifest.stripe_size, str(path))
    stripes = manifest.member.stripes
    check_checksums(manifest.shards, [manifest.member] * c.lambda_f, c.k_f, stripes, str(path))
    check_paths(Path(store), [s.path for s in manifest.shards], str(path))
    return manifest, family


def _reencode_plan(family: ConvertibleFamily) -> ConversionPlan:
    """The anchor: every data shard read, each final codeword's parities encoded from its data."""
    c = family.conversion
    parity = family.final_code().parity_matrix
    reads = tuple((0, i) for i in range(c.k_i))
    writes = tuple((u, j) for u in range(c.lambda_f) for j in range(c.r_f))
    matrix = np.zeros((len(writes), c.k_i), dtype=np.uint8)
    for row, (u, j) in enumerate(writes):
        matrix[row, u * c.k_f : (u + 1) * c.k_f] = parity[j]
    return ConversionPlan(reads, writes, matrix)


def convert_split(
    store: Path,
    out: Path,
    to: str | None = None,
    method: str = "optimal",
    allow_degraded: bool = False,
    retire: bool = False,
    progress: Callable[[int], None] | None = None,
    pipeline: bool = True,
) -> ConvertReport:
    """Split the initial store ``store`` into lambda final codewords in the new folder ``out``."""
    store, out = Path(store), Path(out)
    if is_split_store(out):
        done, family = load_split(out)
        if done.member.source != str(store.resolve()):
            raise ParameterError(f"{out} already holds the split of another store")
        if retire:
            n_i = family.conversion.k_i + family.conversion.r_i
            retire_stores([store], MANIFEST_NAME, [[shard_relpath(i) for i in range(n_i)]])
        return ConvertReport(out, family.conversion.describe(), method, 0, 0, 0, 0, resumed=True)
    manifest, family, code = load_initial(store, to)
    c = family.conversion
    if out.resolve() == store.resolve():
        raise ParameterError(f"out={out} must be a new folder, not the initial store")
    if to is not None and canonical(to, "to") != f"rs:{c.k_f},{c.r_f}":
        raise ParameterError(
            f"to={to!r} does not match the store's family: its final code is rs:{c.k_f},{c.r_f}"
        )
    foreign = needs_reencode([(manifest, family, code)])
    method = "reencode" if foreign else method
    plan = _reencode_plan(family) if method == "reencode" else split_plan(family)
    report = ConvertReport(out, c.describe(), method, len(plan.reads), len(plan.writes), 0, 0)
    if foreign:
        report.notes.append(reencode_note([store], [(manifest, family, code)]))
    member = Member.of(manifest, store).model_copy(update={"file_mode": manifest.file_mode})
    shards, phases = run_plan(
        [store],
        [(manifest, family, code)],
        plan,
        out,
        report,
        allow_degraded,
        progress,
        pipeline,
    )
    result = SplitManifest(
        format=SPLIT_FORMAT,
        code=family.spec,
        stripe_size=manifest.stripe_size,
        member=member,
        shards=shards,
        bytes_read=report.bytes_read,
        bytes_written=report.bytes_written,
    )
    layout = [[(0, u * c.k_f + a) for a in range(c.k_f)] for u in range(c.lambda_f)]
    parity = codewords_parity_matrix(family.parities[1], layout, c.k_i, c.k_i)
    with phases.timed("manifest"):  # ``ec`` reads the result; split.json is the commit point
        size, spec = manifest.stripe_size, family.spec
        ec = codewords_manifest(spec, size, [member], shards, parity, c.r_f, SPLIT_NAME, c.k_i)
        save_manifest(out, ec)
        atomic_write_bytes(out / SPLIT_NAME, result.model_dump_json(indent=1).encode())
    if retire:
        retire_stores([store], MANIFEST_NAME, [[e.path for e in manifest.shards]])
    report.phases = phases.seconds
    return report


def decode_split(
    store: Path,
    output: Path,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Recover the original file; each final codeword decodes from any k_F of its n_F shards.

    An existing ``output`` is replaced only with ``force``; ``progress(n)`` gets bytes decoded.
    """
    store, output = Path(store), Path(output)
    manifest, family = load_split(store)
    check_output(output, force=force)
    c, final = family.conversion, family.final_code()
    member, size = manifest.member, manifest.stripe_size
    digest = hashlib.sha256()
    with atomic_open(output) as out:
        remaining = member.file_size
        for stripe in range(member.stripes):
            length = member_chunk(member, stripe, size, c.k_i)
            data = []
            for u in range(c.lambda_f):
                nodes = list(range(u * c.k_f, (u + 1) * c.k_f))
                nodes += [c.k_i + u * c.r_f + j for j in range(c.r_f)]
                chunks = [
                    read_chunk(
                        store / manifest.shards[i].path,
                        stripe * size,
                        length,
                        manifest.shards[i].crc32[stripe],
                    )
                    for i in nodes
                ]
                if any(chunk is None for chunk in chunks[: c.k_f]):
                    try:
                        chunks = final.reconstruct_data(chunks)
                    except DecodeError as exc:
                        raise DecodeError(
                            f"{store}: stripe {stripe}, codeword {u}: {exc}"
                        ) from None
                data += chunks[: c.k_f]
            part = np.concatenate(data)[: min(remaining, c.k_i * length)]
            digest.update(part)
            out.write(part)
            remaining -= part.size
            if progress:
                progress(part.size)
        if digest.hexdigest() != member.sha256:
            raise DecodeError(f"{store}: decoded file fails its SHA-256")
    return [output]
