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
    """The mode ``open(path, "w")`` would give a new file: 0o666 minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_prefix(name: str) -> str:
    """Prefix of the temporary files ``atomic_open`` makes for a target called ``name``.

    Temporaries are ``.<name>.<random>.tmp`` beside the target, so a store can find (and remove)
    the ones a killed run left, and only those.
    """
    return f".{name}."


@contextmanager
def atomic_open(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched. The file gets
    ``mode`` (default: what a normally created file gets under the current umask, not the
    0600 of ``tempfile.mkstemp``).
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
    """Write ``data`` to ``path`` atomically (temporary name, then rename); see ``atomic_open``."""
    with atomic_open(path, mode=mode) as handle:
        handle.write(data)
