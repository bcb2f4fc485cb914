"""Stores of vector (sub-packetized) convertible codes: LRC global merge and piggyback merge.

A layered store holds one shard file per node (``node-XXX/shard-XXX.bin``) and ``layered.json``.
Every shard chunk of a stripe is split into alpha equal layers stored one after the other, and each
layer carries its own CRC-32, so a conversion that reads one layer of a shard verifies exactly what
it read. Chunks are multiples of alpha bytes (the last stripe's data is zero-padded to one).

``LayeredFamily`` is what stores need to know of a vector-code merge, whichever construction it
comes from: both generators, the symbols conversion reads and the matrix applied to them, the
matrix the re-encode anchor applies to all data, which initial nodes the final codeword keeps
(hard links) and which final nodes are new. Specs: ``lrc-cvt:k,g,r,l:K_F,G_F,r,l`` (LRC global
merge, ``convertible.algebra.lrc``) and ``pb-cvt:K_I,R_I:K_F,R_F`` (piggyback,
``convertible.algebra.piggyback``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from redundancy import gf256
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.algebra.lrc import LRCGlobalMerge
from redundancy.convertible.algebra.piggyback import PiggybackMerge
from redundancy.convertible.spec import lrc_name, parse_lrc_spec, parse_rs
from redundancy.convertible.stores.safe_paths import (
    MAX_STRIPE_SIZE,
    check_paths,
    relative_path,
)
from redundancy.convertible.stores.scalar import (
    Member,
    check_members,
    distinct_names,
    member_targets,
    read_manifest,
)
from redundancy.convertible.stores.stripe_io import (
    CountingReader,
    ParityWriter,
    Phases,
    chunk_crc32,
    crc_ok,
)
from redundancy.erasure.manifest import (
    FORMAT,
    MANIFEST_NAME,
    Manifest,
    ShardEntry,
    save_manifest,
    stripe_count,
)
from redundancy.erasure.store import shard_relpath
from redundancy.errors import DecodeError, IntegrityError, ParameterError, check_range
from redundancy.storage_io import atomic_open, atomic_write_bytes
from redundancy.ui import check_output

LAYERED_FORMAT = "redundancy-convertible-layered/1"
LAYERED_NAME = "layered.json"
Symbol = tuple[int, int, int]  # (codeword, node, layer)
_PB_SPEC = re.compile(r"^pb-cvt:(\d+),(\d+):(\d+),(\d+)$")


@dataclass(frozen=True)
class LayeredFamily:
    """A vector-code merge of lam initial codewords into one, as the stores see it."""

    spec: str
    final_spec: str  # what ``--to`` must say: lrc:K_F,L_F,G_F or rs:K_F,R_F
    alpha: int
    lam: int
    k_i: int
    n_i: int
    k_f: int
    n_f: int
    initial_generator: np.ndarray  # (n_I alpha) x (k_I alpha), row node*alpha + layer
    final_generator: np.ndarray  # (n_F alpha) x (k_F alpha)
    reads: tuple[Symbol, ...]
    matrix: np.ndarray  # new final symbols = matrix . read symbols
    reencode_matrix: np.ndarray  # new final symbols = reencode_matrix . all data symbols
    kept: tuple[tuple[int, int, int], ...]  # (codeword, initial node, final node): hard links
    new_nodes: tuple[int, ...]  # final nodes the conversion writes
    tolerated: tuple[int | None, int | None] = (None, None)  # initial, final; None: MDS

    @property
    def units(self) -> Fraction:
        """Shard units the conversion reads."""
        return Fraction(len(self.reads), self.alpha)


def _from_lrc(spec: str, code: LRCGlobalMerge) -> LayeredFamily:
    m, lay, fin = code.merge, code.initial, code.final
    kept = []
    for t in range(m.lam):
        kept += [(t, i, t * lay.k + i) for i in range(lay.k)]
        locals_ = lay.l * lay.groups
        kept += [(t, lay.k + j, fin.k + t * locals_ + j) for j in range(locals_)]
    first_global = fin.k + fin.l * fin.groups
    return LayeredFamily(
        spec=spec,
        final_spec=(
            lrc_name(fin.k, fin.groups, m.g_f)
            if m.l == 1
            else f"LRC (k, g, r, l) = ({fin.k}, {m.g_f}, {m.r}, {m.l}), which lrc:K,L,G cannot name"
        ),
        alpha=code.alpha,
        lam=m.lam,
        k_i=lay.k,
        n_i=lay.n,
        k_f=fin.k,
        n_f=fin.n,
        initial_generator=code.initial_generator,
        final_generator=code.final_generator,
        reads=code.reads,
        matrix=code.matrix,
        reencode_matrix=code.final_globals,
        kept=tuple(kept),
        new_nodes=tuple(range(first_global, fin.n)),
        tolerated=(lay.distance - 1, fin.distance - 1),
    )


def _from_piggyback(spec: str, code: PiggybackMerge) -> LayeredFamily:
    c = code.conversion
    kept = [(t, i, t * c.k_i + i) for t in range(c.lambda_i) for i in range(c.k_i)]
    return LayeredFamily(
        spec=spec,
        final_spec=f"rs:{c.k_f},{c.r_f}",
        alpha=code.alpha,
        lam=c.lambda_i,
        k_i=c.k_i,
        n_i=c.k_i + c.r_i,
        k_f=c.k_f,
        n_f=c.k_f + c.r_f,
        initial_generator=code.initial_generator,
        final_generator=code.final_generator,
        reads=code.reads,
        matrix=code.matrix,
        reencode_matrix=code.targets(),
        kept=tuple(kept),
        new_nodes=tuple(range(c.k_f, c.k_f + c.r_f)),
    )


@cache
def layered_family(spec: str) -> LayeredFamily:
    """Build (and verify) the family a layered store's spec names; searched once per process."""
    spec = spec.strip()
    if spec.startswith("lrc-cvt:"):
        return _from_lrc(spec, LRCGlobalMerge.build(parse_lrc_spec(spec)))
    match = _PB_SPEC.match(spec)
    if not match:
        raise ParameterError(
            f"code spec {spec!r}: expected lrc-cvt:k,g,r,l:K_F,G_F,r,l or pb-cvt:K_I,R_I:K_F,R_F"
        )
    k_i, r_i, k_f, r_f = (int(g) for g in match.groups())
    code = PiggybackMerge.build(Conversion(k_i, r_i, k_f, r_f))
    if not code.verify_mds():
        raise ParameterError(f"{spec}: the piggybacked initial code is not MDS")
    return _from_piggyback(spec, code)


def piggyback_spec(initial: str, final: str) -> str:
    """``rs:6,1`` + ``rs:12,2`` -> ``pb-cvt:6,1:12,2`` (validated by building the family)."""
    k_i, r_i = parse_rs(initial, "code")
    k_f, r_f = parse_rs(final, "to")
    spec = f"pb-cvt:{k_i},{r_i}:{k_f},{r_f}"
    layered_family(spec)
    return spec


class LayeredShard(BaseModel):
    """One shard file and a CRC-32 per stripe per layer."""

    index: int = Field(ge=0, le=255)
    path: str = Field(min_length=1)
    crc32: list[list[int]]

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str) -> str:
        return relative_path(path, "shard path")


class LayeredManifest(BaseModel):
    """``layered.json``: an initial (one member) or final (lam members) store."""

    format: str
    code: str
    stage: Literal["initial", "final"]
    stripe_size: int = Field(gt=0, le=MAX_STRIPE_SIZE)
    stripes: int = Field(ge=0)
    last_chunk: int = Field(ge=0)
    members: list[Member]
    shards: list[LayeredShard]
    bytes_read: int = Field(default=0, ge=0)
    bytes_written: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> LayeredManifest:
        if self.format != LAYERED_FORMAT:
            raise ValueError(f"format {self.format!r} is not {LAYERED_FORMAT!r}")
        if [s.index for s in self.shards] != list(range(len(self.shards))):
            raise ValueError("shards must be listed in index order 0..n-1")
        if any(len(s.crc32) != self.stripes for s in self.shards):
            raise ValueError(f"every shard needs {self.stripes} checksum lists (one per stripe)")
        if self.last_chunk > self.stripe_size or (self.stripes > 0) != (self.last_chunk > 0):
            raise ValueError(
                f"last_chunk={self.last_chunk} must be 1..stripe_size={self.stripe_size} "
                "(0 only for an empty store)"
            )
        return self

    def chunk(self, stripe: int) -> int:
        """Bytes of every shard in ``stripe``."""
        return self.stripe_size if stripe < self.stripes - 1 else self.last_chunk

    @property
    def shard_size(self) -> int:
        """Expected size of every shard file."""
        return 0 if not self.stripes else (self.stripes - 1) * self.stripe_size + self.last_chunk

    def generator(self, family: LayeredFamily) -> tuple[np.ndarray, int, int]:
        """(generator, k, n) of this store's stage."""
        if self.stage == "initial":
            return family.initial_generator, family.k_i, family.n_i
        return family.final_generator, family.k_f, family.n_f

    def ec_manifest(self, family: LayeredFamily) -> Manifest:
        """This store as an ``ec`` store of a vector code (``manifest.json``).

        The node files are its shards, ``parity_matrix`` the stage's parity layer rows with
        ``sub_packetization`` alpha, and each chunk's CRC-32 is combined from its layers' (no
        byte is read). ``ec verify``, ``ec repair`` and ``ec decode`` then read the store.

        Parameters
        ----------
        family
            The store's family (``layered_family(self.code)``).

        Returns
        -------
        Manifest
            Validated (every loss the code claims to survive is checked to decode).

        Examples
        --------
        >>> import numpy as np, tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.bin").write_bytes(bytes(range(200)))
        >>> spec = "pb-cvt:6,1:12,2"
        >>> layered = encode_layered_store(folder / "a.bin", folder / "st", spec, stripe_size=64)
        >>> ec = layered.ec_manifest(layered_family(spec))
        >>> ec.sub_packetization, len(ec.shards), ec.build_code().k
        (2, 7, 6)
        """
        generator, k, _ = self.generator(family)
        alpha = family.alpha
        shards = [
            ShardEntry(
                index=entry.index,
                path=entry.path,
                crc32=[
                    chunk_crc32(layers, self.chunk(stripe) // alpha)
                    for stripe, layers in enumerate(entry.crc32)
                ],
            )
            for entry in self.shards
        ]
        tolerated = family.tolerated[0 if self.stage == "initial" else 1]
        common = {
            "format": FORMAT,
            "code": self.code,
            "file_size": sum(m.file_size for m in self.members),
            "stripe_size": self.stripe_size,
            "stripes": self.stripes,
            "shards": shards,
            "parity_matrix": generator[k * alpha :].tolist(),
            "sub_packetization": alpha if alpha > 1 else None,
            "tolerated_losses": tolerated,
            "companions": [LAYERED_NAME],
        }
        if self.stage == "initial":
            only = self.members[0]
            return Manifest(
                **common, file_name=only.file_name, sha256=only.sha256, file_mode=only.file_mode
            )
        names = distinct_names(self.members)
        entries = [m.entry(family.k_i, name) for m, name in zip(self.members, names, strict=True)]
        return Manifest(**common, members=entries)


def is_layered_store(store: Path) -> bool:
    """Does ``store`` hold a layered convertible store (initial or final)?"""
    return (Path(store) / LAYERED_NAME).is_file()


def load_layered(store: Path) -> tuple[LayeredManifest, LayeredFamily]:
    """Manifest and family of a layered store, cross-checked."""
    path = Path(store) / LAYERED_NAME
    if not path.is_file():
        raise IntegrityError(f"{path}: no layered manifest (is {store} a convertible store?)")
    manifest = read_manifest(path, LayeredManifest, "layered")
    family = layered_family(manifest.code)
    alpha, (_, _, n) = family.alpha, manifest.generator(family)
    members = 1 if manifest.stage == "initial" else family.lam
    if len(manifest.shards) != n or len(manifest.members) != members:
        raise IntegrityError(f"{path}: shard or member count disagrees with {manifest.code}")
    if manifest.stripe_size % alpha or manifest.last_chunk % alpha:
        raise IntegrityError(f"{path}: chunk sizes must be multiples of alpha={alpha}")
    if any(len(c) != alpha for s in manifest.shards for c in s.crc32):
        raise IntegrityError(f"{path}: every stripe of a shard needs {alpha} layer checksums")
    check_members(manifest.members, family.k_i, manifest.stripe_size, str(path))
    if any(m.stripes != manifest.stripes for m in manifest.members):
        raise IntegrityError(
            f"{path}: every member must span the store's {manifest.stripes} stripes"
        )
    check_paths(Path(store), [s.path for s in manifest.shards], str(path))
    return manifest, family


PAGE = 4096  # layered stripes are a multiple of alpha pages by default


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def encode_layered_store(
    source: Path,
    store: Path,
    spec: str,
    stripe_size: int = 0,
    progress: Callable[[int], None] | None = None,
) -> LayeredManifest:
    """Encode ``source`` with the initial code of ``spec``.

    ``stripe_size`` 0 picks about 1 MiB, a multiple of alpha pages, so every layer of a chunk
    is page-aligned (the GF(2^8) kernel runs markedly slower on unaligned rows). ``progress(n)``
    is called with the bytes encoded after every stripe.
    """
    source, store = Path(source), Path(store)
    family = layered_family(spec)
    alpha, k, n = family.alpha, family.k_i, family.n_i
    unit = alpha * PAGE
    stripe_size = stripe_size or unit * max(1, (1 << 20) // unit)
    check_range("stripe_size", stripe_size, alpha, MAX_STRIPE_SIZE)
    if stripe_size % alpha:
        raise ParameterError(f"stripe_size={stripe_size} must be a multiple of alpha={alpha}")
    if not source.is_file():
        raise ParameterError(f"{source}: no such file")
    if any((store / name).exists() for name in (LAYERED_NAME, MANIFEST_NAME, "convertible.json")):
        raise ParameterError(f"{store} already holds a store; choose an empty folder")
    size = source.stat().st_size
    stripes = stripe_count(size, k, stripe_size)
    last = 0
    digest = hashlib.sha256()
    with ExitStack() as stack, source.open("rb") as reader:
        handles = [stack.enter_context(atomic_open(store / shard_relpath(i))) for i in range(n)]
        writer = ParityWriter(handles, alpha, Phases())
        remaining = size
        for stripe in range(stripes):
            take = min(remaining, k * stripe_size)
            last = stripe_size if stripe < stripes - 1 else _round_up(-(-take // k), alpha)
            data = np.zeros((k, last), dtype=np.uint8)
            if reader.readinto(memoryview(data.reshape(-1))[:take]) != take:
                raise ParameterError(f"{source}: file changed size while being encoded")
            digest.update(memoryview(data.reshape(-1))[:take])
            remaining -= take
            coded = gf256.matmul(family.initial_generator, data.reshape(k * alpha, -1))
            writer.write(list(coded.reshape(n, -1)))
            if progress:
                progress(take)
    member = Member(
        file_name=source.name,
        file_size=size,
        sha256=digest.hexdigest(),
        stripes=stripes,
        source="",
        file_mode=source.stat().st_mode & 0o777,
    )
    manifest = LayeredManifest(
        format=LAYERED_FORMAT,
        code=family.spec,
        stage="initial",
        stripe_size=stripe_size,
        stripes=stripes,
        last_chunk=last,
        members=[member],
        shards=[
            LayeredShard(index=i, path=shard_relpath(i), crc32=writer.crc32[i]) for i in range(n)
        ],
    )
    save_manifest(store, manifest.ec_manifest(family))  # what `ec` reads; layered.json commits
    atomic_write_bytes(store / LAYERED_NAME, manifest.model_dump_json(indent=1).encode())
    return manifest


def read_node(
    counter: CountingReader, store: Path, manifest: LayeredManifest, node: int, stripe: int
) -> tuple[np.ndarray, list[bool]]:
    """One node's chunk of ``stripe`` as (alpha, L / alpha) layers, and which layers are good."""
    alpha = len(manifest.shards[node].crc32[stripe])
    buf = np.empty((alpha, manifest.chunk(stripe) // alpha), np.uint8)
    entry = manifest.shards[node]
    if not counter.read_into(store / entry.path, stripe * manifest.stripe_size, buf.reshape(-1)):
        return buf, [False] * alpha
    return buf, [crc_ok(counter.phases, buf[a], entry.crc32[stripe][a]) for a in range(alpha)]


def solve(generator: np.ndarray, alpha: int, have: dict, want: list[int], where: str) -> np.ndarray:
    """Rows ``want`` of the codeword from the good symbols in ``have`` {(node, layer): values}."""
    rows = [node * alpha + a for node, a in have]
    try:
        matrix = gf256.left_solve(generator[want], generator[rows])
    except DecodeError:
        raise DecodeError(f"{where}: too few good shards left to rebuild the lost layers") from None
    return gf256.matmul(matrix, list(have.values()))


def _stripe_data(
    counter: CountingReader,
    store: Path,
    manifest: LayeredManifest,
    family: LayeredFamily,
    stripe: int,
) -> np.ndarray:
    """All data shards of ``stripe`` (k, L); degraded decoding if some layer is lost."""
    generator, k, n = manifest.generator(family)
    alpha = family.alpha
    have, lost = {}, False
    for node in range(n):
        if node >= k and not lost:
            break
        layers, good = read_node(counter, store, manifest, node, stripe)
        lost |= not all(good)
        have.update({(node, a): layers[a] for a in range(alpha) if good[a]})
    if not lost:
        return np.stack([np.concatenate([have[i, a] for a in range(alpha)]) for i in range(k)])
    rows = solve(generator, alpha, have, list(range(k * alpha)), f"{store} stripe {stripe}")
    return rows.reshape(k, -1)


def decode_layered(
    store: Path,
    output: Path,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Recover an initial store's file (into ``output``) or a final store's members (folder).

    Existing files are replaced only with ``force``; ``progress(n)`` gets the bytes decoded.
    """
    store, output = Path(store), Path(output)
    manifest, family = load_layered(store)
    if manifest.stage == "initial":
        check_output(output, force=force)
        targets = [output]
    else:
        targets = member_targets(manifest.members, output, force)
    counter = CountingReader(Phases())
    k = family.k_i
    with ExitStack() as stack:
        stack.callback(counter.close)
        outs = [stack.enter_context(atomic_open(t)) for t in targets]
        digests = [hashlib.sha256() for _ in targets]
        remaining = [m.file_size for m in manifest.members]
        for stripe in range(manifest.stripes):
            data = _stripe_data(counter, store, manifest, family, stripe)
            for t in range(len(targets)):
                part = data[t * k : (t + 1) * k].reshape(-1)[: remaining[t]]
                digests[t].update(part)
                outs[t].write(part)
                remaining[t] -= part.size
                if progress:
                    progress(part.size)
        for member, digest in zip(manifest.members, digests, strict=True):
            if digest.hexdigest() != member.sha256:
                raise DecodeError(f"{store}: member {member.file_name} fails its SHA-256")
    return targets
