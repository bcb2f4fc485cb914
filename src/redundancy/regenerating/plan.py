"""The encode data path: node symbols grouped by the message symbols they read.

Row r of the flattened generator (n*alpha x B) is node r // alpha's symbol r % alpha. Rows with the
same support (nonzero columns) form one group and cost one ``gf256.matmul`` of the group's rows on
only those sources, so structural zeros are never multiplied (ISA-L does not skip zero
coefficients: a dense n*alpha x B product costs several times more). Rows that are a plain copy of
one message symbol (systematic nodes) are copied, not multiplied. Sources and outputs are passed as
row views: no stacking, no gathering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from redundancy import gf256

CACHE_BYTES = 4 << 20  # one block of all B source rows should stay in cache (L2/L3)


@dataclass(frozen=True)
class Group:
    """Output rows computed together from the same message symbols."""

    rows: np.ndarray  # indices into the flattened (n*alpha, L) output
    support: list[int]  # message symbols read
    matrix: np.ndarray  # len(rows) x len(support) coefficients


class EncodePlan:
    """Precomputed groups and copies for ``out = generator . x`` on (B, L) data."""

    def __init__(self, generator: np.ndarray) -> None:
        flat = generator.reshape(-1, generator.shape[-1])
        by_support: dict[tuple[int, ...], list[int]] = {}
        for r, row in enumerate(flat):
            by_support.setdefault(tuple(np.flatnonzero(row).tolist()), []).append(r)
        self.rows = flat.shape[0]
        self.copies: list[tuple[int, int]] = []  # (output row, message symbol)
        self.zeros: list[int] = []
        self.groups: list[Group] = []
        for support, rows in by_support.items():
            if not support:
                self.zeros.extend(rows)
            elif len(support) == 1 and all(flat[r, support[0]] == 1 for r in rows):
                self.copies.extend((r, support[0]) for r in rows)
            else:
                matrix = np.ascontiguousarray(flat[np.ix_(rows, list(support))])
                self.groups.append(Group(np.array(rows), list(support), matrix))

    def run(self, sources: Sequence[np.ndarray], out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (n*alpha, L) from B source rows of length L (1-D contiguous views).

        Copies and zero rows are written first, each as one sequential pass, then the products
        block by block (a block of every source row stays in cache for all the groups).
        """
        length = out.shape[1]
        chunk = _chunk(len(sources))
        for r, s in self.copies:
            out[r] = sources[s]
        for r in self.zeros:
            out[r] = 0
        for start in range(0, length, chunk):
            stop = min(start + chunk, length)
            self.run_products(sources, start, stop, out[:, start:stop])
        return out

    def block_rows(
        self, sources: Sequence[np.ndarray], start: int, stop: int, scratch: np.ndarray
    ) -> list[np.ndarray]:
        """Stripes [start, stop) of every output row, without copying the verbatim rows.

        Copy rows are views of the sources, computed rows are rows of ``scratch`` (n*alpha, >=
        stop - start, reused by the caller: the views are valid until it is written again).
        """
        width = stop - start
        out = scratch[:, :width]
        self.run_products(sources, start, stop, out)
        rows = list(out)
        for r, s in self.copies:
            rows[r] = sources[s][start:stop]
        for r in self.zeros:
            out[r] = 0
        return rows

    def run_products(
        self, sources: Sequence[np.ndarray], start: int, stop: int, out: np.ndarray
    ) -> None:
        """Only the multiplied rows of ``out`` (n*alpha, stop - start); copies, zeros untouched."""
        for group in self.groups:
            block = [sources[s][start:stop] for s in group.support]
            target = _row_view(out, group.rows)
            if target is None:
                out[group.rows] = gf256.matmul(group.matrix, block)
            else:
                gf256.matmul(group.matrix, block, out=target)


def block_stripes(sources: int) -> int:
    """Stripes per encode block for ``sources`` message symbols (see ``_chunk``)."""
    return _chunk(sources)


def _chunk(sources: int) -> int:
    """Stripes per block: a power of two in [2^15, 2^18] keeping the block's sources in cache."""
    return 1 << min(18, max(15, (CACHE_BYTES // max(sources, 1)).bit_length() - 1))


def _row_view(out: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """A view of ``out[rows]`` when the rows are evenly spaced, else None."""
    if len(rows) == 1:
        return out[rows[0] : rows[0] + 1]
    step = int(rows[1] - rows[0])
    if step <= 0 or np.any(np.diff(rows) != step):
        return None
    return out[rows[0] : rows[-1] + 1 : step]
