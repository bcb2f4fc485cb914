"""Access-optimal MDS conversion (merge and split) for codes of one verified Vandermonde family.

Merge (lambda codewords -> one): final parity j = sum_t theta_j^(t k_I) p_j^(t), so only r_F
parities of each initial codeword are read (when r_F <= r_I and r_F < k_I) and r_F parities are
written: the access lower bound r_F + lambda min(k_I, r_F). Split (one codeword -> lambda): the
parities of all blocks but the last are computed from their data, the last block's from the
initial parities minus the others: (lambda - 1) k_F + r_F reads, the read-access bound.
A plan is a matrix from the shards it reads to the parities it writes, so the bytes it moves are
exactly len(reads) and len(writes) shards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from redundancy import gf256
from redundancy.convertible.bounds import Conversion
from redundancy.convertible.family import family_code, search_thetas
from redundancy.erasure.codes import LinearCode
from redundancy.errors import ParameterError

Shard = tuple[int, int]  # (codeword, shard index within it)


@dataclass(frozen=True)
class ConvertibleFamily:
    """The initial and final codes of a conversion, sharing verified thetas."""

    conversion: Conversion
    thetas: tuple[int, ...]

    @classmethod
    def build(cls, conversion: Conversion) -> ConvertibleFamily:
        """Search thetas so that both codes are MDS (every parity submatrix checked)."""
        c = conversion
        if c.regime == "general":
            raise ParameterError(
                f"{c.describe()} is in the general regime; constructions cover merge "
                "(k_F = lambda k_I) and split (k_I = lambda k_F); use general.GeneralConversion"
            )
        shapes = tuple(sorted({(c.k_i, c.r_i), (c.k_f, c.r_f)}))
        return cls(c, search_thetas(shapes))

    @property
    def spec(self) -> str:
        """Code spec stored in manifests: cvt:K_I,R_I:K_F,R_F."""
        c = self.conversion
        return f"cvt:{c.k_i},{c.r_i}:{c.k_f},{c.r_f}"

    def initial_code(self) -> LinearCode:
        """The [n_I, k_I] code the initial stores are written with."""
        c = self.conversion
        return family_code(self.thetas, c.k_i, c.r_i, f"{self.spec}/initial")

    def final_code(self) -> LinearCode:
        """The [n_F, k_F] code after conversion."""
        c = self.conversion
        return family_code(self.thetas, c.k_f, c.r_f, f"{self.spec}/final")


@dataclass(frozen=True)
class ConversionPlan:
    """Read ``reads`` (initial shards), write ``writes`` (final parities) = matrix . reads."""

    reads: tuple[Shard, ...]
    writes: tuple[Shard, ...]  # (final codeword, parity index j)
    matrix: np.ndarray

    def apply(self, fetch: dict[Shard, np.ndarray]) -> dict[Shard, np.ndarray]:
        """Compute every written parity from the fetched shards (exactly ``reads``)."""
        missing = [s for s in self.reads if s not in fetch]
        if missing:
            raise ParameterError(f"conversion needs shards {missing} that were not provided")
        out = gf256.matmul_sparse(self.matrix, [fetch[s] for s in self.reads])
        return dict(zip(self.writes, out, strict=True))


def _theta_pow(theta: int, exponent: int) -> int:
    return int(gf256.power(theta, exponent))


def merge_plan(family: ConvertibleFamily, read_data: bool = False) -> ConversionPlan:
    """Access-optimal merge; ``read_data`` (or r_F > r_I, or k_I <= r_F) reads data instead."""
    c = family.conversion
    if c.regime != "merge":
        raise ParameterError(f"merge_plan needs the merge regime, {c.describe()} is {c.regime}")
    lam, th = c.lambda_i, family.thetas
    use_parity = not read_data and c.r_f <= c.r_i and c.r_f < c.k_i
    reads: list[Shard] = []
    for t in range(lam):
        reads += (
            [(t, c.k_i + j) for j in range(c.r_f)] if use_parity else [(t, i) for i in range(c.k_i)]
        )
    matrix = np.zeros((c.r_f, len(reads)), dtype=np.uint8)
    for col, (t, idx) in enumerate(reads):
        for j in range(c.r_f):
            if use_parity and idx == c.k_i + j:
                matrix[j, col] = _theta_pow(th[j], t * c.k_i)
            elif not use_parity:
                matrix[j, col] = _theta_pow(th[j], t * c.k_i + idx)
    return ConversionPlan(tuple(reads), tuple((0, j) for j in range(c.r_f)), matrix)


def split_plan(family: ConvertibleFamily) -> ConversionPlan:
    """Access-optimal split of one [n_I, k_I] codeword into lambda [n_F, k_F] codewords."""
    c = family.conversion
    if c.regime != "split":
        raise ParameterError(f"split_plan needs the split regime, {c.describe()} is {c.regime}")
    if c.r_f > c.r_i:
        raise ParameterError(
            f"r_F={c.r_f} is out of range for a parity-reading split (allowed: r_F <= r_I={c.r_i})"
        )
    lam, kf, th = c.lambda_f, c.k_f, family.thetas
    last = lam - 1
    reads = [(0, i) for i in range(last * kf)] + [(0, c.k_i + j) for j in range(c.r_f)]
    writes = [(u, j) for u in range(lam) for j in range(c.r_f)]
    matrix = np.zeros((len(writes), len(reads)), dtype=np.uint8)
    for row, (u, j) in enumerate(writes):
        if u < last:
            for i in range(kf):
                matrix[row, u * kf + i] = _theta_pow(th[j], i)
            continue
        scale = int(gf256.inv(_theta_pow(th[j], last * kf)))
        matrix[row, last * kf + j] = scale
        for i in range(last * kf):
            matrix[row, i] = int(gf256.mul(scale, _theta_pow(th[j], i)))
    return ConversionPlan(tuple(reads), tuple(writes), matrix)
