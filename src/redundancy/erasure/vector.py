"""Vector codes: each shard holds alpha symbols (layers), as piggybacked and layered codes need.

A ``VectorCode`` is a linear code over GF(2^8) on n x alpha symbols whose repairs are planned in
whole shards and computed layer by layer; ``ec`` reads stores of convertible layered results
(LRC merges, piggyback conversions) through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from math import comb

import numpy as np

from redundancy import gf256
from redundancy.erasure.codes import MAX_SHARDS, LinearCode, RepairPlan, Shard
from redundancy.erasure.recoverability import MAX_PATTERNS
from redundancy.errors import DecodeError, ParameterError, check_range

MAX_LAYERS = 64  # sub-packetization of a VectorCode


class VectorCode(LinearCode):
    """A systematic vector (sub-packetized) linear code: every shard holds ``alpha`` layers.

    A shard's chunk of L bytes (L a multiple of alpha) is its alpha layers of L / alpha bytes, one
    after the other, and layer a of shard i is a linear function of every layer of every data
    shard: the (n alpha) x (k alpha) ``generator`` has row ``i * alpha + a`` for it, its first
    k alpha rows the identity. Piggybacked and bandwidth-optimal convertible codes (the LRC global
    merge) are such codes. ``n``, ``k``, plans and ``recovered_by_size`` count whole shards; a
    plan's ``matrix`` maps the layers of the shards it reads to the layers of the lost ones, and
    ``apply_plan`` applies it to chunks. A pattern of lost shards decodes when the surviving
    layers have rank k alpha, so codes that are not MDS (LRCs) decode every pattern they can.

    Parameters
    ----------
    generator
        The (n alpha) x (k alpha) layer generator over GF(2^8).
    alpha
        Layers per shard (1..64).
    local_groups
        Sets of shards in which each is a function of the others (tried first by repairs).
    name
        A label for messages.

    Raises
    ------
    ParameterError
        If the shape is not a multiple of alpha, n is outside k..256, or the generator is not
        systematic.

    Examples
    --------
    >>> import numpy as np
    >>> code = VectorCode(np.vstack([np.eye(4, dtype=np.uint8), [[1, 0, 1, 0], [0, 1, 1, 1]]]), 2)
    >>> code.n, code.k, code.alpha
    (3, 2, 2)
    >>> shards = code.encode_all([b"abcd", b"efgh"])
    >>> code.reconstruct([None, shards[1], shards[2]])[0].tobytes()
    b'abcd'
    """

    def __init__(
        self,
        generator: np.ndarray,
        alpha: int,
        local_groups: Sequence[Sequence[int]] = (),
        name: str = "vector",
    ) -> None:
        check_range("alpha", alpha, 1, MAX_LAYERS)
        g = np.asarray(generator)
        if g.ndim != 2 or g.shape[0] % alpha or g.shape[1] % alpha or g.shape[1] < alpha:
            raise ParameterError(
                f"generator must be (n alpha) x (k alpha) with alpha={alpha}, got shape {g.shape}"
            )
        n, k = g.shape[0] // alpha, g.shape[1] // alpha
        if not k <= n <= MAX_SHARDS:
            raise ParameterError(f"n={n} is out of range (allowed: k={k}..{MAX_SHARDS})")
        g = g.astype(np.uint8)
        if not np.array_equal(g[: k * alpha], np.eye(k * alpha, dtype=np.uint8)):
            raise ParameterError("generator must be systematic: first k alpha rows the identity")
        self.alpha = alpha
        self.generator = g
        self.generator.setflags(write=False)
        self.name = name
        self.local_groups = tuple(tuple(sorted(int(i) for i in group)) for group in local_groups)
        self._plans = {}
        for group in self.local_groups:
            if any(not 0 <= i < n for i in group):
                raise ParameterError(f"local group {group} names a shard outside 0..{n - 1}")

    @property
    def n(self) -> int:
        """Total shards."""
        return self.generator.shape[0] // self.alpha

    @property
    def k(self) -> int:
        """Data shards."""
        return self.generator.shape[1] // self.alpha

    @property
    def parity_matrix(self) -> np.ndarray:
        """The (m alpha) x (k alpha) rows of the generator that produce the parity layers."""
        return self.generator[self.k * self.alpha :]

    def _layer_rows(self, shards: Iterable[int]) -> list[int]:
        return [i * self.alpha + a for i in shards for a in range(self.alpha)]

    def _shard_rows(self, shards: Iterable[int]) -> np.ndarray:
        return self.generator[self._layer_rows(shards)]

    def _as_layers(self, shards: Sequence[Shard] | np.ndarray, count: int, what: str) -> np.ndarray:
        rows = np.asarray(self._rows(shards, count, what))
        if rows.shape[1] % self.alpha:
            raise ParameterError(
                f"{what} of {rows.shape[1]} bytes are not a multiple of alpha={self.alpha}"
            )
        return rows.reshape(count * self.alpha, -1)

    def encode(self, data_shards: Sequence[Shard] | np.ndarray) -> np.ndarray:
        """Return the m parity shards, an (m, L) array, for the k data shards (L % alpha == 0)."""
        layers = self._as_layers(data_shards, self.k, "data shards")
        return gf256.matmul(self.parity_matrix, layers).reshape(self.m, -1)

    def encode_all(self, data_shards: Sequence[Shard] | np.ndarray) -> np.ndarray:
        """Return all n shards, data then parity, as an (n, L) array."""
        data = np.asarray(self._rows(data_shards, self.k, "data shards"))
        return np.vstack([data, self.encode(data)])

    def apply_plan(
        self, plan: RepairPlan, sources: Sequence[Shard], out: np.ndarray | None = None
    ) -> np.ndarray:
        """Compute the shards ``plan.lost`` from the chunks of ``plan.reads`` (layer by layer).

        Parameters
        ----------
        plan
            A plan of this code (``repair_plan``).
        sources
            The chunks of shards ``plan.reads``, in that order, of equal length L (a multiple
            of alpha).
        out
            A (len(plan.lost), L) uint8 array to write into (allocated when None).

        Returns
        -------
        numpy.ndarray
            The rebuilt chunks, one row per lost shard.

        Raises
        ------
        ParameterError
            If the chunks are of unequal length or not a multiple of alpha.

        Examples
        --------
        >>> import numpy as np
        >>> generator = np.vstack([np.eye(4, dtype=np.uint8), [[1, 0, 1, 0], [0, 1, 1, 1]]])
        >>> code = VectorCode(generator, 2)
        >>> shards = code.encode_all([b"abcd", b"efgh"])
        >>> plan = code.repair_plan([2])
        >>> np.array_equal(code.apply_plan(plan, [shards[i] for i in plan.reads])[0], shards[2])
        True
        """
        layers = self._as_layers(sources, len(plan.reads), "source chunks")
        rebuilt = gf256.matmul(plan.matrix, layers).reshape(len(plan.lost), -1)
        if out is None:
            return rebuilt
        out[...] = rebuilt
        return out

    def recovered_by_size(self) -> list[int]:
        """How many sets of s lost shards still decode, for s = 0..m (exhaustive rank checks).

        Returns
        -------
        list of int
            ``counts[s]`` out of C(n, s) patterns.

        Raises
        ------
        ParameterError
            If there are more than ``recoverability.MAX_PATTERNS`` patterns to check.

        Examples
        --------
        >>> import numpy as np
        >>> generator = np.vstack([np.eye(4, dtype=np.uint8), [[1, 0, 1, 0], [0, 1, 1, 1]]])
        >>> VectorCode(generator, 2).recovered_by_size()
        [1, 3]
        """
        total = sum(comb(self.n, s) for s in range(self.m + 1))
        if total > MAX_PATTERNS:
            raise ParameterError(
                f"{self.name} has {total} erasure patterns to check (allowed: <= {MAX_PATTERNS})"
            )
        return [
            sum(self.decodes(lost) for lost in combinations(range(self.n), s))
            for s in range(self.m + 1)
        ]

    def decodes(self, lost: Iterable[int]) -> bool:
        """True if the data survives losing the shards ``lost`` (whole shards, every layer).

        Parameters
        ----------
        lost
            Shard indices.

        Returns
        -------
        bool
            Whether the other shards' layers span the k alpha data layers.

        Examples
        --------
        >>> import numpy as np
        >>> generator = np.vstack([np.eye(4, dtype=np.uint8), [[1, 0, 1, 0], [0, 1, 1, 1]]])
        >>> VectorCode(generator, 2).decodes([0]), VectorCode(generator, 2).decodes([0, 1])
        (True, False)
        """
        gone = set(lost)
        columns = self._layer_rows(sorted(gone))
        if len(gone) > self.m:
            return False
        # H = [P | I] annihilates the generator; the lost layers decode iff their columns of H
        # are independent (rank over the m alpha parity-check rows, cheaper than the survivors).
        check = np.hstack([self.parity_matrix, np.eye(self.m * self.alpha, dtype=np.uint8)])
        return gf256.rank(check[:, columns]) == len(columns) if columns else True

    def _solved(self, lost: tuple[int, ...], reads: Sequence[int]) -> RepairPlan | None:
        try:
            matrix = gf256.left_solve(
                self.generator[self._layer_rows(lost)], self.generator[self._layer_rows(reads)]
            )
        except DecodeError:
            return None
        return RepairPlan(lost, tuple(reads), matrix)

    def _best_plan(self, lost: tuple[int, ...], available: tuple[int, ...]) -> RepairPlan:
        avail = set(available)
        if self.local_groups:
            helpers: set[int] = set()
            for target in lost:
                groups = [g for g in self.local_groups if target in g]
                usable = [g for g in groups if all(i in avail or i in lost for i in g)]
                if not usable:
                    break
                helpers.update(i for i in min(usable, key=len) if i not in lost)
            else:
                plan = self._solved(lost, sorted(helpers))
                if plan is not None and plan.read_count < self.k:
                    return plan
        for candidates in self._closures(lost, available):
            plan = self._spanning_plan(lost, candidates)
            if plan is not None:
                return plan
        chosen: list[int] = []
        rank = 0
        for i in sorted(available, key=lambda i: (i >= self.k, i)):
            grown = gf256.rank(self.generator[self._layer_rows([*chosen, i])])
            if grown > rank:
                chosen.append(i)
                rank = grown
                if rank == self.k * self.alpha:
                    break
        plan = self._solved(lost, sorted(chosen)) if rank == self.k * self.alpha else None
        if plan is None:
            unavailable = sorted(set(range(self.n)) - avail)
            raise DecodeError(
                f"cannot rebuild shards {list(lost)}: shards {unavailable} are missing or corrupt, "
                f"the {len(available)} good shards span only {rank} of the k alpha="
                f"{self.k * self.alpha} layers needed"
            )
        return plan
