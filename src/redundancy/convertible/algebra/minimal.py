"""Exhaustive check that no linear conversion reads fewer symbols than a given construction.

A linear conversion reads a set S of stored symbols (rows of the initial generators) and outputs
combinations of them, so it can produce the target rows T iff span(T) is inside span(S). Data of
different initial codewords are independent, so each codeword's share of T must come from that
codeword's reads alone: the fewest total reads is the sum of per-codeword minima.

Per codeword, a minimal S is linearly independent and |S| = dim span(T) + rank(pi S), where pi is
the quotient map by span(T) (the part of span(S) that is not target). Every subset of S then has
pi-rank at most rank(pi S), so a depth-first search over independent subsets in index order,
pruned when the pi-rank exceeds ``limit``, visits every read set of at most
dim span(T) + limit symbols: if it finds none, none exists.
"""

from __future__ import annotations

import numpy as np

from redundancy import gf256
from redundancy.gf256 import MUL_TABLE


def _eliminate(rows: np.ndarray, pivot_row: np.ndarray) -> np.ndarray:
    """Subtract the multiple of ``pivot_row`` that clears its leading column from every row."""
    column = int(np.flatnonzero(pivot_row)[0])
    factors = MUL_TABLE[rows[:, column], int(gf256.inv(pivot_row[column]))]
    return rows ^ MUL_TABLE[factors[:, None], pivot_row[None, :]]


def _quotient(symbols: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each symbol reduced modulo span(targets): a representative of pi(symbol)."""
    out = symbols.copy()
    basis = targets.copy()
    while basis.shape[0]:
        row, basis = basis[0], basis[1:]
        if row.any():
            out = _eliminate(out, row)
            basis = _eliminate(basis, row)
    return out


def cheaper_read_set(
    symbols: np.ndarray, targets: np.ndarray, limit: int
) -> tuple[tuple[int, ...] | None, int]:
    """A read set S with span(targets) in span(S) and rank(pi S) <= limit, or None; also nodes.

    Such an S has dim span(targets) + rank(pi S) symbols. The second value counts the search
    nodes visited (for reporting how exhaustive the search was).
    """
    need = gf256.rank(targets)
    visited = 0

    def search(
        offset: int, own: np.ndarray, quot: np.ndarray, chosen: tuple[int, ...], q_rank: int
    ) -> tuple[int, ...] | None:
        """Extend ``chosen`` with symbols offset.. (rows reduced modulo the chosen spans)."""
        nonlocal visited
        for j in range(own.shape[0]):
            if not own[j].any():  # dependent on what is chosen: never in a minimal read set
                continue
            grows = bool(quot[j].any())
            if q_rank + grows > limit:
                continue
            visited += 1
            picked = (*chosen, offset + j)
            if len(picked) - (q_rank + grows) == need:
                return picked
            rest = quot[j + 1 :]
            found = search(
                offset + j + 1,
                _eliminate(own[j + 1 :], own[j]),
                _eliminate(rest, quot[j]) if grows else rest,
                picked,
                q_rank + grows,
            )
            if found is not None:
                return found
        return None

    if need == 0:
        return (), 0
    result = search(0, symbols, _quotient(symbols, targets), (), 0)
    return result, visited
