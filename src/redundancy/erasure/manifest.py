"""The manifest of an erasure-coded file store: validated before any shard is trusted.

A manifest is untrusted input (a store can come from anywhere). Before anything is read or
written because of it, every name in it is checked to be a plain relative name that stays inside
its root (``check_name``, ``check_relpath``), shard paths must be distinct, and every size must be
bounded and consistent with the others (``Manifest.build_code`` adds the checks that need the code).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from redundancy.erasure.codes import CODE_VERSIONS, LinearCode, parse_code
from redundancy.erasure.location import StoreLocation, check_name, check_relpath
from redundancy.erasure.nodes import check_recorded_root
from redundancy.errors import IntegrityError

FORMAT = "redundancy-ec/1"
MANIFEST_NAME = "manifest.json"
MAX_STRIPE_SIZE = 1 << 30  # bytes of one shard per stripe (what `ec encode` accepts)
MAX_FILE_SIZE = 1 << 50  # 1 PiB: a declared size beyond this is refused before any work
MAX_MANIFEST_BYTES = 256 << 20  # a 1 PiB file at 1 GiB stripes needs about 100 MiB of checksums
CRC32_MAX = 0xFFFF_FFFF

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "MAX_FILE_SIZE",
    "MAX_STRIPE_SIZE",
    "Manifest",
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
    """

    model_config = ConfigDict(strict=True)

    format: str
    code: str
    file_name: str
    file_size: int = Field(ge=0, le=MAX_FILE_SIZE)
    file_mode: int | None = Field(default=None, ge=0, le=0o7777)
    stripe_size: int = Field(
        gt=0, le=MAX_STRIPE_SIZE, description="bytes of each shard per full stripe"
    )
    stripes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    shards: list[ShardEntry]
    code_version: int | None = None
    nodes: list[str] | None = Field(default=None, min_length=1, max_length=256)
    store_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.format != FORMAT:
            raise ValueError(f"format {self.format!r} is not {FORMAT!r}")
        check_name(self.file_name, "file_name")
        if self.code_version is not None and self.code_version not in CODE_VERSIONS:
            raise ValueError(
                f"code_version {self.code_version} is not one this program knows "
                f"{list(CODE_VERSIONS)}; the store was written by a newer redundancy: upgrade"
            )
        if [s.index for s in self.shards] != list(range(len(self.shards))):
            raise ValueError("shards must be listed in index order 0..n-1")
        if any(len(s.crc32) != self.stripes for s in self.shards):
            raise ValueError(f"every shard needs {self.stripes} checksums (one per stripe)")
        if (self.stripes == 0) != (self.file_size == 0):
            raise ValueError(
                f"stripes={self.stripes} with file_size={self.file_size}: "
                "only an empty file has no stripes"
            )
        _check_distinct_paths([s.path for s in self.shards])
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
        code = code or parse_code(self.code, version=self.code_version or 1)
        if code.n != len(self.shards):
            raise IntegrityError(
                f"manifest lists {len(self.shards)} shards but {self.code} has n={code.n}"
            )
        expected = stripe_count(self.file_size, code.k, self.stripe_size)
        if expected != self.stripes:
            raise IntegrityError(
                f"manifest says {self.stripes} stripes; file_size and stripe_size imply {expected}"
            )
        return code

    def chunk_length(self, stripe: int, k: int) -> int:
        """Bytes of each shard in ``stripe`` (the last stripe may be shorter)."""
        if stripe < self.stripes - 1:
            return self.stripe_size
        remainder = self.file_size - (self.stripes - 1) * k * self.stripe_size
        return -(-remainder // k)

    def shard_size(self, k: int) -> int:
        """Expected size in bytes of every shard file."""
        if self.stripes == 0:
            return 0
        return (self.stripes - 1) * self.stripe_size + self.chunk_length(self.stripes - 1, k)

    def output_mode(self) -> int | None:
        """Mode for the decoded file: the recorded permission bits under the umask, or None.

        Only the permission bits (``0o777``) are honoured, never setuid/setgid/sticky, and the
        process umask applies as it does for ``cp`` or ``tar`` run by a normal user.
        """
        if self.file_mode is None:
            return None
        from redundancy.storage_io import default_file_mode

        umask = 0o666 & ~default_file_mode()  # the umask's permission bits
        return self.file_mode & 0o777 & ~umask


def _check_distinct_paths(paths: list[str]) -> None:
    """Refuse two shards on one file, and a shard path used as another one's folder."""
    seen: dict[str, str] = {}
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
