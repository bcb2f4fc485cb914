"""The manifest of an erasure-coded file store: validated before any shard is trusted.

A manifest is untrusted input (a store can come from anywhere). Before anything is read or
written because of it, every name in it is checked to be a plain relative name that stays inside
its root (``check_name``, ``check_relpath``), shard paths must be distinct, and every size must be
bounded and consistent with the others (``Manifest.build_code`` adds the checks that need the code).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from functools import lru_cache
from itertools import combinations
from math import comb
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from redundancy import gf256
from redundancy.erasure.codes import CODE_VERSIONS, MAX_SHARDS, LinearCode, parse_code
from redundancy.erasure.location import StoreLocation, check_name, check_relpath
from redundancy.erasure.nodes import check_recorded_root
from redundancy.erasure.vector import MAX_LAYERS, VectorCode
from redundancy.errors import IntegrityError

FORMAT = "redundancy-ec/1"
MANIFEST_NAME = "manifest.json"
MAX_STRIPE_SIZE = 1 << 30  # bytes of one shard per stripe (what `ec encode` accepts)
MAX_FILE_SIZE = 1 << 50  # 1 PiB: a declared size beyond this is refused before any work
MAX_MANIFEST_BYTES = 256 << 20  # a 1 PiB file at 1 GiB stripes needs about 100 MiB of checksums
CRC32_MAX = 0xFFFF_FFFF
MDS_CHECK_LIMIT = 3_000  # square submatrices of a stored parity_matrix checked one by one
LOSS_CHECK_LIMIT = 3_000  # loss patterns of a non-MDS or vector parity_matrix checked by rank

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "MAX_FILE_SIZE",
    "MAX_STRIPE_SIZE",
    "Manifest",
    "MemberEntry",
    "ShardEntry",
    "check_name",
    "check_relpath",
    "load_manifest",
    "save_manifest",
    "stripe_count",
]


class ShardEntry(BaseModel):
    """One shard file: where it lives (a plain relative path) and a CRC-32 per stripe chunk."""

    model_config = ConfigDict(strict=True)

    index: int = Field(ge=0, le=255)
    path: str
    crc32: list[int]
    node: int | None = Field(default=None, ge=0, le=255)

    @model_validator(mode="after")
    def _plain_path(self) -> ShardEntry:
        check_relpath(self.path, f"shard {self.index} path")
        if any(part.startswith(".") for part in self.path.split("/")):
            # Hidden names are reserved for temporaries, which encode and repair remove.
            raise ValueError(f"shard {self.index} path {self.path!r} has a hidden (.name) part")
        if any(not 0 <= value <= CRC32_MAX for value in self.crc32):
            raise ValueError(f"shard {self.index} checksums must be CRC-32 values 0..{CRC32_MAX}")
        return self


class MemberEntry(BaseModel):
    """One file of a store that holds several (a merged convertible store), in data-shard order.

    The member's bytes are striped over ``data_shards`` consecutive data shards exactly as a
    one-file store's are over its k; a shorter member's shards are shorter, and the code sees
    zeros past their end (its shards hold ``stripes`` chunks, the parities one per store stripe).
    """

    model_config = ConfigDict(strict=True)

    file_name: str
    file_size: int = Field(ge=0, le=MAX_FILE_SIZE)
    file_mode: int | None = Field(default=None, ge=0, le=0o7777)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    stripes: int = Field(ge=0)
    data_shards: int = Field(ge=1, le=MAX_SHARDS)

    @model_validator(mode="after")
    def _plain_name(self) -> MemberEntry:
        check_name(self.file_name, "member file_name")
        if (self.stripes == 0) != (self.file_size == 0):
            raise ValueError(
                f"member {self.file_name!r}: stripes={self.stripes} with "
                f"file_size={self.file_size}: only an empty file has no stripes"
            )
        return self

    def chunk_length(self, stripe: int, stripe_size: int, multiple: int = 1) -> int:
        """Bytes of each of this member's shards in ``stripe`` (0 past its last stripe); the
        last stripe's chunk is rounded up to ``multiple`` (a vector code's layers)."""
        return _chunk_length(
            stripe, self.stripes, self.file_size, self.data_shards, stripe_size, multiple
        )


class Manifest(BaseModel):
    """What ``ec encode`` wrote: code, sizes, and per-shard per-stripe checksums.

    ``file_mode`` (permission bits of the source file, optional) lets ``decode`` give the output
    the original mode; manifests written before it existed simply lack it. ``code_version`` names
    the generator construction the shards were written with (``codes.CODE_VERSIONS``; absent
    means 1, the construction before the maximally recoverable LRC): decoding with another
    generator would produce wrong bytes, so a version this program does not know is refused.
    ``nodes`` (a store spread over several roots, see ``redundancy.erasure.nodes``) lists the
    node roots as recorded relative to this manifest's folder, each shard naming its ``node``;
    ``store_id`` identifies the store across the manifest copies kept in every root.

    Two optional fields let other systems' stores be read as ``ec`` stores (a convertible store,
    whose ``code`` names a family ``parse_code`` does not know):

    - ``parity_matrix``: the r x k parity rows of the systematic generator ``[I_k; P]``, integers
      0..255; the code is built from it instead of from ``code``. Untrusted, so it must match the
      shard count and have no zero entry, and every square submatrix must be nonsingular (MDS),
      checked exhaustively up to ``MDS_CHECK_LIMIT`` submatrices, beyond that every 1 x 1 and
      2 x 2 one (decoding never relies on MDS: every erasure pattern is solved by rank, and
      checksums and SHA-256 check the output).
    - ``sub_packetization`` (alpha, with ``parity_matrix``): a vector code (``VectorCode``):
      every chunk is alpha layers, ``parity_matrix`` holds the (r alpha) x (k alpha) parity
      layer rows (n alpha <= 256 symbols), and chunks are multiples of alpha bytes (the last
      stripe's rounded up).
    - ``tolerated_losses`` (with ``parity_matrix``): the code is not MDS (an LRC, or several
      codewords side by side as a split store holds); every set of this many lost shards must
      decode, checked by rank over every such set up to ``LOSS_CHECK_LIMIT`` of them, beyond that
      over a fixed pseudo-random sample of that many. A vector code without it claims MDS
      (r lost shards), checked the same way.
    - ``members``: the store holds several files (``MemberEntry``), each on its own consecutive
      data shards; then ``file_name`` and ``sha256`` are absent, ``file_size`` is the members'
      total and ``stripes`` the most any member has. ``companions`` names other files the store
      keeps beside this manifest (plain names; e.g. ``convertible.json``), which ``verify`` does
      not report as unexpected.
    """

    model_config = ConfigDict(strict=True)

    format: str
    code: str
    file_name: str | None = None
    file_size: int = Field(ge=0, le=MAX_FILE_SIZE)
    file_mode: int | None = Field(default=None, ge=0, le=0o7777)
    stripe_size: int = Field(
        gt=0, le=MAX_STRIPE_SIZE, description="bytes of each shard per full stripe"
    )
    stripes: int = Field(ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    shards: list[ShardEntry]
    code_version: int | None = None
    nodes: list[str] | None = Field(default=None, min_length=1, max_length=256)
    store_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    parity_matrix: list[list[int]] | None = Field(default=None, max_length=MAX_SHARDS)
    sub_packetization: int | None = Field(default=None, ge=2, le=MAX_LAYERS)
    tolerated_losses: int | None = Field(default=None, ge=0, le=MAX_SHARDS)
    members: list[MemberEntry] | None = Field(default=None, min_length=1, max_length=MAX_SHARDS)
    companions: list[str] | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.format != FORMAT:
            raise ValueError(f"format {self.format!r} is not {FORMAT!r}")
        self._check_files()
        if self.parity_matrix is not None:
            _check_parity_matrix(
                self.parity_matrix, len(self.shards), self.layers, self.tolerated_losses
            )
        elif self.sub_packetization is not None or self.tolerated_losses is not None:
            raise ValueError("sub_packetization and tolerated_losses need a parity_matrix")
        if self.stripe_size % self.layers:
            raise ValueError(
                f"stripe_size={self.stripe_size} must be a multiple of "
                f"sub_packetization={self.layers}"
            )
        if self.code_version is not None and self.code_version not in CODE_VERSIONS:
            raise ValueError(
                f"code_version {self.code_version} is not one this program knows "
                f"{list(CODE_VERSIONS)}; the store was written by a newer redundancy: upgrade"
            )
        if [s.index for s in self.shards] != list(range(len(self.shards))):
            raise ValueError("shards must be listed in index order 0..n-1")
        if self.members is None and any(len(s.crc32) != self.stripes for s in self.shards):
            raise ValueError(f"every shard needs {self.stripes} checksums (one per stripe)")
        if (self.stripes == 0) != (self.file_size == 0):
            raise ValueError(
                f"stripes={self.stripes} with file_size={self.file_size}: "
                "only an empty file has no stripes"
            )
        _check_distinct_paths([s.path for s in self.shards], self.companions or [])
        if self.nodes is None:
            if any(s.node is not None for s in self.shards):
                raise ValueError("shards name nodes but the manifest lists no nodes")
        else:
            for number, root in enumerate(self.nodes):
                check_recorded_root(root, f"node {number}")
            for s in self.shards:
                if s.node is None or s.node >= len(self.nodes):
                    raise ValueError(
                        f"shard {s.index} node {s.node} is not one of the {len(self.nodes)} nodes"
                    )
        return self

    def _check_files(self) -> None:
        """One file (``file_name``, ``sha256``) or ``members``, never both; totals consistent."""
        if self.members is None:
            if self.file_name is None or self.sha256 is None:
                missing = "file_name" if self.file_name is None else "sha256"
                raise ValueError(f"{missing} is required (or members, for a store of several)")
            check_name(self.file_name, "file_name")
            return
        if self.file_name is not None or self.sha256 is not None:
            raise ValueError("a store of several members has no top-level file_name or sha256")
        names = [m.file_name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"member file names must be distinct, got {names}")
        if self.file_size != sum(m.file_size for m in self.members):
            raise ValueError(f"file_size={self.file_size} is not the members' total")
        if self.stripes != max(m.stripes for m in self.members):
            raise ValueError(f"stripes={self.stripes} is not the most any member has")
        if any(len(s.crc32) > self.stripes for s in self.shards):
            raise ValueError(
                f"a shard lists more checksums than the store's {self.stripes} stripes"
            )

    @property
    def layers(self) -> int:
        """Layers per chunk: ``sub_packetization``, 1 for a scalar code."""
        return self.sub_packetization or 1

    def build_code(self, code: LinearCode | None = None) -> LinearCode:
        """The code this store was written with, checked against the shard and stripe counts.

        Parameters
        ----------
        code
            A code whose spec ``parse_code`` does not know (e.g. a convertible code); it is
            validated the same way. Default: ``parse_code(self.code)`` with the generator of
            the store's ``code_version``.

        Returns
        -------
        LinearCode
            The code, with ``n`` equal to the number of shards listed.

        Raises
        ------
        IntegrityError
            If the shard count, stripe count or sizes disagree with the code.
        ParameterError
            If the code spec does not parse.
        """
        if code is None and self.parity_matrix is not None:
            parity = np.array(self.parity_matrix, dtype=np.uint8).reshape(
                len(self.parity_matrix), -1
            )
            generator = np.vstack([np.eye(parity.shape[1], dtype=np.uint8), parity])
            if self.sub_packetization is None:
                code = LinearCode(generator, name=self.code)
            else:
                code = VectorCode(generator, self.sub_packetization, name=self.code)
        code = code or parse_code(self.code, version=self.code_version or 1)
        if code.n != len(self.shards):
            raise IntegrityError(
                f"manifest lists {len(self.shards)} shards but {self.code} has n={code.n}"
            )
        if self.members is not None:
            self._check_members(code.k)
            return code
        expected = stripe_count(self.file_size, code.k, self.stripe_size)
        if expected != self.stripes:
            raise IntegrityError(
                f"manifest says {self.stripes} stripes; file_size and stripe_size imply {expected}"
            )
        return code

    def _check_members(self, k: int) -> None:
        """Members cover the k data shards; stripe and checksum counts follow from their sizes."""
        if sum(m.data_shards for m in self.members) != k:
            raise IntegrityError(
                f"members hold {sum(m.data_shards for m in self.members)} data shards, "
                f"the code has k={k}"
            )
        for member in self.members:
            needed = stripe_count(member.file_size, member.data_shards, self.stripe_size)
            if needed != member.stripes:
                raise IntegrityError(
                    f"member {member.file_name!r} says {member.stripes} stripes; its file_size "
                    f"and stripe_size imply {needed}"
                )
        for shard in self.shards:
            owner = self.member_of(shard.index, k)
            expected = self.stripes if owner is None else owner.stripes
            if len(shard.crc32) != expected:
                raise IntegrityError(
                    f"shard {shard.index} lists {len(shard.crc32)} checksums, expected {expected}"
                )

    def member_of(self, index: int, k: int) -> MemberEntry | None:
        """The member whose data shard ``index`` is (None for a parity or a one-file store)."""
        if self.members is None or index >= k:
            return None
        for member in self.members:
            if index < member.data_shards:
                return member
            index -= member.data_shards
        return None

    def shard_chunk_length(self, stripe: int, index: int, k: int) -> int:
        """Bytes shard ``index`` holds in ``stripe`` (less than the stripe's width for a short
        member, 0 past its end; the code sees zeros there)."""
        member = self.member_of(index, k)
        if member is None:
            return self.chunk_length(stripe, k)
        return member.chunk_length(stripe, self.stripe_size, self.layers)

    def chunk_length(self, stripe: int, k: int) -> int:
        """Bytes of each shard in ``stripe`` (the last stripe may be shorter): the widest shard's
        for a store of several members."""
        if self.members is not None:
            return max(m.chunk_length(stripe, self.stripe_size, self.layers) for m in self.members)
        return _chunk_length(stripe, self.stripes, self.file_size, k, self.stripe_size, self.layers)

    def shard_size(self, k: int, index: int | None = None) -> int:
        """Expected size in bytes of shard ``index`` (default: of a parity, the widest)."""
        member = None if index is None else self.member_of(index, k)
        stripes = self.stripes if member is None else member.stripes
        if stripes == 0:
            return 0
        last = (
            self.chunk_length(stripes - 1, k)
            if member is None
            else member.chunk_length(stripes - 1, self.stripe_size, self.layers)
        )
        return (stripes - 1) * self.stripe_size + last

    def output_mode(self, file_mode: int | None = None) -> int | None:
        """Mode for the decoded file: the recorded permission bits under the umask, or None.

        ``file_mode``: a member's recorded mode (default: the manifest's). Only the permission
        bits (``0o777``) are honoured, never setuid/setgid/sticky, and the process umask applies
        as it does for ``cp`` or ``tar`` run by a normal user.
        """
        mode = self.file_mode if file_mode is None else file_mode
        if mode is None:
            return None
        from redundancy.storage_io import default_file_mode

        umask = 0o666 & ~default_file_mode()  # the umask's permission bits
        return mode & 0o777 & ~umask


def _chunk_length(
    stripe: int, stripes: int, file_size: int, k: int, stripe_size: int, multiple: int
) -> int:
    """Bytes of each shard chunk of a file of ``file_size`` bytes on ``k`` data shards: the full
    ``stripe_size`` but in the last stripe, whose chunk is the rest over k rounded up to
    ``multiple`` (a vector code's layers); 0 past the last stripe."""
    if stripe >= stripes:
        return 0
    if stripe < stripes - 1:
        return stripe_size
    remainder = file_size - (stripes - 1) * k * stripe_size
    chunk = -(-remainder // k)
    return -(-chunk // multiple) * multiple


def _check_parity_matrix(
    rows: list[list[int]], n: int, alpha: int = 1, tolerated: int | None = None
) -> None:
    """Shape, range and MDS (or ``tolerated`` losses) checks of an untrusted ``parity_matrix``
    of a code with ``alpha`` layers per shard (ValueError)."""
    if n * alpha > MAX_SHARDS:
        raise ValueError(
            f"{n} shards of sub_packetization={alpha} layers are {n * alpha} symbols "
            f"(allowed: <= {MAX_SHARDS})"
        )
    if len(rows) % alpha:
        raise ValueError(
            f"parity_matrix has {len(rows)} rows, not a multiple of sub_packetization={alpha}"
        )
    r = len(rows) // alpha
    k = n - r
    if r < 1 or k < 1:
        raise ValueError(
            f"parity_matrix has {len(rows)} rows; with {n} shards of {alpha} layer(s) allowed "
            f"{alpha}..{(n - 1) * alpha} rows (a multiple of {alpha})"
        )
    if any(len(row) != k * alpha for row in rows):
        raise ValueError(
            f"parity_matrix rows must each hold k alpha = {k * alpha} entries ({n} shards, "
            f"{r} parity shards of {alpha} layer(s))"
        )
    if any(not 0 <= value <= 255 for row in rows for value in row):
        raise ValueError("parity_matrix entries must be GF(2^8) elements 0..255")
    parity = np.array(rows, dtype=np.uint8)
    if tolerated is not None and tolerated > r:
        raise ValueError(
            f"tolerated_losses={tolerated} exceeds the {r} parity shards (allowed: 0..{r})"
        )
    if alpha > 1 or tolerated is not None:
        losses = r if tolerated is None else tolerated
        failing = _failing_pattern(parity.tobytes(), r, k, alpha, losses)
        if failing is not None:
            raise ValueError(
                f"parity_matrix cannot rebuild lost shards {list(failing)}, but the manifest "
                f"claims every {losses} lost shards decode; refusing a code weaker than it claims"
            )
        return
    if not _looks_mds(parity.tobytes(), r, k):
        raise ValueError(
            f"parity_matrix is not MDS: a square submatrix is singular, so some {r} lost "
            "shards could not be rebuilt; refusing a code weaker than its shape claims"
        )


@lru_cache(maxsize=16)
def _failing_pattern(raw: bytes, r: int, k: int, alpha: int, losses: int) -> tuple[int, ...] | None:
    """A set of ``losses`` shards whose loss does not decode, or None: every such set when there
    are at most LOSS_CHECK_LIMIT, else a fixed pseudo-random sample of that many (cached)."""
    parity = np.frombuffer(raw, dtype=np.uint8).reshape(r * alpha, k * alpha)
    code = VectorCode(np.vstack([np.eye(k * alpha, dtype=np.uint8), parity]), alpha)
    n = r + k
    if comb(n, losses) <= LOSS_CHECK_LIMIT:
        patterns: Iterable[tuple[int, ...]] = combinations(range(n), losses)
    else:
        rng = random.Random(n * MAX_SHARDS + losses)
        patterns = (tuple(sorted(rng.sample(range(n), losses))) for _ in range(LOSS_CHECK_LIMIT))
    return next((lost for lost in patterns if not code.decodes(lost)), None)


@lru_cache(maxsize=16)
def _looks_mds(raw: bytes, r: int, k: int) -> bool:
    """Every square submatrix of the r x k ``raw`` nonsingular: exhaustively up to
    MDS_CHECK_LIMIT submatrices, else every 1x1 and 2x2 one (cached: a command loads a
    manifest several times)."""
    parity = np.frombuffer(raw, dtype=np.uint8).reshape(r, k)
    r, k = parity.shape
    total = sum(comb(r, s) * comb(k, s) for s in range(1, min(r, k) + 1))
    if total <= MDS_CHECK_LIMIT:
        return gf256.is_superregular(parity, max_checks=MDS_CHECK_LIMIT)
    if np.any(parity == 0):
        return False
    for a in range(r):
        for b in range(a + 1, r):  # det [[Pac, Pad], [Pbc, Pbd]] = Pac Pbd + Pad Pbc
            products = gf256.MUL_TABLE[parity[a][:, None], parity[b][None, :]]
            if np.any(np.triu(products == products.T, 1)):
                return False
    return True


def _check_distinct_paths(paths: list[str], companions: list[str]) -> None:
    """Refuse two shards on one file, a shard path used as another one's folder, and companion
    files that are not plain names or collide with a shard or the manifest."""
    seen: dict[str, str] = {}
    for name in companions:
        check_name(name, "companion")
        if name.startswith(".") or name.casefold() in {MANIFEST_NAME, *seen}:
            raise ValueError(f"companion {name!r} is hidden, repeated or names the manifest")
        seen[name.casefold()] = name
    for path in paths:
        key = path.casefold()  # a case-insensitive file system would merge these
        if key in seen:
            raise ValueError(f"shards {seen[key]!r} and {path!r} share one file")
        seen[key] = path
        if key == MANIFEST_NAME:
            raise ValueError(f"a shard path {path!r} names the manifest itself")
    for path in paths:
        parts = path.casefold().split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in seen:
                raise ValueError(f"shard path {seen[folder]!r} is also a folder of {path!r}")


def stripe_count(file_size: int, k: int, stripe_size: int) -> int:
    """Number of stripes a file of ``file_size`` bytes needs (at least one unless empty)."""
    return -(-file_size // (k * stripe_size))


def load_manifest(store: str | Path | StoreLocation) -> Manifest:
    """Read and validate the store's manifest.

    Parameters
    ----------
    store
        Store folder, fsspec URL or location.

    Returns
    -------
    Manifest
        The validated manifest (names plain and inside the store, sizes bounded).

    Raises
    ------
    IntegrityError
        If there is no manifest, or it is not valid JSON or not a valid manifest (the message
        names the field).

    Examples
    --------
    >>> load_manifest("/no/such/store")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    redundancy.errors.IntegrityError: /no/such/store/manifest.json: no manifest ...
    """
    location = store if isinstance(store, StoreLocation) else StoreLocation(store)
    where = f"{location}/{MANIFEST_NAME}"
    size = location.size(MANIFEST_NAME)
    if size is None:
        raise IntegrityError(f"{where}: no manifest (is {location} an erasure-coded store?)")
    if size > MAX_MANIFEST_BYTES:
        raise IntegrityError(
            f"{where}: manifest is {size} bytes (allowed: <= {MAX_MANIFEST_BYTES})"
        )
    raw = location.read_bytes(MANIFEST_NAME)
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise IntegrityError(f"{where}: manifest is not valid JSON ({first['msg']})") from None
        error = first.get("ctx", {}).get("error")
        message = str(error) if error is not None else first["msg"]
        field = ".".join(str(p) for p in first["loc"])
        at = f" at {field}" if field else ""
        raise IntegrityError(f"{where}: invalid manifest{at}: {message}") from None


def save_manifest(store: str | Path | StoreLocation, manifest: Manifest) -> None:
    """Write the manifest atomically (temporary name, then rename)."""
    location = store if isinstance(store, StoreLocation) else StoreLocation(store)
    location.write_bytes(MANIFEST_NAME, manifest.model_dump_json(indent=1).encode())
