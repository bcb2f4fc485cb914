"""Node files on disk: encode a file into n node files, repair a lost one, decode the original.

A node file is ``MAGIC``, a 4-byte little-endian header length, a JSON header (parameters, node
index, file size, stripes L, SHA-256 of the file) and the node's alpha x L payload. Every write is
atomic. The SHA-256 is the last guard: data that fails it is never returned.

Node files are untrusted input: every header field is checked (types, index in 0..n-1, stripes
equal to what the file size needs, payload size) before it is used, two files claiming one index
are refused, and the only files written are ``nodeXXX.regen`` inside the folder and the chosen
output, neither replaced without ``force``.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from redundancy.errors import DecodeError, IntegrityError, ParameterError, RedundancyError
from redundancy.regenerating.code import RegeneratingCode
from redundancy.regenerating.params import RegenParams
from redundancy.regenerating.robust import Report, robust_decode, robust_repair
from redundancy.storage_io import atomic_open

MAGIC = b"REGEN\x01"
SHARED_FIELDS = ("params", "size", "stripes", "sha256")
HEADER_FIELDS = {*SHARED_FIELDS, "index"}
NODE_NAME = re.compile(r"^node\d{3}\.regen$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def node_path(folder: Path, index: int) -> Path:
    """Where node ``index`` lives inside ``folder``."""
    return Path(folder) / f"node{index:03d}.regen"


def write_node(path: Path, header: dict, content: np.ndarray) -> None:
    """Write one node file atomically."""
    with atomic_open(path) as handle:
        handle.write(_header_bytes(header))
        handle.write(np.ascontiguousarray(content).tobytes())


def _integer(header: dict, field: str, path: Path) -> int:
    value = header[field]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise IntegrityError(f"{path}: header field {field}={value!r} is not a count (int >= 0)")
    return value


def check_header(header: object, path: Path) -> RegenParams:
    """Validate a node-file header; return its parameters.

    Raises
    ------
    IntegrityError
        If a field is missing, unknown or of the wrong type, the index is outside 0..n-1, the
        SHA-256 is not 64 hex digits, or the stripe count is not what ``size`` bytes need.
    """
    if not isinstance(header, dict) or set(header) != HEADER_FIELDS:
        fields = sorted(header) if isinstance(header, dict) else type(header).__name__
        raise IntegrityError(
            f"{path}: header has fields {fields}, expected {sorted(HEADER_FIELDS)}"
        )
    try:
        params = RegenParams.from_dict(header["params"])
    except (RedundancyError, TypeError) as exc:
        raise IntegrityError(f"{path}: bad code parameters in header ({exc})") from None
    index, size, stripes = (_integer(header, f, path) for f in ("index", "size", "stripes"))
    if index >= params.n:
        raise IntegrityError(f"{path}: node index {index} is outside 0..{params.n - 1}")
    if not isinstance(header["sha256"], str) or not _SHA256.match(header["sha256"]):
        raise IntegrityError(f"{path}: header sha256 is not 64 lowercase hex digits")
    needed = max(1, -(-size // params.secure_symbols))
    if stripes != needed:
        raise IntegrityError(
            f"{path}: header says {stripes} stripes, a {size}-byte file needs {needed}"
        )
    return params


def read_node(path: Path) -> tuple[dict, np.ndarray]:
    """Read and validate one node file: (header, (alpha, L) content)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise IntegrityError(f"cannot read node file {path}: {exc.strerror}") from None
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 4:
        raise IntegrityError(f"{path} is not a regenerating-code node file")
    (size,) = struct.unpack_from("<I", raw, len(MAGIC))
    start = len(MAGIC) + 4
    if size > len(raw) - start:
        raise IntegrityError(f"{path}: header length {size} runs past the end of the file")
    try:
        header = json.loads(raw[start : start + size])
    except (ValueError, RecursionError) as exc:
        raise IntegrityError(f"{path}: header is not JSON ({str(exc).splitlines()[0]})") from None
    params = check_header(header, Path(path))
    stripes = header["stripes"]
    payload = np.frombuffer(raw, dtype=np.uint8, offset=start + size)
    if payload.size != params.alpha * stripes:
        raise IntegrityError(
            f"{path}: payload is {payload.size} bytes, header says {params.alpha} x {stripes}"
        )
    return header, payload.reshape(params.alpha, stripes)


@dataclass
class NodeSet:
    """The node files found in a folder, checked to belong to one encoding."""

    folder: Path
    header: dict
    paths: dict[int, Path]

    @property
    def params(self) -> RegenParams:
        """The code's parameters."""
        return RegenParams.from_dict(self.header["params"])

    @classmethod
    def open(cls, folder: Path) -> NodeSet:
        """Index the node files in ``folder``; raise IntegrityError if they disagree."""
        if not Path(folder).is_dir():
            raise ParameterError(f"{folder}: no such folder (expected a folder of node files)")
        paths: dict[int, Path] = {}
        header: dict | None = None
        for path in sorted(Path(folder).glob("node*.regen")):
            head, _ = read_node(path)
            shared = {f: head[f] for f in SHARED_FIELDS}
            if header is None:
                header = shared
            elif shared != header:
                raise IntegrityError(f"{path.name} belongs to a different encoding than the rest")
            index = head["index"]
            if index in paths:
                raise IntegrityError(
                    f"{paths[index].name} and {path.name} both claim to be node {index}"
                )
            paths[index] = path
        if header is None:
            raise DecodeError(f"no node files (node*.regen) in {folder}")
        return cls(Path(folder), header, paths)

    def content(self, index: int) -> np.ndarray:
        """Node ``index``'s content (alpha, L)."""
        return read_node(self.paths[index])[1]


def _header_bytes(header: dict) -> bytes:
    blob = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack("<I", len(blob)) + blob


def _existing_nodes(folder: Path) -> list[Path]:
    """The node files (``nodeXXX.regen``) already in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if NODE_NAME.match(p.name))


def encode_file(
    source: Path,
    folder: Path,
    params: RegenParams,
    rng: np.random.Generator | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Encode ``source`` into n node files ``nodeXXX.regen`` in ``folder``.

    Streamed block by block (:meth:`RegeneratingCode.encode_blocks`): verbatim rows are written
    straight from the input and computed rows from one reused block buffer, so the n x alpha x L
    output is never held in memory. Each file is written atomically (all or none replaced).

    Parameters
    ----------
    source : Path
        The file to encode.
    folder : Path
        Where the node files go (created if missing).
    params : RegenParams
        The code's parameters.
    rng : numpy.random.Generator, optional
        Source of the secrecy keys (default ``os.urandom``); seed one only in tests.
    force : bool, default False
        Replace node files already in ``folder`` (and remove those of the old encoding beyond
        the new n); without it such a folder is refused.
    progress : callable, optional
        Called with the number of stripes encoded by each block.

    Returns
    -------
    list of Path
        The n node files, in node order.

    Raises
    ------
    ParameterError
        If ``source`` is not a file, ``folder`` is a file, or it holds node files and ``force``
        is not given.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from redundancy.regenerating import RegenParams
    >>> work = Path(tempfile.mkdtemp())
    >>> _ = (work / "data.txt").write_bytes(b"x" * 100)
    >>> paths = encode_file(work / "data.txt", work / "nodes", RegenParams(n=6, k=3, d=4))
    >>> [path.name for path in paths][:2]
    ['node000.regen', 'node001.regen']
    >>> shutil.rmtree(work)
    """
    folder = Path(folder)
    if not Path(source).is_file():
        raise ParameterError(f"file={source} does not exist or is not a regular file")
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"out={folder} is a file; expected a folder for the node files")
    old = _existing_nodes(folder)
    if old and not force:
        raise ParameterError(
            f"{folder} already holds {len(old)} node file(s); pass --force to replace them"
        )
    data = Path(source).read_bytes()
    code = RegeneratingCode(params)
    stripes, blocks = code.encode_blocks(data, rng)
    header = {
        "params": params.to_dict(),
        "size": len(data),
        "stripes": int(stripes),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    paths = [node_path(folder, i) for i in range(params.n)]
    with ExitStack() as stack:
        handles = [stack.enter_context(atomic_open(path)) for path in paths]
        bases = []
        for i, handle in enumerate(handles):
            handle.write(_header_bytes({**header, "index": i}))
            bases.append(handle.tell())
        for start, stop, rows in blocks:
            for r, row in enumerate(rows):
                node, symbol = divmod(r, params.alpha)
                handle = handles[node]
                handle.seek(bases[node] + symbol * stripes + start)
                handle.write(memoryview(row))
            if progress:
                progress(stop - start)
    for stale in set(old) - set(paths):
        stale.unlink(missing_ok=True)
    return paths


def decode_bytes(folder: Path) -> tuple[bytes, Report]:
    """The original file's bytes from the node files in ``folder`` (on-demand, b liars fixed).

    Raises
    ------
    IntegrityError
        If a node file is malformed or the files disagree.
    DecodeError
        If too few nodes are left or more than b lie (the SHA-256 check fails).
    """
    nodes = NodeSet.open(folder)
    code = RegeneratingCode(nodes.params)
    data, report = robust_decode(code, nodes.content, nodes.header["size"], sorted(nodes.paths))
    if hashlib.sha256(data).hexdigest() != nodes.header["sha256"]:
        raise DecodeError(
            f"{folder}: decoded data fails its SHA-256: more nodes are corrupt than b="
            f"{nodes.params.b}"
        )
    return data, report


def decode_file(folder: Path, target: Path, force: bool = False) -> Report:
    """Rebuild the original file from the node files in ``folder`` into ``target``.

    Reads k node files (more only if some lie, up to b of them are corrected); ``target`` is
    written atomically and only after the SHA-256 check.

    Parameters
    ----------
    folder : Path
        The folder of node files.
    target : Path
        Where the file goes.
    force : bool, default False
        Replace an existing ``target``; without it an existing file is refused.

    Returns
    -------
    Report
        Nodes contacted and found corrupt.

    Raises
    ------
    ParameterError
        If ``target`` is a folder, or exists and ``force`` is not given.
    IntegrityError
        If a node file is malformed or the files disagree.
    DecodeError
        If fewer than k nodes are left or more than b lie (the SHA-256 check fails).

    Examples
    --------
    >>> import shutil, tempfile
    >>> from redundancy.regenerating import RegenParams
    >>> work = Path(tempfile.mkdtemp())
    >>> _ = (work / "data.txt").write_bytes(b"x" * 100)
    >>> _ = encode_file(work / "data.txt", work / "nodes", RegenParams(n=6, k=3, d=4))
    >>> (work / "nodes" / "node000.regen").unlink()
    >>> decode_file(work / "nodes", work / "copy.txt")
    Report(contacted=[1, 2, 3], corrupt=[], rounds=1)
    >>> (work / "copy.txt").read_bytes() == b"x" * 100
    True
    >>> shutil.rmtree(work)
    """
    target = Path(target)
    if target.is_dir():
        raise ParameterError(f"{target} is a folder; expected a file name")
    if target.exists() and not force:
        raise ParameterError(f"{target} exists; pass --force to replace it")
    data, report = decode_bytes(folder)
    with atomic_open(target) as handle:
        handle.write(data)
    return report


def repair_file(
    folder: Path, failed: int, helpers: list[int] | None = None, force: bool = False
) -> tuple[Path, Report]:
    """Regenerate node ``failed`` into ``folder`` from d helpers.

    Each helper reads its own file and sends only its beta = 1 symbol per stripe.

    Parameters
    ----------
    folder : Path
        The folder of node files.
    failed : int
        The node to regenerate, 0..n-1.
    helpers : list of int, optional
        Helpers to ask, in order (default every node file present); more than d are asked only
        if some lie.
    force : bool, default False
        Replace a node file that still exists (e.g. one found corrupt); without it it is refused.

    Returns
    -------
    path : Path
        The regenerated node file.
    report : Report
        Helpers contacted and found corrupt.

    Raises
    ------
    ParameterError
        If ``failed`` is out of range, its file exists and ``force`` is not given, or
        ``helpers`` lists a node twice.
    IntegrityError
        If a node file is malformed or the files disagree.
    DecodeError
        If a named helper's file is missing, or too few consistent helpers are left.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from redundancy.regenerating import RegenParams
    >>> work = Path(tempfile.mkdtemp())
    >>> _ = (work / "data.txt").write_bytes(b"x" * 100)
    >>> _ = encode_file(work / "data.txt", work / "nodes", RegenParams(n=6, k=3, d=4))
    >>> (work / "nodes" / "node002.regen").unlink()
    >>> path, report = repair_file(work / "nodes", 2)
    >>> path.name, report.contacted
    ('node002.regen', [0, 1, 3, 4])
    >>> shutil.rmtree(work)
    """
    nodes = NodeSet.open(folder)
    params = nodes.params
    if not 0 <= failed < params.n:
        raise ParameterError(f"failed={failed} is out of range (allowed: 0..{params.n - 1})")
    path = node_path(folder, failed)
    if (failed in nodes.paths or path.exists()) and not force:
        raise ParameterError(f"{path} exists; pass --force to regenerate it anyway")
    available = [j for j in sorted(nodes.paths) if j != failed]
    if helpers is not None and len(set(helpers)) != len(helpers):
        raise ParameterError(f"helpers={helpers} lists a node twice")
    order = available if helpers is None else helpers
    missing = sorted(set(order) - set(available))
    if missing:
        raise DecodeError(f"helper node file(s) {missing} not found in {folder}")
    code = RegeneratingCode(params)
    content, report = robust_repair(
        code, failed, lambda j: code.helper_symbols(nodes.content(j), failed), order
    )
    write_node(path, {**nodes.header, "index": failed}, content)
    return path, report
