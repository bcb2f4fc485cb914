"""Node files on disk: encode a file into n node files, repair a lost one, decode the original.

A node file is ``MAGIC``, a 4-byte little-endian header length, a JSON header (parameters, node
index, file size, stripes L, SHA-256 of the file) and the node's alpha x L payload. Every write is
atomic. The SHA-256 is the last guard: data that fails it is never returned.
"""

from __future__ import annotations

import hashlib
import json
import struct
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from redundancy.errors import DecodeError, IntegrityError, ParameterError
from redundancy.regenerating.code import RegeneratingCode
from redundancy.regenerating.params import RegenParams
from redundancy.regenerating.robust import Report, robust_decode, robust_repair
from redundancy.storage_io import atomic_open

MAGIC = b"REGEN\x01"
SHARED_FIELDS = ("params", "size", "stripes", "sha256")


def node_path(folder: Path, index: int) -> Path:
    """Where node ``index`` lives inside ``folder``."""
    return Path(folder) / f"node{index:03d}.regen"


def write_node(path: Path, header: dict, content: np.ndarray) -> None:
    """Write one node file atomically."""
    with atomic_open(path) as handle:
        handle.write(_header_bytes(header))
        handle.write(np.ascontiguousarray(content).tobytes())


def read_node(path: Path) -> tuple[dict, np.ndarray]:
    """Read and validate one node file: (header, (alpha, L) content)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise IntegrityError(f"cannot read node file {path}: {exc}") from exc
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 4:
        raise IntegrityError(f"{path} is not a regenerating-code node file")
    (size,) = struct.unpack_from("<I", raw, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(raw[start : start + size])
        params = RegenParams.from_dict(header["params"])
        stripes = int(header["stripes"])
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{path}: bad header ({exc})") from exc
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
        paths: dict[int, Path] = {}
        header: dict | None = None
        for path in sorted(Path(folder).glob("node*.regen")):
            head, _ = read_node(path)
            shared = {f: head.get(f) for f in SHARED_FIELDS}
            if header is None:
                header = shared
            elif shared != header:
                raise IntegrityError(f"{path.name} belongs to a different encoding than the rest")
            paths[int(head["index"])] = path
        if header is None:
            raise DecodeError(f"no node files (node*.regen) in {folder}")
        return cls(Path(folder), header, paths)

    def content(self, index: int) -> np.ndarray:
        """Node ``index``'s content (alpha, L)."""
        return read_node(self.paths[index])[1]


def _header_bytes(header: dict) -> bytes:
    blob = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack("<I", len(blob)) + blob


def encode_file(
    source: Path, folder: Path, params: RegenParams, rng: np.random.Generator | None = None
) -> list[Path]:
    """Encode ``source`` into n node files in ``folder``; return their paths.

    Streamed block by block (:meth:`RegeneratingCode.encode_blocks`): verbatim rows are written
    straight from the input and computed rows from one reused block buffer, so the n x alpha x L
    output is never held in memory. Each file is written atomically (all or none replaced).
    """
    if not Path(source).is_file():
        raise ParameterError(f"file={source} does not exist or is not a regular file")
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
        for start, _, rows in blocks:
            for r, row in enumerate(rows):
                node, symbol = divmod(r, params.alpha)
                handle = handles[node]
                handle.seek(bases[node] + symbol * stripes + start)
                handle.write(memoryview(row))
    return paths


def decode_file(folder: Path, target: Path) -> Report:
    """Rebuild the original file from the node files in ``folder`` (on-demand, b liars fixed)."""
    nodes = NodeSet.open(folder)
    code = RegeneratingCode(nodes.params)
    data, report = robust_decode(code, nodes.content, nodes.header["size"], sorted(nodes.paths))
    if hashlib.sha256(data).hexdigest() != nodes.header["sha256"]:
        raise IntegrityError("decoded data fails its SHA-256: more nodes are corrupt than b")
    with atomic_open(Path(target)) as handle:
        handle.write(data)
    return report


def repair_file(folder: Path, failed: int, helpers: list[int] | None = None) -> tuple[Path, Report]:
    """Regenerate node ``failed`` into ``folder`` from its helpers; return path and report.

    Each helper reads its own file and sends only its beta = 1 symbol per stripe.
    """
    nodes = NodeSet.open(folder)
    params = nodes.params
    if not 0 <= failed < params.n:
        raise ParameterError(f"failed={failed} is out of range (allowed: 0..{params.n - 1})")
    available = [j for j in sorted(nodes.paths) if j != failed]
    order = available if helpers is None else helpers
    missing = sorted(set(order) - set(available))
    if missing:
        raise DecodeError(f"helper node file(s) {missing} not found in {folder}")
    code = RegeneratingCode(params)
    content, report = robust_repair(
        code, failed, lambda j: code.helper_symbols(nodes.content(j), failed), order
    )
    path = node_path(folder, failed)
    write_node(path, {**nodes.header, "index": failed}, content)
    return path, report
