"""Small file helpers shared by every system: atomic writes so nothing is left half written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"


def default_file_mode() -> int:
    """Give the mode ``open(path, "w")`` would give a new file: 0o666 minus the process umask.

    Returns
    -------
    int
        The permission bits.

    Examples
    --------
    >>> mask = os.umask(0o022)
    >>> oct(default_file_mode())
    '0o644'
    >>> _ = os.umask(mask)
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_prefix(name: str) -> str:
    """Give the prefix of the temporary files ``atomic_open`` makes for a target called ``name``.

    Temporaries are ``.<name>.<random>.tmp`` beside the target, so a store can find (and remove)
    the ones a killed run left, and only those.

    Parameters
    ----------
    name : str
        The target's file name (no folder).

    Returns
    -------
    str
        ``.<name>.``

    Examples
    --------
    >>> temp_prefix("shard.0")
    '.shard.0.'
    """
    return f".{name}."


@contextmanager
def atomic_open(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched, so a reader sees
    the old file or the whole new one, never a half-written one.

    Parameters
    ----------
    path : Path
        The target; its folder is created if missing.
    mode : int, optional
        Permission bits of the new file (default: what a normally created file gets under the
        current umask, not the 0600 of ``tempfile.mkstemp``).

    Yields
    ------
    BinaryIO
        The temporary file, open for binary writing.

    Raises
    ------
    OSError
        If the folder cannot be created or written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_open(folder / "out.bin") as handle:
    ...     _ = handle.write(b"all or nothing")
    >>> (folder / "out.bin").read_bytes()
    b'all or nothing'
    >>> try:
    ...     with atomic_open(folder / "out.bin") as handle:
    ...         _ = handle.write(b"half")
    ...         raise RuntimeError("killed")
    ... except RuntimeError:
    ...     pass
    >>> (folder / "out.bin").read_bytes(), sorted(p.name for p in folder.iterdir())
    (b'all or nothing', ['out.bin'])
    >>> (folder / "out.bin").unlink(); folder.rmdir()
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, default_file_mode() if mode is None else mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temporary name, then rename); see ``atomic_open``.

    Parameters
    ----------
    path : Path
        The target; its folder is created if missing.
    data : bytes
        The whole new content.
    mode : int, optional
        Permission bits of the new file (default: as a normally created file).

    Raises
    ------
    OSError
        If the folder cannot be created or written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write_bytes(folder / "a.txt", b"hello", mode=0o600)
    >>> (folder / "a.txt").read_bytes(), oct((folder / "a.txt").stat().st_mode & 0o777)
    (b'hello', '0o600')
    >>> (folder / "a.txt").unlink(); folder.rmdir()
    """
    with atomic_open(path, mode=mode) as handle:
        handle.write(data)
