"""Encode bytes into n nodes, repair one node from d helpers, collect the data from k nodes.

Bytes are laid out as B_s rows of L bytes (L = stripes); each byte column is one stripe of the
code. Node contents are (alpha, L) uint8 arrays; a helper sends one (L,) array (beta = 1).
All data-path products go through :func:`redundancy.gf256.matmul`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from redundancy import gf256
from redundancy.errors import DecodeError, IntegrityError, ParameterError
from redundancy.gf256 import independent_rows, left_solve
from redundancy.regenerating.construction import Construction, build
from redundancy.regenerating.params import RegenParams
from redundancy.regenerating.plan import EncodePlan, block_stripes


class RegeneratingCode:
    """A product-matrix MBR or MSR code (secure when ``params.l > 0``).

    Data of ``size`` bytes is laid out as L = ``stripes(size)`` stripes; node i stores an
    (alpha, L) uint8 array. Any k nodes give the data back (:meth:`decode`); a lost node is
    rebuilt from d helpers that each send one (L,) array (:meth:`helper_symbols`,
    :meth:`repair`).

    Parameters
    ----------
    params : RegenParams, optional
        The code's parameters (default ``RegenParams()``: MBR, n=6, k=3, d=4).

    Raises
    ------
    ParameterError
        From :meth:`encode`, :meth:`repair` and :meth:`decode` for a node index out of range or
        an ``out`` array of the wrong shape.
    DecodeError
        From :meth:`repair` and :meth:`decode` with fewer than d helpers or k nodes.
    IntegrityError
        From :meth:`repair` and :meth:`decode` for node contents of the wrong shape or dtype.

    Examples
    --------
    >>> from redundancy.regenerating import RegenParams
    >>> code = RegeneratingCode(RegenParams("mbr", n=6, k=3, d=4, l=1))
    >>> nodes = code.encode(b"hello, regenerating codes", rng=np.random.default_rng(0))
    >>> nodes.shape  # (n, alpha, L)
    (6, 4, 5)
    >>> code.decode({1: nodes[1], 3: nodes[3], 5: nodes[5]}, size=25)
    b'hello, regenerating codes'
    >>> sent = {j: code.helper_symbols(nodes[j], failed=0) for j in (1, 2, 3, 4)}
    >>> bool(np.array_equal(code.repair(0, sent), nodes[0]))
    True
    """

    def __init__(self, params: RegenParams | None = None) -> None:
        self.params = params or RegenParams()
        self.construction: Construction = build(self.params)
        self._plan = EncodePlan(self.construction.generators)
        self._repair_cache: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self._decode_cache: dict[tuple[int, ...], tuple[list[int], np.ndarray]] = {}

    # ------------------------------------------------------------------ sizes
    def stripes(self, size: int) -> int:
        """L: stripes (bytes per sub-shard) needed for ``size`` bytes of data (at least 1)."""
        return max(1, -(-size // self.params.secure_symbols))

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        data: bytes | np.ndarray,
        rng: np.random.Generator | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return node contents, shape (n, alpha, L). Keys come from ``rng`` or os.urandom.

        ``out``: a preallocated (n, alpha, L) uint8 C-contiguous array to fill and return (reusing
        one across calls saves allocating and first-touching the whole output each time).
        """
        p = self.params
        raw = self._raw(data)
        length = self.stripes(raw.size)
        shape = (p.n, p.alpha, length)
        if out is None:
            out = np.empty(shape, dtype=np.uint8)
        elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ParameterError(f"out must be a C-contiguous uint8 array of shape {shape}")
        self._plan.run(self._sources(raw, length, rng), out.reshape(p.n * p.alpha, length))
        return out

    def encode_blocks(
        self, data: bytes | np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[int, Iterator[tuple[int, int, list[np.ndarray]]]]:
        """Stream the encoding: L, and blocks (start, stop, rows) of stripes [start, stop).

        ``rows[i * alpha + t]`` is node i's symbol t over those stripes: a view of the input for
        verbatim (systematic) rows, else a row of one small buffer reused by every block, so the
        (n, alpha, L) output is never materialised. Consume each block before taking the next.
        """
        p = self.params
        raw = self._raw(data)
        length = self.stripes(raw.size)
        sources = self._sources(raw, length, rng)

        def blocks() -> Iterator[tuple[int, int, list[np.ndarray]]]:
            chunk = min(length, block_stripes(len(sources)))
            scratch = np.empty((p.n * p.alpha, chunk), dtype=np.uint8)
            for start in range(0, length, chunk):
                stop = min(start + chunk, length)
                yield start, stop, self._plan.block_rows(sources, start, stop, scratch)

        return length, blocks()

    @staticmethod
    def _raw(data: bytes | np.ndarray) -> np.ndarray:
        raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else data
        return np.asarray(raw, dtype=np.uint8).ravel()

    def _sources(
        self, raw: np.ndarray, length: int, rng: np.random.Generator | None
    ) -> list[np.ndarray]:
        """The B message rows of L symbols (keys, then the data), as views where possible."""
        p = self.params
        count = p.key_symbols * length
        if rng is None:
            keys = np.frombuffer(os.urandom(count), dtype=np.uint8)
        else:
            keys = rng.integers(0, 256, count, dtype=np.uint8)
        rows = list(keys.reshape(p.key_symbols, length))
        full = raw.size // length
        rows.extend(raw[: full * length].reshape(full, length))
        if len(rows) < p.file_symbols:
            tail = np.zeros(length, dtype=np.uint8)
            tail[: raw.size - full * length] = raw[full * length :]
            rows.append(tail)
        zero = np.zeros(length, dtype=np.uint8)
        rows.extend(zero for _ in range(p.file_symbols - len(rows)))
        return rows

    # ------------------------------------------------------------------ repair
    def helper_symbols(self, content: np.ndarray, failed: int) -> np.ndarray:
        """What a helper storing ``content`` (alpha, L) sends to repair node ``failed``: (L,)."""
        self._check_node("failed", failed)
        vector = self.construction.helper_vector(failed)[None, :]
        return gf256.matmul(vector, self._as_content(content))[0]

    def repair_matrix(self, failed: int, helpers: Sequence[int]) -> np.ndarray:
        """alpha x d matrix turning the helpers' symbols into the lost node's content."""
        key = (failed, tuple(helpers))
        if key not in self._repair_cache:
            gen = self.construction.generators
            vector = self.construction.helper_vector(failed)
            received = np.stack([gf256.matmul_small(vector[None, :], gen[j])[0] for j in helpers])
            self._repair_cache[key] = left_solve(gen[failed], received)
        return self._repair_cache[key]

    def repair(self, failed: int, received: Mapping[int, np.ndarray]) -> np.ndarray:
        """Rebuild node ``failed`` from {helper index: (L,) symbols}; uses d of them."""
        p = self.params
        self._check_node("failed", failed)
        helpers = sorted(received)
        for j in helpers:
            self._check_node("helper", j)
        if failed in received:
            raise ParameterError(f"helper {failed} is the failed node itself")
        if len(helpers) < p.d:
            raise DecodeError(f"repair needs d={p.d} helpers, got {len(helpers)}")
        helpers = helpers[: p.d]
        symbols = [np.ascontiguousarray(received[j], dtype=np.uint8) for j in helpers]
        return gf256.matmul(self.repair_matrix(failed, helpers), symbols)

    # ------------------------------------------------------------------ data collection
    def decode_plan(self, nodes: Sequence[int]) -> tuple[list[int], np.ndarray]:
        """Rows of the stacked node contents to read, and the matrix giving the secret."""
        key = tuple(nodes)
        if key not in self._decode_cache:
            p = self.params
            stacked = self.construction.generators[list(nodes)].reshape(-1, p.file_symbols)
            rows = independent_rows(stacked)
            if len(rows) < p.file_symbols:
                raise DecodeError(f"nodes {list(nodes)} do not determine the data")
            inverse = gf256.inverse(np.ascontiguousarray(stacked[rows]))
            self._decode_cache[key] = (rows, inverse[p.key_symbols :])
        return self._decode_cache[key]

    def decode(self, contents: Mapping[int, np.ndarray], size: int) -> bytes:
        """Recover ``size`` bytes from {node index: (alpha, L) content}; uses k of the nodes."""
        p = self.params
        nodes = sorted(contents)
        for i in nodes:
            self._check_node("node", i)
        if len(nodes) < p.k:
            raise DecodeError(f"data collection needs k={p.k} nodes, got {len(nodes)}")
        nodes = nodes[: p.k]
        blocks = [self._as_content(contents[i]) for i in nodes]
        if len({b.shape for b in blocks}) != 1:
            raise IntegrityError(f"node contents differ in shape: {[b.shape for b in blocks]}")
        if size > p.secure_symbols * blocks[0].shape[1]:
            raise ParameterError(f"size={size} exceeds what {blocks[0].shape[1]} stripes hold")
        rows, matrix = self.decode_plan(nodes)
        alpha = p.alpha
        secret = gf256.matmul(matrix, [blocks[r // alpha][r % alpha] for r in rows])
        return secret.reshape(-1)[:size].tobytes()

    # ------------------------------------------------------------------ checks
    def _check_node(self, name: str, index: int) -> None:
        if not 0 <= index < self.params.n:
            raise ParameterError(
                f"{name}={index} is out of range (allowed: 0..{self.params.n - 1})"
            )

    def _as_content(self, content: np.ndarray) -> np.ndarray:
        arr = np.asarray(content)
        if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[0] != self.params.alpha:
            raise IntegrityError(
                f"node content must be a ({self.params.alpha}, L) uint8 array, got "
                f"{arr.dtype} {arr.shape}"
            )
        return arr
