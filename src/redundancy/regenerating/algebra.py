"""Reed-Solomon error location on top of gf256: parity checks, syndromes in bulk, and
Berlekamp-Welch on single positions.
"""

from __future__ import annotations

import numpy as np

from redundancy import gf256
from redundancy.errors import DecodeError


# --------------------------------------------------------------------------- Reed-Solomon
def parity_check(points: np.ndarray, kappa: int) -> np.ndarray:
    """H ((m-kappa) x m) with H V = 0 for V = vandermonde(points, kappa): [V2 V1^-1 | I]."""
    m = len(points)
    v = gf256.vandermonde(points, kappa)
    top = gf256.matmul_small(v[kappa:], gf256.inverse(v[:kappa])) if kappa else v[kappa:, :0]
    return np.hstack([top, np.eye(m - kappa, dtype=np.uint8)])


def poly_eval(coeffs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Evaluate sum_j c_j x^j at each point."""
    return gf256.matmul_small(gf256.vandermonde(points, len(coeffs)), coeffs.reshape(-1, 1))[:, 0]


def berlekamp_welch(points: np.ndarray, values: np.ndarray, kappa: int) -> list[int]:
    """Positions where ``values`` differ from the nearest polynomial of degree < kappa.

    Solves Q(x_i) = y_i E(x_i) with E monic of degree t = floor((m-kappa)/2); raises DecodeError
    when more than t positions are wrong (no such pair exists or the fit disagrees too often).
    """
    m = len(points)
    t = (m - kappa) // 2
    y = np.asarray(values, dtype=np.uint8)
    q_part = gf256.vandermonde(points, kappa + t)
    e_part = gf256.mul(y[:, None], gf256.vandermonde(points, t)) if t else q_part[:, :0]
    rhs = gf256.mul(y, gf256.power(points, t))
    system = np.hstack([q_part, e_part, rhs[:, None]])
    reduced, pivots = gf256.row_echelon(system)
    unknowns = kappa + 2 * t
    if unknowns in pivots:
        raise DecodeError(f"more than {t} corrupted pieces among {m}: cannot correct")
    solution = np.zeros(unknowns, dtype=np.uint8)
    for row, col in enumerate(pivots):
        solution[col] = reduced[row, unknowns]
    locator = np.append(solution[kappa + t :], np.uint8(1))
    good = np.flatnonzero(poly_eval(locator, points))
    if len(good) < kappa:
        raise DecodeError(f"more than {t} corrupted pieces among {m}: cannot correct")
    sel = good[:kappa]
    coeffs = gf256.solve(gf256.vandermonde(points[sel], kappa), y[sel])[:, 0]
    wrong = np.flatnonzero(poly_eval(coeffs, points) != y)
    if len(wrong) > t:
        raise DecodeError(f"more than {t} corrupted pieces among {m}: cannot correct")
    return [int(i) for i in wrong]


def locate_corrupt_rows(
    points: np.ndarray, received: np.ndarray, kappa: int, trusted: int = 0
) -> set[int]:
    """Rows of ``received`` (m x L, row i = evaluations at points[i]) that are not on one RS code.

    Every column must be a codeword of degree < kappa. Bad rows are found one inconsistent column
    at a time (Berlekamp-Welch), erased, and the rest is re-checked in bulk by syndromes. The first
    ``trusted`` rows are known good (virtual zero nodes). Raises DecodeError beyond
    floor((m - kappa) / 2) bad rows, and when fewer than kappa + 1 rows would remain to check.
    """
    m = len(points)
    limit = (m - kappa) // 2
    bad: set[int] = set()
    while True:
        rows = [r for r in range(m) if r not in bad]
        if len(rows) <= kappa:
            raise DecodeError(f"{len(rows)} consistent pieces left, need more than {kappa}")
        syndrome = gf256.matmul(parity_check(points[rows], kappa), received[rows])
        columns = np.flatnonzero(syndrome.any(axis=0))
        if columns.size == 0:
            return bad
        found = berlekamp_welch(points[rows], received[rows, columns[0]], kappa)
        bad |= {rows[i] for i in found}
        if any(r < trusted for r in bad) or len(bad) > limit:
            raise DecodeError(f"more than {limit} corrupted pieces among {m}: cannot correct")
