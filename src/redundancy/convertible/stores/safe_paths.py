"""Names and paths read from a convertible store's manifest are untrusted: check them here.

A manifest names shard files (relative paths such as ``node-003/shard-003.bin``) and member files
(plain names such as ``a.bin``). A hostile or damaged manifest could name ``../escaped.bin``, an
absolute path, or a folder that is a symbolic link out of the store, and make a decode write, a
conversion hard-link, or a retire delete a file outside the store. Every such name goes through
``plain_name`` or ``relative_path`` when the manifest is parsed and through ``inside`` before a
file is opened, so only files inside the store (or the chosen output folder) are ever touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from redundancy.errors import IntegrityError

MAX_STRIPE_SIZE = 1 << 30  # what `convert encode` accepts; a larger declared size is refused
_BAD_CHARACTERS = ("\x00", "\\")


def _problem(name: object) -> str | None:
    """Why ``name`` is not a safe relative path (None if it is one)."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if any(c in name for c in _BAD_CHARACTERS) or any(ord(c) < 32 for c in name):
        return "contains a NUL, backslash or control character"
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        return "is absolute"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' component"
    return None


def relative_path(name: str, what: str) -> str:
    """Return ``name`` if it is a plain relative path (``a/b.bin``), else raise.

    Parameters
    ----------
    name : str
        The path as a manifest states it.
    what : str
        What the path names, for the error message (e.g. ``"shard path"``).

    Returns
    -------
    str
        ``name`` unchanged.

    Raises
    ------
    ValueError
        If ``name`` is empty, absolute, has ``..``/``.``/empty components, a backslash, a NUL or a
        control character (a ``ValueError`` so pydantic validators report it with the field).

    Examples
    --------
    >>> relative_path("node-000/shard-000.bin", "shard path")
    'node-000/shard-000.bin'
    """
    problem = _problem(name)
    if problem:
        raise ValueError(
            f"{what} {name!r} {problem}; expected a relative path inside the store "
            "(e.g. node-000/shard-000.bin)"
        )
    return name


def plain_name(name: str, what: str) -> str:
    """Return ``name`` if it is a plain file name (no folder part), else raise ``ValueError``.

    Examples
    --------
    >>> plain_name("a.bin", "member file name")
    'a.bin'
    """
    problem = _problem(name) or ("contains a '/'" if "/" in name else None)
    if problem:
        raise ValueError(f"{what} {name!r} {problem}; expected a plain file name (e.g. a.bin)")
    return name


def inside(root: Path, name: str, where: str) -> Path:
    """``root / name`` after checking that it stays inside ``root`` once links are followed.

    Parameters
    ----------
    root : Path
        The store (or output) folder.
    name : str
        A relative path read from a manifest.
    where : str
        The manifest, for the error message.

    Returns
    -------
    Path
        ``root / name``.

    Raises
    ------
    IntegrityError
        If ``name`` is not a plain relative path or resolves (through a symbolic link) outside
        ``root``.
    """
    try:
        relative_path(name, "path")
    except ValueError as exc:
        raise IntegrityError(f"{where}: {exc}") from None
    base = os.path.realpath(root)
    resolved = os.path.realpath(Path(root) / name)
    if os.path.commonpath([base, resolved]) != base:
        raise IntegrityError(f"{where}: path {name!r} leads outside {root} (a symbolic link?)")
    return Path(root) / name


def check_paths(root: Path, names: Iterable[str], where: str) -> None:
    """Every name inside ``root`` and no two the same; raise IntegrityError otherwise."""
    seen: set[str] = set()
    for name in names:
        inside(root, name, where)
        if name in seen:
            raise IntegrityError(f"{where}: two shards share the path {name!r}")
        seen.add(name)
