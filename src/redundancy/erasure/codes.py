"""Systematic linear codes on byte shards: a generic LinearCode, Reed-Solomon, and Azure-style LRC.

The API follows klauspost/reedsolomon: ``encode``, ``reconstruct`` (all or only some shards),
``verify``, ``split`` / ``join``, plus ``repair_plan`` which says which shards a repair reads.
Shards are equal-length byte buffers or rows of a (count, L) uint8 array.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np

from redundancy import gf256
from redundancy.erasure.recoverability import (
    MAX_PATTERNS,
    data_groups,
    maximally_recoverable_globals,
    recovered_by_size,
)
from redundancy.errors import DecodeError, ParameterError, check_range

MAX_SHARDS = 256
MAX_LRC_PATTERNS = 100_000  # erasure patterns checked exhaustively when building an LRC

Shard = bytes | bytearray | memoryview | np.ndarray


@dataclass(frozen=True)
class RepairPlan:
    """How to rebuild shards ``lost``: read shards ``reads`` and compute ``matrix . reads``.

    Made by :meth:`LinearCode.repair_plan`; a store runs it on every stripe.

    Parameters
    ----------
    lost
        Indices of the shards it rebuilds.
    reads
        Indices of the shards it reads, in the order of ``matrix``'s columns.
    matrix
        ``len(lost) x len(reads)`` GF(2^8) coefficients.

    Examples
    --------
    >>> plan = LRC(4, 2, 1).repair_plan([0])  # a data shard: its local group only
    >>> plan.lost, plan.reads, plan.read_count
    ((0,), (1, 4), 2)
    """

    lost: tuple[int, ...]
    reads: tuple[int, ...]
    matrix: np.ndarray  # len(lost) x len(reads)

    @property
    def read_count(self) -> int:
        """Number of shards read."""
        return len(self.reads)


class LinearCode:
    """A systematic [n, k] linear code over GF(2^8) given by its n x k generator matrix.

    The first k rows must be the identity (shards 0..k-1 are the data). ``local_groups`` lists
    sets of shard indices in which every member is a combination of the others (LRC groups); they
    let a repair read fewer than k shards.

    Parameters
    ----------
    generator
        ``n x k`` matrix over GF(2^8) (n <= 256) whose first k rows are the identity.
    local_groups
        Sets of shard indices, each a local group (default: none).
    name
        Name shown in reports.

    Raises
    ------
    ParameterError
        A generator of the wrong shape or not systematic, or a group naming a shard outside it.

    Examples
    --------
    >>> import numpy as np
    >>> code = LinearCode(np.array([[1, 0], [0, 1], [1, 1]]), name="xor")  # one XOR parity
    >>> parity = code.encode_all([b"ab", b"cd"])[2]
    >>> parity.tobytes() == bytes([ord("a") ^ ord("c"), ord("b") ^ ord("d")])
    True
    >>> code.reconstruct([None, b"cd", parity])[0].tobytes()
    b'ab'
    """

    def __init__(
        self,
        generator: np.ndarray,
        local_groups: Sequence[Sequence[int]] = (),
        name: str = "linear",
    ) -> None:
        g = np.asarray(generator)
        if g.ndim != 2 or g.shape[0] < g.shape[1] or g.shape[1] < 1:
            raise ParameterError(f"generator must be n x k with n >= k >= 1, got shape {g.shape}")
        if g.shape[0] > MAX_SHARDS:
            raise ParameterError(f"n={g.shape[0]} is out of range (allowed: 1..{MAX_SHARDS})")
        g = g.astype(np.uint8)
        k = g.shape[1]
        if not np.array_equal(g[:k], np.eye(k, dtype=np.uint8)):
            raise ParameterError("generator must be systematic: its first k rows the identity")
        self.generator = g
        self.name = name
        self.local_groups = tuple(tuple(sorted(int(i) for i in group)) for group in local_groups)
        self._plans: dict[tuple[tuple[int, ...], tuple[int, ...]], RepairPlan] = {}
        for group in self.local_groups:
            if any(not 0 <= i < self.n for i in group):
                raise ParameterError(f"local group {group} names a shard outside 0..{self.n - 1}")
        self.generator.setflags(write=False)

    # ------------------------------------------------------------------ shape
    @property
    def n(self) -> int:
        """Total shards."""
        return self.generator.shape[0]

    @property
    def k(self) -> int:
        """Data shards."""
        return self.generator.shape[1]

    @property
    def m(self) -> int:
        """Parity shards."""
        return self.n - self.k

    @property
    def parity_matrix(self) -> np.ndarray:
        """The m x k rows of the generator that produce the parity shards."""
        return self.generator[self.k :]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, n={self.n}, k={self.k})"

    def recovered_by_size(self) -> list[int]:
        """How many sets of s lost shards still decode, for s = 0..m (exhaustive rank checks).

        Returns
        -------
        list of int
            ``counts[s]`` out of C(n, s) patterns (nothing beyond m = n - k lost decodes).

        Raises
        ------
        ParameterError
            If C(n, m) exceeds ``recoverability.MAX_PATTERNS``.

        Examples
        --------
        >>> ReedSolomon(3, 1).recovered_by_size()
        [1, 4]
        """
        return recovered_by_size(self.generator)

    # ------------------------------------------------------------------ data path
    def split(self, data: bytes | bytearray | memoryview) -> list[np.ndarray]:
        """Cut ``data`` into k equal data shards (the tail zero-padded); ``join`` undoes it.

        Shards that lie wholly inside ``data`` are read-only views (no copy); only the shards
        that reach past the end are padded copies.
        """
        raw = np.frombuffer(data, dtype=np.uint8)
        length = -(-raw.size // self.k)
        shards = []
        for i in range(self.k):
            piece = raw[i * length : (i + 1) * length]
            if piece.size < length:
                padded = np.zeros(length, dtype=np.uint8)
                padded[: piece.size] = piece
                piece = padded
            shards.append(piece)
        return shards

    def join(self, shards: Sequence[Shard | None] | np.ndarray, size: int) -> bytes:
        """Concatenate the data shards and cut to the original ``size``."""
        rows = self._rows(list(shards)[: self.k], self.k, "data shards")
        total = sum(len(row) for row in rows)
        if size < 0 or size > total:
            raise ParameterError(f"size={size} is out of range (allowed: 0..{total})")
        return b"".join(bytes(row) for row in rows)[:size]

    def encode(self, data_shards: Sequence[Shard] | np.ndarray) -> np.ndarray:
        """Return the m parity shards, an (m, L) array, for the k data shards."""
        data = self._rows(data_shards, self.k, "data shards")
        return gf256.matmul(self.parity_matrix, data)

    def encode_all(self, data_shards: Sequence[Shard] | np.ndarray) -> np.ndarray:
        """Return all n shards, data then parity, as an (n, L) array."""
        data = self._rows(data_shards, self.k, "data shards")
        return np.vstack([data, gf256.matmul(self.parity_matrix, data)])

    def verify(self, shards: Sequence[Shard] | np.ndarray) -> bool:
        """True if the parity shards are consistent with the data shards."""
        everything = self._rows(shards, self.n, "shards")
        parity = self.encode(everything[: self.k])
        return all(np.array_equal(p, s) for p, s in zip(parity, everything[self.k :], strict=True))

    def reconstruct(
        self, shards: Sequence[Shard | None], only: Iterable[int] | None = None
    ) -> list[np.ndarray | None]:
        """Fill in missing (None) shards; with ``only``, rebuild just those indices.

        Reads the fewest shards the plan allows. Raises DecodeError when too few are present.
        """
        if len(shards) != self.n:
            raise ParameterError(f"expected {self.n} shard slots, got {len(shards)}")
        present = [i for i, s in enumerate(shards) if s is not None]
        missing = [i for i, s in enumerate(shards) if s is None]
        wanted = missing if only is None else sorted(set(only))
        for i in wanted:
            if not 0 <= i < self.n:
                raise ParameterError(f"shard index {i} is out of range (allowed: 0..{self.n - 1})")
        result: list[np.ndarray | None] = [
            None
            if s is None
            else np.frombuffer(s, np.uint8)
            if not isinstance(s, np.ndarray)
            else s
            for s in shards
        ]
        lost = [i for i in wanted if shards[i] is None]
        if not lost:
            return result
        plan = self.repair_plan(lost, available=present)
        rebuilt = self.apply_plan(plan, [result[i] for i in plan.reads])
        for row, index in enumerate(plan.lost):
            result[index] = rebuilt[row]
        return result

    def reconstruct_data(self, shards: Sequence[Shard | None]) -> list[np.ndarray | None]:
        """Rebuild only the missing data shards."""
        return self.reconstruct(shards, only=range(self.k))

    def apply_plan(
        self, plan: RepairPlan, sources: Sequence[Shard], out: np.ndarray | None = None
    ) -> np.ndarray:
        """Compute the shards ``plan.lost`` from the chunks ``plan.reads`` names.

        Stores rebuild lost chunks through this method, so a code whose shards are not single
        symbols (``VectorCode``) rebuilds them the same way.

        Parameters
        ----------
        plan
            A plan of this code (``repair_plan``).
        sources
            The chunks of shards ``plan.reads``, in that order, of equal length.
        out
            A (len(plan.lost), L) uint8 array to write into (allocated when None).

        Returns
        -------
        numpy.ndarray
            The rebuilt chunks, one row per lost shard.

        Raises
        ------
        ParameterError
            If the chunks are not of equal length or do not match the plan.

        Examples
        --------
        >>> code = ReedSolomon(2, 1)
        >>> shards = code.encode_all([b"ab", b"cd"])
        >>> plan = code.repair_plan([0])
        >>> code.apply_plan(plan, [shards[i] for i in plan.reads])[0].tobytes()
        b'ab'
        """
        return gf256.matmul(plan.matrix, sources, out=out)

    # ------------------------------------------------------------------ planning
    def repair_plan(
        self, lost: Iterable[int], available: Iterable[int] | None = None
    ) -> RepairPlan:
        """Plan rebuilding ``lost`` from ``available`` shards (default: all others).

        Tries local groups first (one lost shard per group, the rest of the group available); uses
        k independent available shards, data shards first, when that reads fewer or is the only
        way. Raises DecodeError naming what is missing when no plan exists.
        """
        lost_t = tuple(sorted({int(i) for i in lost}))
        for i in lost_t:
            if not 0 <= i < self.n:
                raise ParameterError(f"shard index {i} is out of range (allowed: 0..{self.n - 1})")
        if available is None:
            avail_t = tuple(i for i in range(self.n) if i not in lost_t)
        else:
            avail_t = tuple(sorted({int(i) for i in available} - set(lost_t)))
        key = (lost_t, avail_t)
        if key not in self._plans:
            self._plans[key] = self._best_plan(lost_t, avail_t)
        return self._plans[key]

    def _best_plan(self, lost: tuple[int, ...], available: tuple[int, ...]) -> RepairPlan:
        local = self._local_plan(lost, available) if self.local_groups else None
        if local is not None and local.read_count < self.k:
            return local
        try:
            return self._global_plan(lost, available)
        except DecodeError:
            if local is not None:
                return local
            raise

    def _local_plan(self, lost: tuple[int, ...], available: tuple[int, ...]) -> RepairPlan | None:
        avail = set(available)
        reads: set[int] = set()
        chosen: list[tuple[int, tuple[int, ...]]] = []
        for target in lost:
            options = [
                tuple(i for i in group if i != target)
                for group in self.local_groups
                if target in group and all(i in avail for i in group if i != target)
            ]
            if not options:
                return None
            helpers = min(options, key=lambda h: len(set(h) - reads))
            reads.update(helpers)
            chosen.append((target, helpers))
        order = tuple(sorted(reads))
        matrix = np.zeros((len(lost), len(order)), dtype=np.uint8)
        for row, (target, helpers) in enumerate(chosen):
            coefficients = gf256.express(self.generator[list(helpers)], self.generator[target])
            if coefficients is None:
                return None
            for helper, c in zip(helpers, coefficients, strict=True):
                matrix[row, order.index(helper)] = c
        return RepairPlan(lost, order, matrix)

    def _shard_rows(self, shards: Iterable[int]) -> np.ndarray:
        """Generator rows of ``shards`` (one per shard; a VectorCode has alpha)."""
        return self.generator[list(shards)]

    def _closures(self, lost: tuple[int, ...], available: tuple[int, ...]) -> Iterable[list[int]]:
        """Growing sets of available shards that may rebuild ``lost``, while they do not cover
        all data: those whose rows lie on the data columns the lost rows touch, the columns then
        widened by the narrowest shards that touch them (a local parity before a global one).
        Shards outside a closed set share no column with it and cannot help, so a code of
        several codewords side by side (a split store) repairs a shard from its own codeword and
        an LRC from its local group."""
        footprint = {i: self._shard_rows([i]).any(axis=0) for i in available}
        support = self._shard_rows(lost).any(axis=0)
        while not support.all():
            yield [i for i in available if not (footprint[i] & ~support).any()]
            touching = [
                i
                for i in available
                if (footprint[i] & support).any() and (footprint[i] & ~support).any()
            ]
            if not touching:
                return
            smallest = min(int(footprint[i].sum()) for i in touching)
            for i in touching:
                if footprint[i].sum() == smallest:
                    support = support | footprint[i]

    def _spanning_plan(self, lost: tuple[int, ...], candidates: list[int]) -> RepairPlan | None:
        """A plan reading independent ``candidates`` (data first), or None if they cannot."""
        chosen: list[int] = []
        rank = 0
        for i in sorted(candidates, key=lambda i: (i >= self.k, i)):
            grown = gf256.rank(self._shard_rows([*chosen, i]))
            if grown > rank:
                chosen.append(i)
                rank = grown
        if not chosen:
            return None
        try:
            matrix = gf256.left_solve(self._shard_rows(lost), self._shard_rows(chosen))
        except DecodeError:
            return None
        return RepairPlan(lost, tuple(chosen), matrix)

    def _global_plan(self, lost: tuple[int, ...], available: tuple[int, ...]) -> RepairPlan:
        for candidates in self._closures(lost, available):
            plan = self._spanning_plan(lost, candidates)
            if plan is not None:
                return plan
        chosen: list[int] = []
        for i in sorted(available, key=lambda i: (i >= self.k, i)):
            if gf256.rank(self.generator[[*chosen, i]]) == len(chosen) + 1:
                chosen.append(i)
                if len(chosen) == self.k:
                    break
        if len(chosen) < self.k:
            unavailable = sorted(set(range(self.n)) - set(available))
            raise DecodeError(
                f"cannot rebuild shards {list(lost)}: shards {unavailable} are missing or corrupt, "
                f"the {len(available)} good shards span only {len(chosen)} of the k={self.k} "
                f"dimensions needed ({self.k - len(chosen)} more independent shard(s) required)"
            )
        reads = tuple(sorted(chosen))
        decode = gf256.inverse(self.generator[list(reads)])
        matrix = gf256.matmul_small(self.generator[list(lost)], decode)
        return RepairPlan(lost, reads, matrix)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _rows(
        shards: Sequence[Shard | None] | np.ndarray, count: int, what: str
    ) -> np.ndarray | list[np.ndarray]:
        """Validate ``count`` equal-length shards without copying them."""
        if isinstance(shards, np.ndarray) and shards.ndim == 2:
            if shards.shape[0] != count:
                raise ParameterError(f"expected {count} {what}, got {shards.shape[0]}")
            return shards
        items = list(shards)
        if len(items) != count:
            raise ParameterError(f"expected {count} {what}, got {len(items)}")
        if any(s is None for s in items):
            raise ParameterError(f"{what} must all be present")
        return gf256.kernel.as_rows(items)


class ReedSolomon(LinearCode):
    """Systematic Reed-Solomon RS(k, m): any k of the n = k + m shards recover the data.

    ``construction="cauchy"`` (default) uses parity rows 1 / ((k + i) XOR j), the same matrix as
    ISA-L's gf_gen_cauchy1_matrix; ``"vandermonde"`` uses the Vandermonde matrix on points
    0..n-1 times the inverse of its top k x k block, as klauspost/reedsolomon does. Both are MDS
    for every k + m <= 256 (any k rows of a Vandermonde matrix on distinct points are
    independent; every square submatrix of a Cauchy matrix is nonsingular).

    Parameters
    ----------
    k
        Data shards (1..255).
    m
        Parity shards (0..256 - k).
    construction
        ``"cauchy"`` or ``"vandermonde"``.

    Raises
    ------
    ParameterError
        ``k`` or ``m`` out of range, or an unknown construction.

    Examples
    --------
    >>> code = ReedSolomon(4, 2)
    >>> shards = code.encode_all(code.split(b"any four of six shards rebuild it"))
    >>> kept = [None, shards[1], None, shards[3], shards[4], shards[5]]  # two lost
    >>> code.join(code.reconstruct(kept), 33)
    b'any four of six shards rebuild it'
    """

    def __init__(self, k: int, m: int, construction: str = "cauchy") -> None:
        check_range("k", k, 1, MAX_SHARDS - 1)
        check_range("m", m, 0, MAX_SHARDS - k)
        if construction == "cauchy":
            parity = gf256.cauchy(list(range(k, k + m)), list(range(k))) if m else None
            generator = (
                np.eye(k, dtype=np.uint8)
                if parity is None
                else np.vstack([np.eye(k, dtype=np.uint8), parity])
            )
        elif construction == "vandermonde":
            v = gf256.vandermonde(list(range(k + m)), k)
            generator = gf256.matmul_small(v, gf256.inverse(v[:k]))
        else:
            raise ParameterError(
                f"construction={construction!r} is not one of ['cauchy', 'vandermonde']"
            )
        super().__init__(generator, name=f"rs:{k},{m}")
        self.construction = construction


CODE_VERSIONS = (1, 2)  # generator constructions; a store records its own (code_version)
LATEST_CODE_VERSION = 2


class LRC(LinearCode):
    """Azure-style locally repairable code LRC(k, l, g), maximally recoverable.

    The k data shards form l local groups (sizes differ by at most one), each with one XOR local
    parity; g global parities cover all data. A lost data shard is rebuilt from its group alone.

    ``version=2`` (default) chooses the global coefficients so that the code recovers every
    erasure pattern that any code with these local groups can recover (maximally recoverable;
    see ``redundancy.erasure.recoverability``), verified exhaustively when it is built: e.g.
    LRC(12,2,2) recovers all 1568 recoverable sets of 4 lost shards (Azure's figure).
    ``version=1`` is the earlier construction (Cauchy rows on the first points that reach distance
    g + 2; LRC(12,2,2) recovers 1555), kept so that stores written with it still decode. Codes
    with more than ``recoverability.MAX_PATTERNS`` sets of l + g lost shards are too large to
    search exhaustively: version 2 then uses the version-1 generator (distance g + 2 verified).

    Parameters
    ----------
    k, l, g
        Data shards (2..254), local groups (1..k), global parities.
    version
        Generator construction, 1 or 2.

    Raises
    ------
    ParameterError
        Out-of-range parameters, an unknown version, or too many erasure patterns to verify.

    Examples
    --------
    >>> code = LRC(12, 2, 2)
    >>> code.n, code.repair_plan([0]).read_count, code.recovered_by_size()[4]
    (16, 6, 1568)
    """

    def __init__(
        self,
        k: int,
        l: int,  # noqa: E741 - the papers' letter
        g: int,
        *,
        version: int = LATEST_CODE_VERSION,
    ) -> None:
        check_range("k", k, 2, MAX_SHARDS - 2)
        check_range("l", l, 1, k)
        check_range("g", g, 0, MAX_SHARDS - k - l)
        if version not in CODE_VERSIONS:
            raise ParameterError(f"LRC version={version!r} is not one of {list(CODE_VERSIONS)}")
        groups = data_groups(k, l)
        generator = _lrc_generator(k, l, g, version)
        members = [[*group, k + j] for j, group in enumerate(groups)]
        super().__init__(generator, local_groups=members, name=f"lrc:{k},{l},{g}")
        self.l, self.g, self.version = l, g, version


@lru_cache(maxsize=32)
def _lrc_generator(k: int, l: int, g: int, version: int) -> np.ndarray:  # noqa: E741
    local_rows = np.zeros((l, k), dtype=np.uint8)
    for j, group in enumerate(data_groups(k, l)):
        local_rows[j, group] = 1
    identity = np.eye(k, dtype=np.uint8)
    if version == 1 or comb(k + l + g, l + g) > MAX_PATTERNS:
        # Too many patterns to search for maximal recoverability: the distance-verified
        # construction (also version 2's generator for such codes, so it must stay so).
        return _legacy_generator(k, l, g, identity, local_rows)
    global_rows, failing = maximally_recoverable_globals(k, l, g)
    generator = np.vstack([identity, local_rows, global_rows])
    if failing and not _tolerates_any(generator, g + 1):
        raise ParameterError(f"no LRC({k},{l},{g}) of distance {g + 2} found over GF(2^8)")
    generator.setflags(write=False)
    return generator


def _legacy_generator(
    k: int,
    l: int,  # noqa: E741
    g: int,
    identity: np.ndarray,
    local_rows: np.ndarray,
) -> np.ndarray:
    """Version 1: Cauchy rows on points k+o..k+o+g-1, the first offset o reaching distance g+2."""
    patterns = comb(k + l + g, g + 1)
    if patterns > MAX_LRC_PATTERNS:
        raise ParameterError(
            f"LRC({k},{l},{g}) has {patterns} erasure patterns to verify "
            f"(allowed: <= {MAX_LRC_PATTERNS}); use fewer shards or global parities"
        )
    for offset in range(0, 256 - k - g + 1):
        x_points = list(range(k + offset, k + offset + g))
        global_rows = gf256.cauchy(x_points, list(range(k))) if g else np.zeros((0, k), np.uint8)
        candidate = np.vstack([identity, local_rows, global_rows])
        if _tolerates_any(candidate, g + 1):
            return candidate
    raise ParameterError(f"no verified LRC({k},{l},{g}) found over GF(2^8)")


def _tolerates_any(generator: np.ndarray, erasures: int) -> bool:
    """True if every set of ``erasures`` lost shards leaves rows of full rank k."""
    n, k = generator.shape
    parity = generator[k:]
    check = np.hstack([parity, np.eye(n - k, dtype=np.uint8)])  # H = [P | I], G^T H^T = 0
    return all(
        gf256.rank(check[:, list(lost)]) == len(lost) for lost in combinations(range(n), erasures)
    )


def parse_code(spec: str, version: int = LATEST_CODE_VERSION) -> LinearCode:
    """Build a code from its spec: ``rs:K,M``, ``rs-vand:K,M`` or ``lrc:K,L,G``.

    Parameters
    ----------
    spec
        The code spec.
    version
        Generator construction of an LRC (see ``LRC``); Reed-Solomon has one construction,
        the same under every version.

    Returns
    -------
    LinearCode
        The code.

    Raises
    ------
    ParameterError
        A malformed spec, out-of-range parameters or an unknown version.

    Examples
    --------
    >>> parse_code("lrc:6,2,2", version=1).version
    1
    """
    kind, _, params = spec.partition(":")
    try:
        numbers = [int(p) for p in params.split(",")]
    except ValueError:
        raise ParameterError(f"code spec {spec!r}: parameters must be integers") from None
    expected = {"rs": 2, "rs-vand": 2, "lrc": 3}
    if kind not in expected:
        raise ParameterError(f"code spec {spec!r}: kind must be one of {list(expected)}")
    if len(numbers) != expected[kind]:
        raise ParameterError(f"code spec {spec!r}: {kind} takes {expected[kind]} parameters")
    if version not in CODE_VERSIONS:
        raise ParameterError(f"code version={version!r} is not one of {list(CODE_VERSIONS)}")
    if kind == "rs":
        return ReedSolomon(*numbers)
    if kind == "rs-vand":
        return ReedSolomon(*numbers, construction="vandermonde")
    return LRC(*numbers, version=version)
