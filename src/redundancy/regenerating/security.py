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
    """Rows = every symbol the watched nodes store or receive in any repair, as maps of x."""
    gen = code.construction.generators
    n = code.params.n
    rows: list[np.ndarray] = []
    for e in watched:
        rows.append(gen[e])
        vector = code.construction.helper_vector(e)[None, :]
        rows.extend(gf256.matmul_small(vector, gen[j]) for j in range(n) if j != e)
    return np.concatenate(rows) if rows else np.zeros((0, gen.shape[2]), dtype=np.uint8)


def leakage(code: RegeneratingCode, watched: Iterable[int]) -> int:
    """Symbols of information the watched nodes get about the secret (0 = perfectly secure)."""
    obs = observation_matrix(code, watched)
    keys = code.params.key_symbols
    return gf256.rank(obs) - (gf256.rank(obs[:, :keys]) if keys else 0)


def worst_leakage(code: RegeneratingCode, size: int | None = None) -> int:
    """Maximum leakage over every set of ``size`` nodes (default l): exhaustive."""
    size = code.params.l if size is None else size
    return max(leakage(code, watched) for watched in combinations(range(code.params.n), size))
