"""A store spread over several roots (disks, mounts, buckets): where each shard lives, and which
roots a run may write into.

A multi-root manifest lists its node roots (``nodes``) and, for each shard, the node it lives on.
A root is recorded relative to the folder of the manifest that names it when both are local
folders (``"."`` is that folder itself, ``"../disk2/st"`` a sibling), else as an absolute path or
a URL. Every root holds a copy of the manifest, each recording the roots relative to itself, so
the store opens from any surviving root.

Trust (a manifest is untrusted input, see docs/security.md):

- Reading: a recorded root may be any local folder or a URL of a storage protocol in
  ``READ_PROTOCOLS`` (never http/ftp: a manifest must not make us contact arbitrary servers).
  Bytes read reach an output only after their CRC-32 and the file's SHA-256 match.
- Writing (``repair``): only into a root the user named on the command line in this run, a root
  inside the manifest's own folder (a relative path without ``..`` that does not leave it through
  a symbolic link), or a root that already holds
  a manifest of this very store (same ``store_id``), which only someone able to write there can
  have put there. Anything else is refused (exit 2) with the way to name it (``--replace``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from redundancy.erasure.location import StoreLocation, check_relpath
from redundancy.errors import IntegrityError, ParameterError, RedundancyError

READ_PROTOCOLS = ("file", "memory", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
MAX_ROOT_CHARS = 4096
HERE = "."


def check_recorded_root(text: object, what: str) -> str:
    """Return ``text`` if it is a root a manifest may record, else raise IntegrityError.

    Accepted: ``"."``; a relative path of plain names, possibly starting with ``..`` parts; an
    absolute path; a URL whose protocol is in ``READ_PROTOCOLS``. No control characters, at most
    4096 characters.

    Parameters
    ----------
    text
        The recorded root, as read from an untrusted manifest.
    what
        What it is, for the message (e.g. ``"node 3"``).

    Returns
    -------
    str
        ``text`` unchanged.

    Raises
    ------
    IntegrityError
        Naming ``what``, the value and what is accepted.

    Examples
    --------
    >>> check_recorded_root("../disk2/st", "node 1")
    '../disk2/st'
    >>> check_recorded_root("http://example.com/x", "node 1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    redundancy.errors.IntegrityError: node 1 'http://example.com/x' must be ...
    """
    accepted = (
        f"'.', a relative or absolute folder path, or a URL of {list(READ_PROTOCOLS)} "
        f"(no control characters, at most {MAX_ROOT_CHARS} characters)"
    )
    if (
        not isinstance(text, str)
        or not text
        or len(text) > MAX_ROOT_CHARS
        or any(ord(c) < 32 or ord(c) == 127 for c in text)
    ):
        raise IntegrityError(f"{what} {text!r} must be {accepted}")
    if "://" in text:
        if text.split("://", 1)[0] not in READ_PROTOCOLS:
            raise IntegrityError(f"{what} {text!r} must be {accepted}")
        return text
    if text == HERE or text.startswith("/"):
        return text
    parts = text.split("/")
    while parts and parts[0] == "..":
        parts.pop(0)
    if parts:
        try:
            check_relpath("/".join(parts), what)
        except IntegrityError:
            raise IntegrityError(f"{what} {text!r} must be {accepted}") from None
    return text


def is_inside(recorded: str) -> bool:
    """True if a recorded root lies inside the manifest's own folder (no ``..``, not absolute)."""
    return recorded == HERE or (
        "://" not in recorded and not recorded.startswith("/") and ".." not in recorded.split("/")
    )


def record_root(root: StoreLocation, base: StoreLocation) -> str:
    """How a manifest stored at ``base`` records ``root``: relative when both are local folders.

    Parameters
    ----------
    root
        The node root.
    base
        The folder (or URL) of the manifest being written.

    Returns
    -------
    str
        ``"."``, a relative path, an absolute path or a URL.

    Examples
    --------
    >>> record_root(StoreLocation("/mnt/d2/st"), StoreLocation("/mnt/d1/st"))
    '../../d2/st'
    """
    if root.local_root is not None and base.local_root is not None:
        relative = os.path.relpath(root.local_root.absolute(), base.local_root.absolute())
        return Path(relative).as_posix()
    if root.local_root is not None:
        return str(root.local_root.absolute())
    return root.url


def resolve_root(recorded: str, base: StoreLocation) -> StoreLocation:
    """The location a recorded root names, relative ones taken from ``base`` (the manifest's)."""
    if "://" in recorded or recorded.startswith("/"):
        return StoreLocation(recorded)
    if base.local_root is not None:
        return StoreLocation(os.path.normpath(base.local_root / recorded))
    if not is_inside(recorded):
        raise IntegrityError(
            f"node root {recorded!r} climbs out of the manifest's URL {base}; a store on a URL "
            "records its other roots as URLs"
        )
    if recorded == HERE:
        return base
    return StoreLocation(f"{base.url.rstrip('/')}/{PurePosixPath(recorded)}")


@dataclass
class NodeRoot:
    """One node root of a store as this run sees it."""

    index: int
    location: StoreLocation
    recorded: str  # as the opened manifest records it ("" for a root named in this run)
    named: bool  # given on the command line in this run

    def exists(self) -> bool:
        """True if the root folder (or URL prefix) exists and can be listed."""
        try:
            return self.location.exists()
        except (OSError, RedundancyError):
            return False


class Layout:
    """Where every shard of a store lives, and which roots this run may write into.

    Parameters
    ----------
    base
        The location of the manifest that was opened.
    manifest
        The validated manifest (``nodes`` None: every shard lives under ``base``).
    replacements
        Node index -> new root named on the command line (``repair --replace``).

    Raises
    ------
    ParameterError
        A replacement for a node the store does not have, or a single-root store.
    IntegrityError
        A recorded root that cannot be resolved.
    """

    def __init__(
        self,
        base: StoreLocation,
        manifest: object,
        replacements: dict[int, str] | None = None,
    ) -> None:
        self.base = base
        self.manifest = manifest
        nodes = getattr(manifest, "nodes", None)
        replacements = dict(replacements or {})
        if replacements and not nodes:
            raise ParameterError(
                f"{base} keeps every shard under one root; --replace applies to stores encoded "
                "with --nodes (re-encode with --nodes to spread it over roots)"
            )
        self.roots: list[NodeRoot] = []
        for index, recorded in enumerate(nodes or []):
            if index in replacements:
                location = StoreLocation(replacements.pop(index))
                self.roots.append(NodeRoot(index, location, "", named=True))
            else:
                self.roots.append(NodeRoot(index, resolve_root(recorded, base), recorded, False))
        if replacements:
            raise ParameterError(
                f"--replace names node(s) {sorted(replacements)}; the store has nodes "
                f"0..{len(self.roots) - 1}"
            )

    @property
    def multi_root(self) -> bool:
        """True if the store lists node roots."""
        return bool(self.roots)

    def node_of(self, shard: int) -> NodeRoot | None:
        """The node root shard ``shard`` lives on (None for a single-root store)."""
        if not self.roots:
            return None
        return self.roots[self.manifest.shards[shard].node]

    def shard_location(self, shard: int) -> StoreLocation:
        """The root holding shard ``shard``."""
        node = self.node_of(shard)
        return self.base if node is None else node.location

    def missing_roots(self) -> list[NodeRoot]:
        """Node roots that do not exist or cannot be listed (a failed disk, a lost bucket)."""
        return [node for node in self.roots if not node.exists()]

    def may_write(self, node: NodeRoot) -> bool:
        """True if this run may write into ``node`` (see the module docstring)."""
        if node.named:
            return True
        if is_inside(node.recorded) and self._resolves_inside(node.location):
            return True
        return _holds_this_store(node.location, getattr(self.manifest, "store_id", None))

    def _resolves_inside(self, location: StoreLocation) -> bool:
        """A root recorded inside the manifest's folder must stay there through symbolic links."""
        if self.base.local_root is None or location.local_root is None:
            return location.local_root is None and self.base.local_root is None
        inside = location.local_root.resolve().is_relative_to(self.base.local_root.resolve())
        return bool(inside)

    def check_writable(self, node: NodeRoot, shards: list[int]) -> None:
        """Raise ParameterError unless this run may write into ``node``."""
        if not self.may_write(node):
            raise ParameterError(
                f"node {node.index} root {node.location} (recorded as {node.recorded!r}) is "
                f"outside the manifest's folder and holds no manifest of this store; repair "
                f"writes shards {shards} only into roots you name: pass "
                f"--replace {node.index}={node.location} (or another root) to rebuild there"
            )


def _holds_this_store(location: StoreLocation, store_id: str | None) -> bool:
    from redundancy.erasure.manifest import load_manifest

    if store_id is None:
        return False
    try:
        return load_manifest(location).store_id == store_id
    except (OSError, RedundancyError):
        return False
