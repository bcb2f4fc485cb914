"""The product-matrix constructions as linear maps: what each node stores, as a matrix over the
message vector x = (random keys, secret symbols).

- MBR: symmetric d x d message matrix M = [[S, T], [T^T, 0]], Psi = [Phi Delta] Vandermonde,
  node j stores psi_j^T M (alpha = d symbols).
- MSR (d = 2k-2): W = [S1; S2] with S1, S2 symmetric alpha x alpha, psi_j = (phi_j, lambda_j phi_j)
  with lambda_j = x_j^alpha, i.e. psi_j = (1, x_j, ..., x_j^(d-1)); node j stores psi_j^T W.
- MSR with d > 2k-2: the code for (n+i, k+i, d+i), i = d-2k+2, whose first i nodes are forced to
  store zeros (shortening); they stay as virtual helpers that always send 0.
- Secrecy: the free symbols in the first l rows/columns of M (MBR) or of S1 and S2 (MSR) are keys.

In every case node j's content is psi_j^T W for a d' x alpha matrix W of message symbols, and a
helper for newcomer f sends its content times v_f = psi_f[:alpha].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from redundancy import gf256
from redundancy.errors import ParameterError
from redundancy.regenerating.params import RegenParams


@dataclass(frozen=True)
class Construction:
    """Linear description of one code: ``generators[j] @ x`` is node j's alpha symbols."""

    params: RegenParams
    points: np.ndarray  # evaluation point of every parent node (virtual ones first)
    psi: np.ndarray  # parent nodes x d' encoding vectors
    generators: np.ndarray  # n x alpha x B over x = (keys, secret); real nodes only

    @property
    def virtual(self) -> int:
        """Number of virtual all-zero nodes in front of the real ones."""
        return self.params.shortening

    def helper_vector(self, failed: int) -> np.ndarray:
        """v_f: helper j sends (its alpha symbols) . v_f to newcomer f."""
        return self.psi[self.virtual + failed, : self.params.alpha]

    def real_points(self) -> np.ndarray:
        """Evaluation points of the real nodes, in node order."""
        return self.points[self.virtual :]


def choose_points(count: int, alpha: int) -> np.ndarray:
    """Distinct nonzero x_j whose powers x_j^alpha are also distinct (needed by MSR)."""
    chosen: list[int] = []
    seen: set[int] = set()
    for e in range(255):
        x = int(gf256.exp(e))
        lam = int(gf256.power(x, alpha))
        if lam not in seen:
            chosen.append(x)
            seen.add(lam)
        if len(chosen) == count:
            return np.array(chosen, dtype=np.uint8)
    raise ParameterError(
        f"n + shortening = {count} exceeds the {len(chosen)} nodes GF(256) supports "
        f"for alpha={alpha}"
    )


def _message_layout(params: RegenParams, alpha: int, rows: int) -> np.ndarray:
    """Index of the message symbol in each cell of W (rows x alpha), -1 for structural zeros.

    Symbols are numbered so that the keys (first l rows/columns of each symmetric block) come first.
    """
    k_eff = params.k + params.shortening
    cells: list[tuple[tuple[int, ...], list[tuple[int, int]]]] = []
    if params.kind == "mbr":
        for s in range(min(k_eff, rows)):
            for t in range(s, rows):
                cells.append(((s >= params.l, s, t), [(s, t), (t, s)]))
    else:
        for block in range(2):
            off = block * alpha
            for s in range(alpha):
                for t in range(s, alpha):
                    cells.append(((s >= params.l, block, s, t), [(off + s, t), (off + t, s)]))
    layout = np.full((rows, alpha), -1, dtype=np.int64)
    for index, (_, places) in enumerate(sorted(cells, key=lambda c: c[0])):
        for r, c in places:
            if c < alpha:
                layout[r, c] = index
    return layout


def build(params: RegenParams) -> Construction:
    """Build points, Psi and every node's generator (verifying the shortened system is solvable)."""
    alpha, virtual = params.alpha, params.shortening
    parent_n, parent_d = params.n + virtual, params.d + virtual
    points = choose_points(parent_n, alpha if params.kind == "msr" else 1)
    psi = gf256.vandermonde(points, parent_d)
    layout = _message_layout(params, alpha, parent_d)
    symbols = int(layout.max()) + 1
    gen = np.zeros((parent_n, alpha, symbols), dtype=np.uint8)
    for r in range(parent_d):
        for t in range(alpha):
            if layout[r, t] >= 0:
                gen[:, t, layout[r, t]] ^= psi[:, r]
    if virtual:
        parent_k = params.k + virtual
        collect = gen[:parent_k].reshape(parent_k * alpha, symbols)
        null_basis = gf256.inverse(collect)[:, virtual * alpha :]
        flat = gf256.matmul_small(gen[virtual:].reshape(-1, symbols), null_basis)
        gen = np.concatenate(
            [np.zeros((virtual, alpha, flat.shape[1]), np.uint8), flat.reshape(params.n, alpha, -1)]
        )
    if gen.shape[2] != params.file_symbols:
        raise ParameterError(f"construction has {gen.shape[2]} symbols, expected B")
    return Construction(params=params, points=points, psi=psi, generators=gen[virtual:])
