"""Where a store lives: a local folder, or any fsspec URL (``memory://``, ``s3://``, ...).

Only the handful of operations the store needs, each with the store's guarantees: reads are plain,
writes go to a temporary name and are renamed into place when complete (locally also fsync'd).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from redundancy.errors import ParameterError
from redundancy.storage_io import atomic_open


class StoreLocation:
    """A store's root: local paths use pathlib; URLs with a protocol go through fsspec."""

    def __init__(self, root: str | Path) -> None:
        text = str(root)
        self.url = text
        if "://" in text and not text.startswith("file://"):
            import fsspec

            try:
                self.fs, base = fsspec.core.url_to_fs(text)
            except (ImportError, ValueError) as exc:
                raise ParameterError(f"store URL {text!r} is not usable: {exc}") from None
            self.remote_root: PurePosixPath | None = PurePosixPath(base)
            self.local_root: Path | None = None
        else:
            self.fs, self.remote_root = None, None
            self.local_root = Path(text.removeprefix("file://"))

    def __str__(self) -> str:
        return self.url

    def _remote(self, rel: str) -> str:
        return str(self.remote_root / rel)

    def size(self, rel: str) -> int | None:
        """Size in bytes of the file at ``rel``, or None if there is no such file."""
        if self.local_root is not None:
            path = self.local_root / rel
            return path.stat().st_size if path.is_file() else None
        target = self._remote(rel)
        return self.fs.size(target) if self.fs.isfile(target) else None

    def open_read(self, rel: str) -> BinaryIO:
        """Open ``rel`` for reading (seekable)."""
        if self.local_root is not None:
            return (self.local_root / rel).open("rb")
        return self.fs.open(self._remote(rel), "rb")

    def read_bytes(self, rel: str) -> bytes:
        """The whole content of ``rel``."""
        with self.open_read(rel) as handle:
            return handle.read()

    @contextmanager
    def atomic_writer(self, rel: str) -> Iterator[BinaryIO]:
        """Write ``rel`` under a temporary name; rename into place only if the block succeeds."""
        if self.local_root is not None:
            with atomic_open(self.local_root / rel) as handle:
                yield handle
            return
        final = PurePosixPath(self._remote(rel))
        temp = str(final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp"))
        self.fs.makedirs(str(final.parent), exist_ok=True)
        try:
            with self.fs.open(temp, "wb") as handle:
                yield handle
            self.fs.mv(temp, str(final))
        except BaseException:
            if self.fs.exists(temp):
                self.fs.rm(temp)
            raise

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel`` atomically."""
        with self.atomic_writer(rel) as handle:
            handle.write(data)

    def unlink(self, rel: str) -> None:
        """Remove ``rel`` if it exists."""
        if self.local_root is not None:
            (self.local_root / rel).unlink(missing_ok=True)
        elif self.fs.exists(self._remote(rel)):
            self.fs.rm(self._remote(rel))
