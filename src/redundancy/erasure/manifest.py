"""The manifest of an erasure-coded file store: validated before any shard is trusted."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator

from redundancy.erasure.codes import LinearCode, parse_code
from redundancy.erasure.location import StoreLocation
from redundancy.errors import IntegrityError

FORMAT = "redundancy-ec/1"
MANIFEST_NAME = "manifest.json"


class ShardEntry(BaseModel):
    """One shard file: where it lives and a CRC-32 per stripe chunk."""

    index: int = Field(ge=0, le=255)
    path: str = Field(min_length=1)
    crc32: list[int]

    @model_validator(mode="after")
    def _relative_path(self) -> ShardEntry:
        p = Path(self.path)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"shard path {self.path!r} must stay inside the store")
        return self


class Manifest(BaseModel):
    """What ``ec encode`` wrote: code, sizes, and per-shard per-stripe checksums."""

    format: str
    code: str
    file_name: str
    file_size: int = Field(ge=0)
    stripe_size: int = Field(gt=0, description="bytes of each shard per full stripe")
    stripes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    shards: list[ShardEntry]

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.format != FORMAT:
            raise ValueError(f"format {self.format!r} is not {FORMAT!r}")
        if [s.index for s in self.shards] != list(range(len(self.shards))):
            raise ValueError("shards must be listed in index order 0..n-1")
        if any(len(s.crc32) != self.stripes for s in self.shards):
            raise ValueError(f"every shard needs {self.stripes} checksums (one per stripe)")
        return self

    def build_code(self, code: LinearCode | None = None) -> LinearCode:
        """The code this store was written with, checked against the shard and stripe counts.

        ``code`` supplies a code whose spec ``parse_code`` does not know (e.g. a convertible
        code); it is validated the same way.
        """
        code = code or parse_code(self.code)
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


def stripe_count(file_size: int, k: int, stripe_size: int) -> int:
    """Number of stripes a file of ``file_size`` bytes needs (at least one unless empty)."""
    return -(-file_size // (k * stripe_size))


def load_manifest(store: str | Path | StoreLocation) -> Manifest:
    """Read and validate the store's manifest; raise IntegrityError naming what is wrong."""
    location = store if isinstance(store, StoreLocation) else StoreLocation(store)
    where = f"{location}/{MANIFEST_NAME}"
    if location.size(MANIFEST_NAME) is None:
        raise IntegrityError(f"{where}: no manifest (is {location} an erasure-coded store?)")
    try:
        return Manifest.model_validate(json.loads(location.read_bytes(MANIFEST_NAME)))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{where}: manifest is not valid JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise IntegrityError(f"{where}: invalid manifest at {field}: {first['msg']}") from None


def save_manifest(store: str | Path | StoreLocation, manifest: Manifest) -> None:
    """Write the manifest atomically."""
    location = store if isinstance(store, StoreLocation) else StoreLocation(store)
    location.write_bytes(MANIFEST_NAME, manifest.model_dump_json(indent=1).encode())
