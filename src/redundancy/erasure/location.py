"""Where a store lives: a local folder, or any fsspec URL (``memory://``, ``s3://``, ...).

Only the handful of operations the store needs, each with the store's guarantees: reads are plain,
writes go to a temporary name and are renamed into place when complete (locally also fsync'd).
Every relative path is checked to be a plain relative name (``check_relpath``) and, locally,
to resolve inside the root even through symbolic links, so nothing read from an untrusted
manifest can make the store read or write outside its folder.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from redundancy.errors import IntegrityError, ParameterError
from redundancy.storage_io import TEMP_SUFFIX, atomic_open, temp_prefix

MAX_NAME_BYTES = 255  # what POSIX file systems allow for one path component
MAX_PATH_PARTS = 16


def check_name(text: object, what: str) -> str:
    """Return ``text`` if it is a plain file name (one path component), else raise.

    A plain name is non-empty, not ``.`` or ``..``, has no ``/`` or ``\\``, no NUL or other
    control character, and is at most 255 bytes of UTF-8.

    Parameters
    ----------
    text
        The name, as read from an untrusted file.
    what
        What the name is, for the message (e.g. ``"file_name"``).

    Returns
    -------
    str
        ``text`` unchanged.

    Raises
    ------
    IntegrityError
        Naming ``what``, the bad value and what is accepted.

    Examples
    --------
    >>> check_name("report.pdf", "file_name")
    'report.pdf'
    >>> check_name("../x", "file_name")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    redundancy.errors.IntegrityError: file_name '../x' must be a plain file name ...
    """
    accepted = "a plain file name (no '/', '\\', '..', control characters; 1..255 bytes)"
    if not isinstance(text, str):
        raise IntegrityError(f"{what} {text!r} must be {accepted}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise IntegrityError(f"{what} {text!r} must be {accepted}") from None
    if (
        text in ("", ".", "..")
        or size > MAX_NAME_BYTES
        or "/" in text
        or "\\" in text
        or any(ord(c) < 32 or ord(c) == 127 for c in text)
    ):
        raise IntegrityError(f"{what} {text!r} must be {accepted}")
    return text


def check_relpath(text: object, what: str) -> str:
    """Return ``text`` if it is a relative path of plain names joined by ``/``, else raise.

    Refuses absolute paths, ``..`` and ``.`` parts, empty parts (``a//b``, trailing ``/``),
    backslashes, control characters, and more than 16 parts.

    Parameters
    ----------
    text
        The path, as read from an untrusted file.
    what
        What the path is, for the message (e.g. ``"shard 3 path"``).

    Returns
    -------
    str
        ``text`` unchanged.

    Raises
    ------
    IntegrityError
        Naming ``what``, the bad value and what is accepted.

    Examples
    --------
    >>> check_relpath("node-003/shard-003.bin", "shard 3 path")
    'node-003/shard-003.bin'
    >>> check_relpath("/etc/passwd", "shard 3 path")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    redundancy.errors.IntegrityError: shard 3 path '/etc/passwd' must be a relative path ...
    """
    accepted = "a relative path of plain names joined by '/' that stays inside the store"
    if not isinstance(text, str) or not text:
        raise IntegrityError(f"{what} {text!r} must be {accepted}")
    parts = text.split("/")
    if len(parts) > MAX_PATH_PARTS:
        raise IntegrityError(f"{what} {text!r} must be {accepted} (at most {MAX_PATH_PARTS} parts)")
    for part in parts:
        try:
            check_name(part, what)
        except IntegrityError:
            raise IntegrityError(f"{what} {text!r} must be {accepted}") from None
    return text


def temp_pattern(name: str) -> re.Pattern[str]:
    """Names of the temporaries an atomic write of ``name`` makes (``.<name>.<random>.tmp``)."""
    return re.compile(re.escape(temp_prefix(name)) + r"[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX))


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

    def _local(self, rel: str) -> Path:
        """``root / rel`` after checking ``rel`` is plain and resolves inside the root."""
        check_relpath(rel, "store path")
        root = self.local_root.resolve()
        path = self.local_root / rel
        if not path.resolve().is_relative_to(root):
            raise IntegrityError(
                f"{path} leads outside the store {self.local_root} (through a symbolic link)"
            )
        return path

    def _remote(self, rel: str) -> str:
        check_relpath(rel, "store path")
        return str(self.remote_root / rel)

    def exists(self) -> bool:
        """True if the root folder exists (for a URL: the prefix exists or holds files)."""
        if self.local_root is not None:
            return self.local_root.is_dir()
        return bool(self.fs.isdir(str(self.remote_root)))

    def size(self, rel: str) -> int | None:
        """Size in bytes of the file at ``rel``, or None if there is no such file."""
        if self.local_root is not None:
            path = self._local(rel)
            return path.stat().st_size if path.is_file() else None
        target = self._remote(rel)
        return self.fs.size(target) if self.fs.isfile(target) else None

    def open_read(self, rel: str) -> BinaryIO:
        """Open ``rel`` for reading (seekable)."""
        if self.local_root is not None:
            path = self._local(rel)
            try:
                return path.open("rb")
            except OSError as exc:
                raise IntegrityError(f"{path}: cannot read ({exc.strerror})") from None
        return self.fs.open(self._remote(rel), "rb")

    def read_bytes(self, rel: str) -> bytes:
        """The whole content of ``rel``."""
        with self.open_read(rel) as handle:
            return handle.read()

    @contextmanager
    def atomic_writer(self, rel: str) -> Iterator[BinaryIO]:
        """Write ``rel`` under a temporary name; rename into place only if the block succeeds."""
        if self.local_root is not None:
            path = self._local(rel)
            if path.is_dir() or (path.parent.exists() and not path.parent.is_dir()):
                raise IntegrityError(f"{path}: a folder or file is in the way of a shard file")
            opener = atomic_open(path)
            try:
                handle = opener.__enter__()
            except OSError as exc:  # a read-only or full disk, a missing mount...
                raise ParameterError(
                    f"cannot write {path} into {self.local_root} ({exc.strerror})"
                ) from None
            try:
                yield handle
            except BaseException:
                if not opener.__exit__(*sys.exc_info()):
                    raise
            else:
                opener.__exit__(None, None, None)
            return
        final = PurePosixPath(self._remote(rel))
        temp = str(final.with_name(f"{temp_prefix(final.name)}{secrets.token_hex(4)}{TEMP_SUFFIX}"))
        try:
            self.fs.makedirs(str(final.parent), exist_ok=True)
        except OSError as exc:
            raise ParameterError(f"cannot write {final} ({exc})") from None
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
        """Remove the file ``rel`` if it exists."""
        if self.local_root is not None:
            path = self._local(rel)
            if path.is_file() or path.is_symlink():
                path.unlink()
        elif self.fs.isfile(self._remote(rel)):
            self.fs.rm(self._remote(rel))

    def files(self) -> list[str]:
        """Every file under the root, as sorted ``/``-separated relative paths.

        Symbolic links count as files and are not followed.
        """
        if self.local_root is not None:
            if not self.local_root.is_dir():
                return []
            return sorted(
                path.relative_to(self.local_root).as_posix()
                for path in self.local_root.rglob("*")
                if path.is_symlink() or path.is_file()
            )
        root = str(self.remote_root)
        if not self.fs.isdir(root):
            return []
        prefix = root.rstrip("/") + "/"
        return sorted(path[len(prefix) :] for path in self.fs.find(root) if path.startswith(prefix))

    def remove_stale_temporaries(self, rel: str) -> list[str]:
        """Remove temporaries a killed atomic write of ``rel`` left; return what was removed.

        Only names of the pattern ``atomic_writer`` uses for ``rel`` (``.<name>.<random>.tmp``
        in the same folder) are touched.
        """
        pattern = temp_pattern(PurePosixPath(rel).name)
        folder = PurePosixPath(rel).parent
        removed = []
        if self.local_root is not None:
            directory = self._local(rel).parent
            if not directory.is_dir():
                return []
            for entry in directory.iterdir():
                if pattern.fullmatch(entry.name) and (entry.is_file() or entry.is_symlink()):
                    entry.unlink()
                    removed.append((folder / entry.name).as_posix())
            return removed
        directory = str(PurePosixPath(self._remote(rel)).parent)
        if not self.fs.isdir(directory):
            return []
        for path in self.fs.ls(directory, detail=False):
            name = PurePosixPath(path).name
            if pattern.fullmatch(name) and self.fs.isfile(path):
                self.fs.rm(path)
                removed.append((folder / name).as_posix())
        return removed
