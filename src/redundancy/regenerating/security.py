"""Secrecy as linear algebra: what an eavesdropper on a set of nodes learns about the secret.

The eavesdropper sees, for each watched node e, its stored symbols G_e x and every symbol any
helper j could send to e during a repair, v_e^T G_j x. With x = (keys r, secret s) and r uniform,
the mutual information I(s; O x) in symbols is rank(O) - rank(O restricted to the key columns):
zero exactly when the secret's columns lie in the span of the keys' columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

import numpy as np

from redundancy import gf256
from redundancy.regenerating.code import RegeneratingCode


def observation_matrix(code: RegeneratingCode, watched: Iterable[int]) -> np.ndarray:
    """Stack everything the watched nodes see as linear maps of the message x = (keys, secret).

    Parameters
    ----------
    code : RegeneratingCode
        The code.
    watched : iterable of int
        Node indices in 0..n-1.

    Returns
    -------
    numpy.ndarray
        One uint8 row per symbol the watched nodes store or receive in any repair (alpha + n - 1
        rows per node), with ``params.file_symbols`` columns.

    Examples
    --------
    >>> from redundancy.regenerating import RegenParams
    >>> observation_matrix(RegeneratingCode(RegenParams(n=6, k=3, d=4)), [2]).shape
    (9, 9)
    """
    gen = code.construction.generators
    n = code.params.n
    rows: list[np.ndarray] = []
    for e in watched:
        rows.append(gen[e])
        vector = code.construction.helper_vector(e)[None, :]
        rows.extend(gf256.matmul_small(vector, gen[j]) for j in range(n) if j != e)
    return np.concatenate(rows) if rows else np.zeros((0, gen.shape[2]), dtype=np.uint8)


def leakage(code: RegeneratingCode, watched: Iterable[int]) -> int:
    """Count the symbols of information the watched nodes get about the secret.

    Parameters
    ----------
    code : RegeneratingCode
        The code.
    watched : iterable of int
        Node indices in 0..n-1 whose storage and repair traffic the eavesdropper sees.

    Returns
    -------
    int
        Mutual information in symbols per stripe (0 = perfectly secure).

    Examples
    --------
    >>> from redundancy.regenerating import RegenParams
    >>> leakage(RegeneratingCode(RegenParams(n=6, k=3, d=4, l=1)), [2])
    0
    >>> leakage(RegeneratingCode(RegenParams(n=6, k=3, d=4, l=0)), [2])  # no keys: it all leaks
    4
    """
    obs = observation_matrix(code, watched)
    keys = code.params.key_symbols
    return gf256.rank(obs) - (gf256.rank(obs[:, :keys]) if keys else 0)


def worst_leakage(code: RegeneratingCode, size: int | None = None) -> int:
    """Find the largest leakage over every set of ``size`` nodes, exhaustively.

    Parameters
    ----------
    code : RegeneratingCode
        The code.
    size : int, optional
        How many nodes the eavesdropper watches (default ``code.params.l``).

    Returns
    -------
    int
        The maximum of :func:`leakage` over all C(n, size) node sets.

    Examples
    --------
    >>> from redundancy.regenerating import RegenParams
    >>> code = RegeneratingCode(RegenParams(n=6, k=3, d=4, l=1))
    >>> worst_leakage(code), worst_leakage(code, size=2)  # two nodes see 4 + 3 symbols, 4 keys
    (0, 3)
    """
    size = code.params.l if size is None else size
    return max(leakage(code, watched) for watched in combinations(range(code.params.n), size))
