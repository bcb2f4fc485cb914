"""Decode any convertible store (initial, merged, split, general, layered) into files or stdout."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from redundancy.convertible.stores import general, layered, scalar, split
from redundancy.errors import ParameterError


def _decoder(store: Path) -> Callable[..., list[Path]]:
    """The decode function for the kind of store in ``store``."""
    if layered.is_layered_store(store):
        return layered.decode_layered
    if split.is_split_store(store):
        return split.decode_split
    if general.is_general_store(store):
        return general.decode_general
    if (store / scalar.MERGED_NAME).is_file():
        return scalar.decode_merged

    def initial(store: Path, output: Path, force: bool, progress: object) -> list[Path]:
        scalar.decode_initial(store, output, force)
        return [Path(output)]

    return initial


def file_count(store: Path) -> int:
    """How many files ``store`` decodes into (1 for an initial or split store)."""
    store = Path(store)
    if layered.is_layered_store(store):
        return len(layered.load_layered(store)[0].members)
    if general.is_general_store(store):
        return len(general.load_general(store)[0].members)
    if (store / scalar.MERGED_NAME).is_file():
        return len(scalar.load_merged(store)[0].members)
    return 1


def decode(
    store: Path,
    output: Path,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Recover the file(s) of any convertible store, each checked by its SHA-256.

    Parameters
    ----------
    store : Path
        An initial store (``convert encode``) or the result of ``convert run``.
    output : Path
        The output file (a store of one file) or folder (several files, written under their
        recorded names, which must be plain names).
    force : bool
        Replace existing output files; without it they are refused.
    progress : callable, optional
        Called with the number of bytes decoded as decoding goes.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ParameterError
        An output exists (without ``force``) or is of the wrong kind.
    IntegrityError
        The store's manifest is malformed, inconsistent, or names a path outside the store.
    DecodeError
        Too few good shards are left to recover the data (nothing is written then).
    """
    store = Path(store)
    if not store.is_dir():
        raise ParameterError(f"{store}: no such store folder")
    return _decoder(store)(store, Path(output), force=force, progress=progress)


def decode_to_stream(
    store: Path, stream: BinaryIO | None = None, progress: Callable[[int], None] | None = None
) -> int:
    """Decode a one-file store to ``stream`` (default: stdout); return the bytes written.

    The file is decoded and checked (SHA-256) into a private temporary folder first, so the
    stream receives only verified data, or nothing.

    Raises
    ------
    ParameterError
        If ``store`` decodes into several files (those need an output folder).
    """
    store = Path(store)
    count = file_count(store) if store.is_dir() else 1
    if count != 1:
        raise ParameterError(f"{store} holds {count} files; decode it into a folder, not '-'")
    with tempfile.TemporaryDirectory(prefix="redundancy-decode-") as tmp:
        (path,) = decode(store, Path(tmp) / "decoded", progress=progress)
        target = stream or sys.stdout.buffer
        with path.open("rb") as source:
            shutil.copyfileobj(source, target)
        target.flush()
        return path.stat().st_size
