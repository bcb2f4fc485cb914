"""The product-matrix constructions as linear maps: what each node stores, as a matrix over the
message vector x = (random keys, secret symbols).

- MBR: symmetric d x d message matrix M = [[S, T], [T^T, 0]], Psi = [Phi Delta] Vandermonde,
  node j stores psi_j^T M (alpha = d symbols).
- MSR (d = 2k-2): W = [S1; S2] with S1, S2 symmetric alpha x alpha, psi_j = (phi_j, lambda_j phi_j)
  with lambda_j = x_j^alpha, i.e. psi_j = (1, x_j, ..., x_j^(d-1)); node j stores psi_j^T W.
- MSR with d > 2k-2: the code for (n+i, k+i, d+i), i = d-2k+2, whose first i nodes are forced to
  store zeros (shortening); they stay as virtual helpers that always send 0.
- Secrecy: the free symbols in the first l rows/columns of M (MBR) or of S1 and S2 (MSR) are keys.
- Without secrecy, Psi is the Vandermonde matrix times an invertible d' x d' basis change that
  keeps every requirement (any d rows of Psi, any k rows of Phi (MBR) / alpha rows of Phi (MSR)
  independent) and makes the first nodes cheap: MBR node i < k stores row i of M verbatim, MSR
  node i < alpha stores S1[i] + lambda_i S2[i]. Columns of Psi W stay Reed-Solomon codewords.

In every case node j's content is psi_j^T W for a d' x alpha matrix W of message symbols, and a
helper for newcomer f sends its content times v_f = psi_f[:alpha].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from redundancy import gf256
from redundancy.errors import ParameterError
from redundancy.gf256 import independent_rows, row_echelon
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


def systematic_basis(params: RegenParams, vander: np.ndarray) -> np.ndarray:
    """P (d' x d', invertible) with (V P)[:k] = [I 0] (MBR) or Phi P1 = [I; *] (MSR)."""
    size = vander.shape[1]
    basis = np.eye(size, dtype=np.uint8)
    if params.kind == "mbr":
        k = params.k
        head = gf256.inverse(np.ascontiguousarray(vander[:k, :k]))
        basis[:k, :k] = head
        basis[:k, k:] = gf256.matmul_small(head, vander[:k, k:])  # -x = x in GF(2^8)
    else:
        alpha = params.alpha
        head = gf256.inverse(np.ascontiguousarray(vander[:alpha, :alpha]))
        basis[:alpha, :alpha] = head
        basis[alpha:, alpha:] = head
    return basis


def shorten(gen: np.ndarray, virtual: int, keys: int) -> tuple[np.ndarray, int]:
    """Force the first ``virtual`` nodes to store zeros: the real nodes' generator, keys kept.

    Their virtual*alpha equations eliminate as many symbols, chosen among the secret symbols first
    and among the ``keys`` key symbols (numbered first) only where an equation touches keys alone
    (the l columns of each virtual node's row that lie in the key rows): l*virtual keys go, and the
    keys left match what l real nodes and their repair traffic see in the shortened code. The free
    symbols keep their order (keys first).
    """
    total = gen.shape[2]
    zero_rows = gen[:virtual].reshape(-1, total)
    order = [*range(keys, total), *range(keys)]
    reduced, pivots = row_echelon(zero_rows[:, order])
    if len(pivots) != zero_rows.shape[0]:
        raise ParameterError(f"shortening by {virtual} virtual nodes is not solvable")
    eliminated = {order[c]: row for row, c in enumerate(pivots)}
    free = [c for c in range(total) if c not in eliminated]
    position = {c: a for a, c in enumerate(free)}
    basis = np.zeros((total, len(free)), dtype=np.uint8)
    for c in free:
        basis[c, position[c]] = 1
    for symbol, row in eliminated.items():  # x_symbol = sum of reduced[row, c] x_order[c] (char 2)
        for c in np.flatnonzero(reduced[row]):
            if order[c] != symbol:
                basis[symbol, position[order[c]]] = reduced[row, c]
    real = gf256.matmul_small(gen[virtual:].reshape(-1, total), basis)
    kept = sum(c < keys for c in free)
    return real.reshape(gen.shape[0] - virtual, gen.shape[1], len(free)), kept


def systematize(gen: np.ndarray, nodes: range) -> np.ndarray:
    """Change message basis so the given nodes' independent symbols become message symbols.

    x' = T x with T = (those generator rows, completed by unit vectors), generator G T^-1: the
    same code, but those symbols are stored verbatim (copies when encoding). With ``nodes`` whose
    rows each touch one 2 x 2 block of message symbols, T is block diagonal and the other rows
    keep their supports.
    """
    flat = gen.reshape(-1, gen.shape[2])
    rows = flat[nodes.start * gen.shape[1] : nodes.stop * gen.shape[1]]
    stacked = np.vstack([rows, np.eye(flat.shape[1], dtype=np.uint8)])
    basis = np.ascontiguousarray(stacked[independent_rows(stacked)])
    return gf256.matmul_small(flat, gf256.inverse(basis)).reshape(gen.shape)


def build(params: RegenParams) -> Construction:
    """Build points, Psi and every node's generator (verifying the shortened system is solvable)."""
    alpha, virtual = params.alpha, params.shortening
    parent_n, parent_d = params.n + virtual, params.d + virtual
    points = choose_points(parent_n, alpha if params.kind == "msr" else 1)
    psi = gf256.vandermonde(points, parent_d)
    if params.l == 0:
        psi = gf256.matmul_small(psi, systematic_basis(params, psi))
    layout = _message_layout(params, alpha, parent_d)
    symbols = int(layout.max()) + 1
    gen = np.zeros((parent_n, alpha, symbols), dtype=np.uint8)
    for r in range(parent_d):
        for t in range(alpha):
            if layout[r, t] >= 0:
                gen[:, t, layout[r, t]] ^= psi[:, r]
    keys = int(np.count_nonzero(np.unique(layout[:, : params.l]) >= 0)) if params.l else 0
    if virtual:
        gen, keys = shorten(gen, virtual, keys)
    if keys != params.key_symbols:
        raise ParameterError(f"construction keeps the wrong number of keys for l={params.l}")
    if params.kind == "msr" and params.l == 0:
        gen = systematize(gen, range(params.k if virtual else alpha))
    if gen.shape[2] != params.file_symbols:
        raise ParameterError(f"construction has {gen.shape[2]} symbols, expected B")
    return Construction(params=params, points=points, psi=psi, generators=gen)
