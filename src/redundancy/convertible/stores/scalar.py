"""Convertible stores on disk: the initial stores (``ec`` manifest format) and merged stores.

An initial store is exactly what ``redundancy ec encode`` writes (same manifest.json, shard paths
and per-stripe CRC-32s); its code spec is ``grs:K_I,R_I:K_F,R_F`` and its ``parity_matrix`` field
holds the initial code's parity rows, so ``redundancy ec`` reads it. The initial code depends on
(K_I, R_I) only, so the target recorded at encode is a default: ``load_initial(store, to)``
converts to any target. A merged store holds the member files: its data shards are hard links to
the members' data shards (stable conversion: data is never read nor moved), its parities are new;
``manifest.json`` is an ``ec`` manifest with ``members`` (each file on its consecutive data shards)
and the final code's ``parity_matrix``, so ``ec verify/repair/decode`` read it and a later
conversion takes it as input (chained conversions), and ``convertible.json`` (the commit point)
records the conversion. Shards of shorter members count as zeros past their end.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from redundancy import gf256
from redundancy.convertible.algebra.access import ConvertibleFamily
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.spec import parse_rs, parse_spec
from redundancy.convertible.stores.safe_paths import (
    MAX_STRIPE_SIZE,
    check_paths,
    plain_name,
    relative_path,
)
from redundancy.erasure import store as ec_store
from redundancy.erasure.codes import LinearCode
from redundancy.erasure.manifest import (
    FORMAT,
    MANIFEST_NAME,
    Manifest,
    MemberEntry,
    ShardEntry,
    load_manifest,
    save_manifest,
    stripe_count,
)
from redundancy.errors import DecodeError, IntegrityError, ParameterError, check_range
from redundancy.storage_io import atomic_open, atomic_write_bytes
from redundancy.ui import check_output

MERGED_FORMAT = "redundancy-convertible/1"
MERGED_NAME = "convertible.json"


# --------------------------------------------------------------------------- initial stores
def encode_store(
    source: Path,
    store: Path,
    spec: str = "grs:10,4:20,4",
    stripe_size: int = 1 << 20,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Encode ``source`` with the family's initial code into an ``ec``-format store.

    ``progress(n)`` is called with the bytes of ``source`` encoded after every stripe.
    """
    source, store = Path(source), Path(store)
    code = parse_spec(spec).initial_code()
    check_range("stripe_size", stripe_size, 1, MAX_STRIPE_SIZE)
    if not source.is_file():
        raise ParameterError(f"{source}: no such file")
    if (store / MANIFEST_NAME).exists() or (store / MERGED_NAME).exists():
        raise ParameterError(f"{store} already holds a store; choose an empty folder")
    size = source.stat().st_size
    stripes = stripe_count(size, code.k, stripe_size)
    sums: list[list[int]] = [[] for _ in range(code.n)]
    digest = hashlib.sha256()
    with ExitStack() as stack, source.open("rb") as reader:
        outs = [
            stack.enter_context(atomic_open(store / ec_store.shard_relpath(i)))
            for i in range(code.n)
        ]
        remaining = size
        for stripe in range(stripes):
            take = min(remaining, code.k * stripe_size)
            chunk = stripe_size if stripe < stripes - 1 else -(-take // code.k)
            data = np.zeros((code.k, chunk), dtype=np.uint8)
            if reader.readinto(memoryview(data.reshape(-1))[:take]) != take:
                raise ParameterError(f"{source}: file changed size while being encoded")
            digest.update(memoryview(data.reshape(-1))[:take])
            remaining -= take
            for i, row in enumerate(np.vstack([data, gf256.matmul(code.parity_matrix, data)])):
                outs[i].write(row)
                sums[i].append(zlib.crc32(row))
            if progress:
                progress(take)
    manifest = Manifest(
        format=FORMAT,
        code=spec,
        file_name=source.name,
        file_size=size,
        stripe_size=stripe_size,
        stripes=stripes,
        sha256=digest.hexdigest(),
        shards=[
            ShardEntry(index=i, path=ec_store.shard_relpath(i), crc32=sums[i])
            for i in range(code.n)
        ],
        parity_matrix=code.parity_matrix.tolist(),
    )
    save_manifest(store, manifest)
    return manifest


def load_initial(
    store: Path, to: str | None = None
) -> tuple[Manifest, ConvertibleFamily, LinearCode]:
    """Manifest, family and code of a store to convert, cross-checked.

    Parameters
    ----------
    store : Path
        An initial store (``convert encode``) or a merged store (``convert run``) whose code is
        the base GRS code of its shape (every merge that keeps r; chained conversions).
    to : str, optional
        The target ``rs:K,M`` chosen now; default: the target recorded at encode (a merged store
        has none left and needs one). Stores of the older ``cvt:`` family keep their target.

    Returns
    -------
    tuple
        (manifest, family converting the store's code to the target, the store's code).

    Raises
    ------
    ParameterError
        The store's code is not convertible, no target is named for a merged store, or the
        target cannot be built.
    IntegrityError
        The manifest is inconsistent (shard count, stripes, paths, a parity matrix that is not
        the code its spec names).
    """
    manifest = load_manifest(Path(store))
    if is_ec_rs_store(manifest):
        return _ec_rs_store(Path(store), manifest, to)
    if not manifest.code.startswith(("grs:", "cvt:")):
        raise ParameterError(
            f"{store}: written with {manifest.code!r}, which no conversion reads; convertible "
            "are stores of `redundancy convert encode` and `redundancy ec encode --code rs:K,M` "
            "(re-encoded); decode it and encode it again"
        )
    recorded = parse_spec(manifest.code)
    stored = (
        manifest.build_code() if manifest.parity_matrix is not None else recorded.initial_code()
    )
    family = _family_for(store, manifest, recorded, stored, to)
    code = family.initial_code()
    if not np.array_equal(code.generator, stored.generator):
        if manifest.members is None:
            raise IntegrityError(
                f"{store}/{MANIFEST_NAME}: parity_matrix is not the initial code of {manifest.code}"
            )
        raise ParameterError(
            f"{store}: its code rs:{stored.k},{stored.m} came from a conversion that lowered r "
            f"({manifest.code}), so it is not the base GRS code {family.spec} starts from; "
            "decode and re-encode it"
        )
    if len(manifest.shards) != code.n:
        raise IntegrityError(f"{store}: {len(manifest.shards)} shards listed, code has n={code.n}")
    if manifest.stripe_size > MAX_STRIPE_SIZE:
        raise IntegrityError(
            f"{store}: stripe_size={manifest.stripe_size} is absurd (at most {MAX_STRIPE_SIZE})"
        )
    if manifest.members is not None:
        manifest.build_code(code)  # member sizes, stripes and checksum counts
    elif stripe_count(manifest.file_size, code.k, manifest.stripe_size) != manifest.stripes:
        raise IntegrityError(f"{store}: stripe count disagrees with file_size and stripe_size")
    check_paths(Path(store), [s.path for s in manifest.shards], f"{store}/{MANIFEST_NAME}")
    return manifest, family, code


def is_ec_rs_store(manifest: Manifest) -> bool:
    """Was the store written by ``redundancy ec encode --code rs:K,M`` (or ``rs-vand:K,M``)?

    Such a store's generator is ISA-L's Cauchy (or a Vandermonde) matrix, not the GRS base code
    conversions start from: its parities cannot be reused, so it converts only by reading every
    data shard and encoding the target's parities (``needs_reencode``), and the result is a
    normal convertible store (cheap to convert again).

    Parameters
    ----------
    manifest
        A validated ``ec`` manifest.

    Returns
    -------
    bool
        True for an ``rs:`` or ``rs-vand:`` store without a ``parity_matrix``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> is_ec_rs_store(SimpleNamespace(code="rs:6,3", parity_matrix=None))
    True
    >>> is_ec_rs_store(SimpleNamespace(code="grs:6,3:12,3", parity_matrix=[[1]]))
    False
    """
    return manifest.parity_matrix is None and manifest.code.startswith(("rs:", "rs-vand:"))


def needs_reencode(loaded: Sequence[tuple[Manifest, ConvertibleFamily, LinearCode]]) -> bool:
    """Must a conversion of these stores read all data (a store's code is not the family's)?

    Parameters
    ----------
    loaded
        ``load_initial`` of each store.

    Returns
    -------
    bool
        True when some store's generator differs from its family's initial code (an
        ``ec encode`` store, see ``is_ec_rs_store``).

    Examples
    --------
    >>> needs_reencode([])
    False
    """
    return any(
        not np.array_equal(code.generator, family.initial_code().generator)
        for _, family, code in loaded
    )


REENCODE_NOTE = (
    "read every data shard: {stores} written by `ec encode` ({codes}), whose parities are not "
    "those of the convertible base code; the result is a convertible store, cheap to convert again"
)


def reencode_note(
    stores: Sequence[Path], loaded: Sequence[tuple[Manifest, ConvertibleFamily, LinearCode]]
) -> str:
    """The one line a conversion that had to re-encode reports (``REENCODE_NOTE``).

    Parameters
    ----------
    stores
        The stores converted.
    loaded
        ``load_initial`` of each.

    Returns
    -------
    str
        Which stores forced reading all data, and why.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> reencode_note([Path("a")], [(SimpleNamespace(code="rs:6,3", parity_matrix=None), 0, 0)])
    ... # doctest: +ELLIPSIS
    'read every data shard: a written by `ec encode` (rs:6,3), whose parities are not ...'
    """
    foreign = [
        (s, m.code) for s, (m, _, _) in zip(stores, loaded, strict=True) if is_ec_rs_store(m)
    ]
    names = ", ".join(str(s) for s, _ in foreign)
    codes = ", ".join(sorted({code for _, code in foreign}))
    return REENCODE_NOTE.format(stores=names, codes=codes)


def _ec_rs_store(
    store: Path, manifest: Manifest, to: str | None
) -> tuple[Manifest, ConvertibleFamily, LinearCode]:
    """``load_initial`` of an ``ec encode`` Reed-Solomon store: its own code, and the GRS
    family from its shape to ``to`` (which must be named: ``ec`` records no target)."""
    code = manifest.build_code()
    if manifest.nodes is not None:
        raise ParameterError(
            f"{store} is spread over {len(manifest.nodes)} node roots; conversions read stores "
            "in one folder: decode it and encode it again"
        )
    if to is None:
        raise ParameterError(
            f"{store} was written by `ec encode` ({manifest.code}), which records no target; "
            f"name the final code with --to (to=), e.g. rs:{2 * code.k},{code.m}"
        )
    k_f, r_f = parse_rs(to, "to")
    family = ConvertibleFamily.build(Conversion(code.k, code.m, k_f, r_f), "grs")
    check_paths(store, [s.path for s in manifest.shards], f"{store}/{MANIFEST_NAME}")
    return manifest, family, code


def _family_for(
    store: Path,
    manifest: Manifest,
    recorded: ConvertibleFamily,
    stored: LinearCode,
    to: str | None,
) -> ConvertibleFamily:
    """The family from the store's code (k, r) to ``to`` (default: the recorded target)."""
    c = recorded.conversion
    merged = (stored.k, stored.m) != (c.k_i, c.r_i)
    if to is None:
        if merged:
            raise ParameterError(
                f"{store} holds the result of {c.describe()} (rs:{stored.k},{stored.m}); name "
                "the next code with --to (to=)"
            )
        return recorded
    k_f, r_f = parse_rs(to, "to")
    if recorded.construction == "cvt":
        if (k_f, r_f) != (c.k_f, c.r_f) or merged:
            raise ParameterError(
                f"to={to!r}: {store} was written with the older searched family {manifest.code}, "
                f"whose target rs:{c.k_f},{c.r_f} was fixed at encode"
            )
        return recorded
    return ConvertibleFamily.build(Conversion(stored.k, stored.m, k_f, r_f), "grs")


def decode_initial(store: Path, output: Path, force: bool = False) -> Manifest:
    """Recover an initial store's file (any k_I good shards per stripe; SHA-256 checked).

    Refuses to replace an existing ``output`` unless ``force``.
    """
    manifest = load_manifest(Path(store))
    code = manifest.build_code() if is_ec_rs_store(manifest) else load_initial(Path(store))[2]
    check_output(Path(output), force=force)
    return ec_store.decode_store(store, output, code=code)


# --------------------------------------------------------------------------- merged stores
ModelT = TypeVar("ModelT", bound=BaseModel)


class Member(BaseModel):
    """One initial file inside a merged store (on ``data_shards`` data shards; default k_I)."""

    file_name: str
    file_size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    stripes: int = Field(ge=0)
    source: str
    data_shards: int | None = Field(default=None, ge=1, le=255)
    file_mode: int | None = Field(default=None, ge=0, le=0o7777)

    @field_validator("file_name")
    @classmethod
    def _plain(cls, name: str) -> str:
        return plain_name(name, "member file name")

    @classmethod
    def of(cls, manifest: Manifest, store: Path) -> Member:
        """The member an initial store's manifest describes (its file, stored in ``store``)."""
        try:
            return cls(
                file_name=manifest.file_name,
                file_size=manifest.file_size,
                sha256=manifest.sha256,
                stripes=manifest.stripes,
                source=str(Path(store).resolve()),
            )
        except ValidationError as exc:
            message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise IntegrityError(f"{store}/{MANIFEST_NAME}: {message}") from None

    @classmethod
    def all_of(cls, manifest: Manifest, store: Path) -> list[Member]:
        """The files a store to merge holds: its one file, or every member of a merged store."""
        if manifest.members is None:
            return [cls.of(manifest, store).model_copy(update={"file_mode": manifest.file_mode})]
        return [
            cls(
                file_name=m.file_name,
                file_size=m.file_size,
                sha256=m.sha256,
                stripes=m.stripes,
                source=str(Path(store).resolve()),
                data_shards=m.data_shards,
                file_mode=m.file_mode,
            )
            for m in manifest.members
        ]

    def entry(self, k: int, name: str | None = None) -> MemberEntry:
        """This member as an ``ec`` manifest member (``k``: data shards when not recorded)."""
        return MemberEntry(
            file_name=name or self.file_name,
            file_size=self.file_size,
            file_mode=self.file_mode,
            sha256=self.sha256,
            stripes=self.stripes,
            data_shards=self.data_shards or k,
        )


def distinct_names(members: list[Member]) -> list[str]:
    """Member names as decoded: recorded names, or ``t-name`` for all when two collide.

    Parameters
    ----------
    members
        The members of a store, in order.

    Returns
    -------
    list of str
        One plain name per member.

    Examples
    --------
    >>> same = Member(file_name="a.bin", file_size=0, sha256="0" * 64, stripes=0, source="")
    >>> distinct_names([same, same])
    ['0-a.bin', '1-a.bin']
    """
    names = [m.file_name for m in members]
    if len(set(names)) != len(names):
        names = [f"{t}-{name}" for t, name in enumerate(names)]
    return names


def codewords_parity_matrix(
    parity: np.ndarray, layout: Sequence[Sequence[tuple[int, int]]], k_i: int, data_shards: int
) -> np.ndarray:
    """Parity rows of a store holding several final codewords side by side (split, general).

    Final codeword u's data are the store's data shards ``layout[u]`` (as (initial codeword t,
    shard i), i.e. store data shard t k_I + i); its parity j, the store's parity shard
    u r + j, is ``parity[j]`` over them. The code is not MDS: it decodes when no codeword loses
    more than r shards.

    Parameters
    ----------
    parity
        The final code's r x k_F parity rows.
    layout
        Each final codeword's data positions, in order.
    k_i
        Data shards per initial codeword.
    data_shards
        Data shards of the store.

    Returns
    -------
    numpy.ndarray
        The (len(layout) r) x data_shards parity matrix.

    Examples
    --------
    >>> import numpy as np
    >>> codewords_parity_matrix(np.array([[1, 2]]), [[(0, 0), (0, 1)], [(0, 2), (0, 3)]], 4, 4)
    array([[1, 2, 0, 0],
           [0, 0, 1, 2]], dtype=uint8)
    """
    r = parity.shape[0]
    rows = np.zeros((len(layout) * r, data_shards), dtype=np.uint8)
    for u, shards in enumerate(layout):
        for j in range(r):
            for position, (t, i) in enumerate(shards):
                rows[u * r + j, t * k_i + i] = parity[j, position]
    return rows


def codewords_manifest(
    code: str,
    stripe_size: int,
    members: list[Member],
    shards: list[ShardEntry],
    parity_rows: np.ndarray,
    tolerated: int,
    companion: str,
    k_i: int,
) -> Manifest:
    """The ``ec`` manifest of a split or general-regime result (several codewords in one store).

    Parameters
    ----------
    code
        The family spec, recorded as the code's name.
    stripe_size
        Bytes of a shard per stripe.
    members
        The files the store holds (one: a one-file manifest; several: ``members``).
    shards
        Data shards then parities, with their CRC-32s.
    parity_rows
        ``codewords_parity_matrix`` of the store.
    tolerated
        Lost shards every pattern of which decodes (the final code's r).
    companion
        The conversion's own record beside the manifest (not a stray file for ``ec verify``).
    k_i
        Data shards per member.

    Returns
    -------
    Manifest
        Validated (the parity rows are checked to tolerate ``tolerated`` losses).

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.erasure.manifest import ShardEntry
    >>> member = Member(file_name="a.bin", file_size=2, sha256="0" * 64, stripes=1, source="")
    >>> shards = [ShardEntry(index=i, path=f"s{i}", crc32=[0]) for i in range(4)]
    >>> rows = codewords_parity_matrix(np.array([[1]]), [[(0, 0)], [(0, 1)]], 2, 2)
    >>> codewords_manifest("x", 8, [member], shards, rows, 1, "x.json", 2).tolerated_losses
    1
    """
    common = {
        "format": FORMAT,
        "code": code,
        "file_size": sum(m.file_size for m in members),
        "stripe_size": stripe_size,
        "stripes": max(m.stripes for m in members),
        "shards": shards,
        "parity_matrix": parity_rows.tolist(),
        "tolerated_losses": tolerated,
        "companions": [companion],
    }
    if len(members) == 1:
        only = members[0]
        return Manifest(
            **common, file_name=only.file_name, sha256=only.sha256, file_mode=only.file_mode
        )
    names = distinct_names(members)
    entries = [m.entry(k_i, name) for m, name in zip(members, names, strict=True)]
    return Manifest(**common, members=entries)


def read_manifest(path: Path, model: type[ModelT], what: str) -> ModelT:
    """Parse and validate a JSON manifest; a one-line IntegrityError names the file and field."""
    try:
        return model.model_validate(json.loads(path.read_bytes()))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "manifest"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise IntegrityError(f"{path}: invalid {what} manifest at {field}: {message}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise IntegrityError(f"{path}: unreadable {what} manifest ({reason})") from None


class ConvertedManifest(BaseModel):
    """What every scalar conversion writes: format, family, shards with checksums, bytes moved."""

    format: str
    code: str
    stripe_size: int = Field(gt=0, le=MAX_STRIPE_SIZE)
    shards: list[ShardEntry]
    bytes_read: int = Field(ge=0)
    bytes_written: int = Field(ge=0)

    @field_validator("shards")
    @classmethod
    def _safe_paths(cls, shards: list[ShardEntry]) -> list[ShardEntry]:
        for shard in shards:
            relative_path(shard.path, "shard path")
        return shards


class MergedManifest(ConvertedManifest):
    """What ``convert run`` wrote for a merge: also the members, in order, and the stores merged
    (``inputs``; absent in stores written before chained conversions: the members' sources)."""

    stripes: int = Field(ge=0)
    members: list[Member]
    inputs: list[str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MergedManifest:
        if self.format != MERGED_FORMAT:
            raise ValueError(f"format {self.format!r} is not {MERGED_FORMAT!r}")
        if [s.index for s in self.shards] != list(range(len(self.shards))):
            raise ValueError("shards must be listed in index order 0..n-1")
        check_stripes(self.shards, self.members, self.stripes)
        return self


def check_stripes(shards: list[ShardEntry], members: list[Member], stripes: int) -> None:
    """No shard has more checksums, and no member more stripes, than the store (ValueError)."""
    if any(len(s.crc32) > stripes for s in shards):
        raise ValueError(f"a shard lists more checksums than the store's {stripes} stripes")
    if any(m.stripes > stripes for m in members):
        raise ValueError(f"a member has more stripes than the store's {stripes}")


def check_checksums(
    shards: list[ShardEntry], members: list[Member], k: int, stripes: int, where: str
) -> None:
    """A member's data shards (k each unless it records ``data_shards``) have one CRC-32 per
    stripe of that member; the others one per stripe of the store."""
    owners = [m for m in members for _ in range(m.data_shards or k)]
    for index, shard in enumerate(shards):
        expected = owners[index].stripes if index < len(owners) else stripes
        if len(shard.crc32) != expected:
            raise IntegrityError(
                f"{where}: shard {index} lists {len(shard.crc32)} checksums, expected {expected}"
            )


def check_members(members: list[Member], k: int, stripe_size: int, where: str) -> None:
    """Each member's stripe count must follow from its size (else IntegrityError)."""
    for member in members:
        needed = stripe_count(member.file_size, member.data_shards or k, stripe_size)
        if needed != member.stripes:
            raise IntegrityError(
                f"{where}: member {member.file_name!r} declares {member.stripes} stripes, its "
                f"file_size={member.file_size} needs {needed}"
            )


def member_chunk(member: Member, stripe: int, stripe_size: int, k: int) -> int:
    """Bytes of each of ``member``'s data shards in ``stripe`` (0 past its last stripe)."""
    if stripe >= member.stripes:
        return 0
    if stripe < member.stripes - 1:
        return stripe_size
    return -(-(member.file_size - (member.stripes - 1) * k * stripe_size) // k)


def load_merged(store: Path) -> tuple[MergedManifest, ConvertibleFamily]:
    """Read and validate ``convertible.json``."""
    path = Path(store) / MERGED_NAME
    if not path.is_file():
        raise IntegrityError(f"{path}: no merged manifest (is {store} a converted store?)")
    merged = read_manifest(path, MergedManifest, "merged")
    family = parse_spec(merged.code)
    c = family.conversion
    data = sum(m.data_shards or c.k_i for m in merged.members)
    if data != c.k_f or len(merged.shards) != c.k_f + c.r_f:
        raise IntegrityError(f"{path}: member or shard count disagrees with {merged.code}")
    flattened = any(m.data_shards is not None for m in merged.members)
    if (flattened or len(merged.members) != c.lambda_i) and not (
        Path(store) / MANIFEST_NAME
    ).is_file():
        raise IntegrityError(f"{path}: members of several shard counts need its {MANIFEST_NAME}")
    check_members(merged.members, c.k_i, merged.stripe_size, str(path))
    if merged.stripes != max(m.stripes for m in merged.members):
        raise IntegrityError(f"{path}: stripes={merged.stripes} disagrees with its members")
    check_checksums(merged.shards, merged.members, c.k_i, merged.stripes, str(path))
    check_paths(Path(store), [s.path for s in merged.shards], str(path))
    return merged, family


def save_merged(store: Path, merged: MergedManifest) -> None:
    """Write ``convertible.json`` atomically (the commit point of a conversion)."""
    atomic_write_bytes(Path(store) / MERGED_NAME, merged.model_dump_json(indent=1).encode())


def read_chunk(path: Path, offset: int, length: int, crc: int) -> np.ndarray | None:
    """A stripe chunk of a shard file, or None if missing, short or failing its CRC-32.

    The file's size is checked first, so a manifest declaring huge chunks allocates nothing.
    """
    if not path.is_file() or path.stat().st_size < offset + length:
        return None
    with path.open("rb") as handle:
        handle.seek(offset)
        raw = handle.read(length)
    if len(raw) != length or zlib.crc32(raw) != crc:
        return None
    return np.frombuffer(raw, dtype=np.uint8)


def member_targets(members: list[Member], out_dir: Path, force: bool) -> list[Path]:
    """Where each member is decoded: ``out_dir/file_name`` (``t-file_name`` on a clash).

    Raises ParameterError if ``out_dir`` is a file or a target exists and ``force`` is false.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"{out_dir} is a file; a store of several files decodes into a folder")
    names = [plain_name(m.file_name, "member file name") for m in members]
    if len(set(names)) != len(names):
        names = [f"{t}-{name}" for t, name in enumerate(names)]
    targets = [out_dir / name for name in names]
    for target in targets:
        check_output(target, force=force)
    return targets


def decode_merged(
    store: Path,
    out_dir: Path,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Recover every member file of a merged store into ``out_dir`` (SHA-256 checked).

    Existing files are replaced only with ``force``; ``progress(n)`` gets the bytes decoded.
    """
    store, out_dir = Path(store), Path(out_dir)
    merged, family = load_merged(store)
    code, c = family.final_code(), family.conversion
    outputs = member_targets(merged.members, out_dir, force)
    if (store / MANIFEST_NAME).is_file():  # the ec manifest (members, parity_matrix) decodes it
        return _decode_ec_members(store, merged, out_dir, force, progress)
    for t, (member, target) in enumerate(zip(merged.members, outputs, strict=True)):
        digest = hashlib.sha256()
        with atomic_open(target) as out:
            remaining = member.file_size
            for stripe in range(member.stripes):
                length = member_chunk(member, stripe, merged.stripe_size, c.k_i)
                offset = stripe * merged.stripe_size
                entries = merged.shards[t * c.k_i : (t + 1) * c.k_i]
                chunks = [
                    read_chunk(store / e.path, offset, length, e.crc32[stripe]) for e in entries
                ]
                if any(chunk is None for chunk in chunks):
                    chunks = _degraded_stripe(store, merged, code, stripe)[t]
                data = np.concatenate(chunks)[: min(remaining, c.k_i * length)]
                digest.update(data)
                out.write(data)
                remaining -= data.size
                if progress:
                    progress(data.size)
            if digest.hexdigest() != member.sha256:
                raise DecodeError(f"{store}: member {member.file_name} fails its SHA-256")
    return outputs


def _decode_ec_members(
    store: Path,
    merged: MergedManifest,
    out_dir: Path,
    force: bool,
    progress: Callable[[int], None] | None,
) -> list[Path]:
    """Decode every member through the store's ``ec`` manifest, checked against ``merged``."""
    manifest = load_manifest(store)
    names = [m.file_name for m in manifest.members or []]
    ours = [m.sha256 for m in merged.members]
    if manifest.members is None or [m.sha256 for m in manifest.members] != ours:
        raise IntegrityError(f"{store}: {MANIFEST_NAME} and {MERGED_NAME} list other members")
    check_paths(store, [s.path for s in manifest.shards], f"{store}/{MANIFEST_NAME}")
    out_dir.mkdir(parents=True, exist_ok=True)
    ec_store.decode_store(store, out_dir, progress, force=force)
    return [out_dir / name for name in names]


def _degraded_stripe(
    store: Path, merged: MergedManifest, code: LinearCode, stripe: int
) -> list[list[np.ndarray]]:
    """Decode one stripe with the final code from whatever good shards remain."""
    c = parse_spec(merged.code).conversion
    lengths = [member_chunk(m, stripe, merged.stripe_size, c.k_i) for m in merged.members]
    width = max(lengths)
    offset = stripe * merged.stripe_size
    shards: list[np.ndarray | None] = []
    for index, entry in enumerate(merged.shards):
        length = lengths[index // c.k_i] if index < c.k_f else width
        chunk = (
            np.zeros(0, np.uint8)
            if length == 0
            else read_chunk(store / entry.path, offset, length, entry.crc32[stripe])
        )
        shards.append(None if chunk is None else np.pad(chunk, (0, width - length)))
    try:
        full = code.reconstruct_data(shards)
    except DecodeError as exc:
        raise DecodeError(f"{store}: stripe {stripe}: {exc}") from None
    return [[full[t * c.k_i + i][: lengths[t]] for i in range(c.k_i)] for t in range(c.lambda_i)]


def decode_any(store: Path, output: Path, force: bool = False) -> list[Path]:
    """Decode an initial store into the file ``output`` or a merged store into folder ``output``."""
    store = Path(store)
    if (store / MERGED_NAME).is_file():
        return decode_merged(store, output, force)
    decode_initial(store, output, force)
    return [Path(output)]
