"""Access-optimal MDS conversion (merge and split): the codes, read sets and conversion matrices.

Two constructions give the initial and final codes. ``grs`` (the default, ``algebra.grs``): explicit
GRS codes, MDS by construction for every n <= 255, the initial code depending only on (k_I, r_I).
``cvt`` (earlier stores): the searched Vandermonde family, parity j = sum_i theta_j^i d_i, verified
by checking every square submatrix, only for small parameters. Either way a plan lists the shards it
reads and the matrix from them to the parities it writes, solved over GF(2^8) from the two codes:
a merge reads r_F parities per initial codeword (when r_F <= r_I and r_F < k_I, else its data) and
writes r_F, the access lower bound r_F + lambda min(k_I, r_F); a split reads the data of blocks
1..lambda-1 and r_F parities ((lambda - 1) k_F + r_F, the read-access bound) and recovers block 0's
parities as the initial parities minus the other blocks' contribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from redundancy import gf256
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.algebra.family import parity_rows, search_thetas
from redundancy.convertible.algebra.grs import GRSCode
from redundancy.erasure.codes import LinearCode
from redundancy.errors import DecodeError, ParameterError

Shard = tuple[int, int]  # (codeword, shard index within it)
CONSTRUCTIONS = ("grs", "cvt")


@dataclass(frozen=True)
class ConvertibleFamily:
    """The initial and final codes of a conversion (``construction`` names how they are built).

    Parameters
    ----------
    conversion : Conversion
        (k_I, r_I) -> (k_F, r_F).
    construction : str
        ``"grs"`` (explicit, any n <= 255) or ``"cvt"`` (searched Vandermonde, earlier stores).

    Raises
    ------
    ParameterError
        From ``build``: a code longer than 255 shards (``grs``), no verified Vandermonde family
        (``cvt``), or an unknown ``construction``.

    Examples
    --------
    >>> fam = ConvertibleFamily.build(Conversion.merge(12, 4, 2, 4))
    >>> fam.spec, fam.final_code().n
    ('grs:12,4:24,4', 28)
    """

    conversion: Conversion
    construction: str = "grs"

    @classmethod
    def build(cls, conversion: Conversion, construction: str = "grs") -> ConvertibleFamily:
        """Build (and, for ``cvt``, search and verify) the family of ``conversion``.

        Parameters
        ----------
        conversion : Conversion
            (k_I, r_I) -> (k_F, r_F).
        construction : {"grs", "cvt"}, default "grs"
            How the two codes are built.

        Returns
        -------
        ConvertibleFamily
            The family, its parity matrices already built.

        Raises
        ------
        ParameterError
            If a code is longer than 255 shards (``grs``), no verified Vandermonde family exists
            (``cvt``), or ``construction`` is unknown.
        """
        if construction not in CONSTRUCTIONS:
            raise ParameterError(
                f"construction={construction!r} is not one of {list(CONSTRUCTIONS)}"
            )
        family = cls(conversion, construction)
        family.parities  # noqa: B018 - build (and check) the codes now, not at first use
        return family

    @property
    def spec(self) -> str:
        """Code spec stored in manifests: grs:K_I,R_I:K_F,R_F (or cvt: for the old family)."""
        c = self.conversion
        return f"{self.construction}:{c.k_i},{c.r_i}:{c.k_f},{c.r_f}"

    @cached_property
    def parities(self) -> tuple[np.ndarray, np.ndarray]:
        """(initial r_I x k_I, final r_F x k_F) parity matrices."""
        c = self.conversion
        if self.construction == "grs":
            initial = GRSCode.base(c.k_i, c.r_i)
            return initial.parity_matrix, initial.converted(c.k_f, c.r_f).parity_matrix
        thetas = search_thetas(tuple(sorted({(c.k_i, c.r_i), (c.k_f, c.r_f)})))
        return parity_rows(thetas[: c.r_i], c.k_i), parity_rows(thetas[: c.r_f], c.k_f)

    def initial_code(self) -> LinearCode:
        """The [n_I, k_I] code the initial stores are written with."""
        return _systematic(self.parities[0], f"{self.spec}/initial")

    def final_code(self) -> LinearCode:
        """The [n_F, k_F] code after conversion."""
        return _systematic(self.parities[1], f"{self.spec}/final")


def _systematic(parity: np.ndarray, name: str) -> LinearCode:
    k = parity.shape[1]
    return LinearCode(np.vstack([np.eye(k, dtype=np.uint8), parity]), name=name)


@dataclass(frozen=True)
class ConversionPlan:
    """Read ``reads`` (initial shards), write ``writes`` (final parities) = matrix . reads.

    Built by :func:`merge_plan`, :func:`split_plan` or :func:`solve_plan`; ``apply`` runs it on
    the fetched shards.

    Attributes
    ----------
    reads : tuple of (int, int)
        The initial shards read, as (initial codeword, shard index); index >= k_I is a parity.
    writes : tuple of (int, int)
        The final parities written, as (final codeword, parity index).
    matrix : ndarray of uint8, shape (len(writes), len(reads))
        Coefficients over GF(2^8): ``writes[w] = sum_r matrix[w, r] reads[r]``.

    Raises
    ------
    ParameterError
        From ``apply``: a shard of ``reads`` was not provided.

    Examples
    --------
    >>> import numpy as np
    >>> family = ConvertibleFamily.build(Conversion.merge(6, 3, 2, 2))
    >>> plan = merge_plan(family)
    >>> plan.reads, plan.writes
    (((0, 6), (0, 7), (1, 6), (1, 7)), ((0, 0), (0, 1)))
    >>> data = np.random.default_rng(0).integers(0, 256, (2, 6, 8), dtype=np.uint8)
    >>> parities = [family.initial_code().encode(block) for block in data]
    >>> new = plan.apply({(t, i): parities[t][i - 6] for t, i in plan.reads})
    >>> direct = family.final_code().encode(np.vstack(data))
    >>> all(np.array_equal(new[(0, j)], direct[j]) for j in range(2))
    True
    """

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


def solve_plan(
    family: ConvertibleFamily,
    layout: Sequence[Sequence[Shard]],
    reads: Sequence[Shard],
) -> ConversionPlan:
    """The matrix from ``reads`` to every final parity (u, j), solved over GF(2^8).

    Parameters
    ----------
    family : ConvertibleFamily
        The two codes.
    layout : sequence of sequences of Shard
        ``layout[u]``: final codeword u's data, as (initial codeword, data shard) in order.
    reads : sequence of Shard
        The initial shards read (index >= k_I: a parity).

    Returns
    -------
    ConversionPlan
        Reads, writes (u, j) and the matrix.

    Raises
    ------
    ParameterError
        If some final parity is not a combination of the shards read.
    """
    c = family.conversion
    initial, final = family.parities
    codewords = max(t for t, _ in reads) + 1 if reads else 0
    codewords = max([codewords] + [t + 1 for shards in layout for t, _ in shards])
    basis = np.zeros((len(reads), codewords * c.k_i), dtype=np.uint8)
    for row, (t, idx) in enumerate(reads):
        if idx < c.k_i:
            basis[row, t * c.k_i + idx] = 1
        else:
            basis[row, t * c.k_i : (t + 1) * c.k_i] = initial[idx - c.k_i]
    writes = [(u, j) for u in range(len(layout)) for j in range(c.r_f)]
    targets = np.zeros((len(writes), codewords * c.k_i), dtype=np.uint8)
    for row, (u, j) in enumerate(writes):
        for pos, (t, i) in enumerate(layout[u]):
            targets[row, t * c.k_i + i] = final[j, pos]
    try:
        matrix = gf256.left_solve(targets, basis)
    except DecodeError:
        raise ParameterError(
            f"{c.describe()}: a final parity is not a combination of the shards read"
        ) from None
    return ConversionPlan(tuple(reads), tuple(writes), matrix)


def merge_plan(family: ConvertibleFamily, read_data: bool = False) -> ConversionPlan:
    """Access-optimal merge; ``read_data`` (or r_F > r_I, or k_I <= r_F) reads data instead.

    Reads r_F parities of each of the lambda initial codewords (the read-access bound
    lambda min(k_I, r_F)) and writes the r_F final parities.

    Parameters
    ----------
    family : ConvertibleFamily
        The two codes of a merge.
    read_data : bool, default False
        Read every data shard instead of the parities (the re-encode plan).

    Returns
    -------
    ConversionPlan
        Reads, writes and the matrix between them.

    Raises
    ------
    ParameterError
        The family's conversion is not a merge.

    Examples
    --------
    >>> family = ConvertibleFamily.build(Conversion.merge(6, 3, 2, 2))
    >>> len(merge_plan(family).reads), len(merge_plan(family, read_data=True).reads)
    (4, 12)
    """
    c = family.conversion
    if c.regime != "merge":
        raise ParameterError(f"merge_plan needs the merge regime, {c.describe()} is {c.regime}")
    use_parity = not read_data and c.r_f <= c.r_i and c.r_f < c.k_i
    reads: list[Shard] = []
    for t in range(c.lambda_i):
        reads += (
            [(t, c.k_i + j) for j in range(c.r_f)] if use_parity else [(t, i) for i in range(c.k_i)]
        )
    layout = [[(t, i) for t in range(c.lambda_i) for i in range(c.k_i)]]
    return solve_plan(family, layout, reads)


def split_plan(family: ConvertibleFamily) -> ConversionPlan:
    """Access-optimal split of one [n_I, k_I] codeword into lambda [n_F, k_F] codewords.

    Reads the data of blocks 1..lambda-1 and r_F parities ((lambda - 1) k_F + r_F shards, the
    read-access bound) and writes the r_F parities of every final codeword.

    Parameters
    ----------
    family : ConvertibleFamily
        The two codes of a split.

    Returns
    -------
    ConversionPlan
        Reads, writes and the matrix between them.

    Raises
    ------
    ParameterError
        The conversion is not a split, or r_F > r_I.

    Examples
    --------
    >>> plan = split_plan(ConvertibleFamily.build(Conversion(12, 2, 6, 2)))
    >>> len(plan.reads), plan.writes
    (8, ((0, 0), (0, 1), (1, 0), (1, 1)))
    """
    c = family.conversion
    if c.regime != "split":
        raise ParameterError(f"split_plan needs the split regime, {c.describe()} is {c.regime}")
    if c.r_f > c.r_i:
        raise ParameterError(
            f"r_F={c.r_f} is out of range for a parity-reading split (allowed: r_F <= r_I={c.r_i})"
        )
    kf = c.k_f
    reads = [(0, i) for i in range(kf, c.k_i)] + [(0, c.k_i + j) for j in range(c.r_f)]
    layout = [[(0, u * kf + a) for a in range(kf)] for u in range(c.lambda_f)]
    return solve_plan(family, layout, reads)
