"""Bandwidth-optimal global merge of LRCs: lam (k, g_I, r, l) codewords -> one (lam k, g_F, r, l).

Every shard is split into alpha = g_F + l layers (symbols). Data shards and local groups stay put:
local parity j of a group is the same function of the group's data on every layer (all ones for
l = 1, Cauchy rows otherwise), before and after the merge. Only the global parities change.

Conversion reads, from each initial codeword, its g_I global shards in full and s = g_F - g_I
layers of every data and local-parity shard (layers ``p s .. p s + s - 1`` mod alpha for the shard
at position p of its group, so a group's shards cover the layers evenly). That is
lam [g_I + (k + l k / r) s / (g_F + l)] shard units: the cut-set bound of ``bounds``.

The initial globals are layered Vandermonde parities plus piggybacks of the next layer
(pseudo-random coefficients); the final globals are *defined* as a linear map of what conversion
reads, ``G = sum_t M_t [globals_t; reads_t]``. The seed of the coefficients is searched until both
codes are verified optimal-distance LRCs (every erasure pattern of g + l shards decodes) whose data
shards are repaired by their local group. The conversion matrix is then solved from the read set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from itertools import combinations, islice
from math import comb

import numpy as np

from redundancy import gf256
from redundancy.convertible.algebra.bounds import LRCMerge
from redundancy.convertible.algebra.piggyback import Measured
from redundancy.errors import DecodeError, ParameterError

Symbol = tuple[int, int, int]  # (codeword, node, layer)
MAX_PATTERNS = 200_000  # erasure patterns of the final code checked (batched: ~30,000 a second)
MAX_SEEDS = 64


@dataclass(frozen=True)
class LRCLayout:
    """Node order of one (k, g, r, l) codeword: data, then l local parities per group, then g."""

    k: int
    g: int
    r: int
    l: int  # noqa: E741 - the papers' letter

    @property
    def groups(self) -> int:
        return self.k // self.r

    @property
    def n(self) -> int:
        return self.k + self.l * self.groups + self.g

    def local_node(self, group: int, j: int) -> int:
        return self.k + group * self.l + j

    def group_nodes(self, group: int) -> list[int]:
        """Data then local-parity nodes of ``group`` (positions 0 .. r + l - 1)."""
        data = list(range(group * self.r, (group + 1) * self.r))
        return data + [self.local_node(group, j) for j in range(self.l)]

    @property
    def distance(self) -> int:
        """Optimal minimum distance of an LRC with these parameters: g + l + 1."""
        return self.g + self.l + 1


def local_rows(r: int, l: int) -> np.ndarray:  # noqa: E741
    """l x r local parity coefficients: XOR for l = 1, a Cauchy (MDS) block otherwise."""
    if l == 1:
        return np.ones((1, r), dtype=np.uint8)
    return gf256.cauchy(list(range(r, r + l)), list(range(r)))


def layered(rows: np.ndarray, alpha: int, nodes: list[int], width: int) -> np.ndarray:
    """Apply scalar rows (over ``nodes``) to every layer: (len(rows) alpha) x (width alpha)."""
    out = np.zeros((rows.shape[0] * alpha, width * alpha), dtype=np.uint8)
    for j in range(rows.shape[0]):
        for a in range(alpha):
            for c, node in enumerate(nodes):
                out[j * alpha + a, node * alpha + a] = rows[j, c]
    return out


@dataclass(frozen=True)
class LRCGlobalMerge:
    """Initial and final vector LRCs over GF(2^8) and the bandwidth-optimal conversion.

    Build it with ``LRCGlobalMerge.build(merge)``, which searches the first verified ``seed``;
    ``encode`` writes an initial codeword, ``convert`` turns lam of them into the final global
    parities, reading ``bandwidth()`` shard units (the cut-set bound of the merge).

    Attributes
    ----------
    merge : LRCMerge
        The parameters (k, g_I, g_F, r, l, lam), with 1 <= g_I < g_F <= r.
    seed : int
        Seed of the piggyback and final-global coefficients.

    Raises
    ------
    ParameterError
        From ``build``: parameters outside 1 <= g_I < g_F <= r, a final code too large to verify,
        or no verified seed.

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.convertible.algebra.bounds import lrc_bandwidth_bound
    >>> code = LRCGlobalMerge.build(LRCMerge(k=4, g_i=1, g_f=2, r=2, l=1, lam=2))
    >>> code.alpha, code.bandwidth(), lrc_bandwidth_bound(code.merge)
    (3, Fraction(6, 1), Fraction(6, 1))
    >>> data = np.random.default_rng(0).integers(0, 256, (2, 4, 6), dtype=np.uint8)
    >>> globals_, read = code.convert([code.encode(block) for block in data])
    >>> bool((globals_ == code.final_encode(np.vstack(data))[-2:]).all()), read / 6
    (True, 6.0)
    """

    merge: LRCMerge
    seed: int

    @classmethod
    def build(cls, merge: LRCMerge) -> LRCGlobalMerge:
        """Search the first seed whose initial and final codes verify (see ``verify``).

        Parameters
        ----------
        merge : LRCMerge
            The parameters, with 1 <= g_I < g_F <= r.

        Returns
        -------
        LRCGlobalMerge
            The codes of the first verified seed.

        Raises
        ------
        ParameterError
            Parameters outside 1 <= g_I < g_F <= r, a final code with too many erasure patterns
            to verify, or no verified seed among the first ``MAX_SEEDS``.
        """
        m = merge
        if not (1 <= m.g_i < m.g_f <= m.r):
            raise ParameterError(
                f"the piggybacked LRC merge needs 1 <= g_I < g_F <= r (got g_I={m.g_i}, "
                f"g_F={m.g_f}, r={m.r}); for g_F <= g_I reading g_F globals per codeword is "
                "already optimal, and g_I = 0 has no global parity to carry piggybacks"
            )
        final = LRCLayout(m.lam * m.k, m.g_f, m.r, m.l)
        patterns = comb(final.n, final.distance - 1)
        if patterns > MAX_PATTERNS:
            raise ParameterError(
                f"final LRC has {patterns} erasure patterns to verify (allowed: <= {MAX_PATTERNS})"
            )
        for seed in range(MAX_SEEDS):
            code = cls(merge, seed)
            if code.verify():
                return code
        raise ParameterError(f"no verified convertible LRC found in {MAX_SEEDS} seeds")

    # ---------------------------------------------------------------- parameters
    @property
    def alpha(self) -> int:
        """Sub-packetization: layers per shard."""
        return self.merge.g_f + self.merge.l

    @property
    def initial(self) -> LRCLayout:
        m = self.merge
        return LRCLayout(m.k, m.g_i, m.r, m.l)

    @property
    def final(self) -> LRCLayout:
        m = self.merge
        return LRCLayout(m.lam * m.k, m.g_f, m.r, m.l)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    # ---------------------------------------------------------------- initial code
    def _local_block(self, layout: LRCLayout) -> np.ndarray:
        """Local parity rows (layout.l groups alpha) x (layout.k alpha)."""
        lay, a_n = layout, self.alpha
        blocks = [
            layered(local_rows(lay.r, lay.l), a_n, lay.group_nodes(g)[: lay.r], lay.k)
            for g in range(lay.groups)
        ]
        return np.vstack(blocks)

    @cached_property
    def initial_generator(self) -> np.ndarray:
        """(n_I alpha) x (k alpha); row node*alpha + a, column i*alpha + a (layer-major shards)."""
        lay, a_n = self.initial, self.alpha
        rng = self._rng()
        base = gf256.vandermonde([gf256.power(2, j) for j in range(1, lay.g + 1)], lay.k)
        glob = layered(base, a_n, list(range(lay.k)), lay.k)
        for j in range(lay.g):
            for a in range(a_n):
                for i in range(lay.k):  # piggyback: the next layer of every data shard
                    coefficient = int(rng.integers(1, 256))
                    glob[j * a_n + a, i * a_n + (a + 1) % a_n] ^= coefficient
        eye = np.eye(lay.k * a_n, dtype=np.uint8)
        return np.vstack([eye, self._local_block(lay), glob])

    def layers_read(self, node: int) -> list[int]:
        """Layers conversion reads from a data or local-parity node of an initial codeword."""
        lay, s = self.initial, self.merge.g_f - self.merge.g_i
        if node >= lay.k + lay.l * lay.groups:
            return list(range(self.alpha))  # a global parity: read in full
        position = node % lay.r if node < lay.k else lay.r + (node - lay.k) % lay.l
        return [(position * s + j) % self.alpha for j in range(s)]

    @cached_property
    def reads(self) -> tuple[Symbol, ...]:
        """Every symbol the conversion reads: (codeword, node, layer)."""
        return tuple(
            (t, node, a)
            for t in range(self.merge.lam)
            for node in range(self.initial.n)
            for a in self.layers_read(node)
        )

    def read_rows(self, reads: tuple[Symbol, ...]) -> np.ndarray:
        """Rows of the lam stacked initial generators (block diagonal) for ``reads``."""
        a_n, width = self.alpha, self.merge.k * self.alpha
        rows = np.zeros((len(reads), self.merge.lam * width), dtype=np.uint8)
        for row, (t, node, a) in enumerate(reads):
            rows[row, t * width : (t + 1) * width] = self.initial_generator[node * a_n + a]
        return rows

    # ---------------------------------------------------------------- final code
    @cached_property
    def final_globals(self) -> np.ndarray:
        """(g_F alpha) x (k_F alpha): sum over codewords of M_t . (rows read from codeword t)."""
        rng = np.random.default_rng([self.seed, 1])
        out = np.zeros((self.merge.g_f * self.alpha, self.final.k * self.alpha), dtype=np.uint8)
        for t in range(self.merge.lam):
            mine = tuple(s for s in self.reads if s[0] == t)
            mix = rng.integers(0, 256, (out.shape[0], len(mine)), dtype=np.uint8)
            out ^= gf256.matmul_small(mix, self.read_rows(mine))
        return out

    @cached_property
    def final_generator(self) -> np.ndarray:
        """(n_F alpha) x (k_F alpha): data, the unchanged local groups, the new globals."""
        eye = np.eye(self.final.k * self.alpha, dtype=np.uint8)
        return np.vstack([eye, self._local_block(self.final), self.final_globals])

    def targets(self) -> np.ndarray:
        """Rows conversion must produce: the final global parities."""
        return self.final_globals

    @cached_property
    def matrix(self) -> np.ndarray:
        """Conversion matrix: final global symbols = matrix . read symbols (solved)."""
        try:
            return gf256.left_solve(self.targets(), self.read_rows(self.reads))
        except DecodeError:
            raise ParameterError("read set cannot produce the final globals") from None

    def bandwidth(self) -> Fraction:
        """Shard units read: symbols read / alpha."""
        return Fraction(len(self.reads), self.alpha)

    # ---------------------------------------------------------------- verification
    def verify(self) -> bool:
        """Both codes reach the optimal distance and every data shard is locally repairable."""
        return all(
            tolerates(gen, lay, self.alpha, lay.distance - 1)
            and locally_repairable(gen, lay, self.alpha)
            for gen, lay in (
                (self.initial_generator, self.initial),
                (self.final_generator, self.final),
            )
        )

    # ---------------------------------------------------------------- bytes
    def encode(self, data: np.ndarray) -> np.ndarray:
        """Initial codeword: (k, alpha L) data shards -> (n_I, alpha L) shards."""
        return _encode(self.initial_generator, data, self.merge.k, self.alpha)

    def final_encode(self, data: np.ndarray) -> np.ndarray:
        """Direct encoding of merged (k_F, alpha L) data with the final code: all n_F shards."""
        return _encode(self.final_generator, data, self.final.k, self.alpha)

    def convert(self, codewords: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """Final global shards (g_F, alpha L) from lam initial codewords; also bytes read."""
        lam = self.merge.lam
        if len(codewords) != lam:
            raise ParameterError(f"expected lambda={lam} codewords, got {len(codewords)}")
        layers = [w.reshape(w.shape[0], self.alpha, -1) for w in codewords]
        fetched = [layers[t][node, a] for t, node, a in self.reads]
        out = gf256.matmul_sparse(self.matrix, fetched)
        return out.reshape(self.merge.g_f, -1), sum(f.nbytes for f in fetched)


def _encode(generator: np.ndarray, data: np.ndarray, k: int, alpha: int) -> np.ndarray:
    if data.ndim != 2 or data.shape[0] != k or data.shape[1] % alpha:
        raise ParameterError(
            f"data must be (k={k}, L) with L a multiple of alpha={alpha}, got {data.shape}"
        )
    coded = gf256.matmul(generator, data.reshape(k * alpha, -1))
    return coded.reshape(generator.shape[0] // alpha, -1)


def full_column_rank(stack: np.ndarray) -> np.ndarray:
    """Which of a stack of tall matrices have independent columns over GF(2^8), all at once.

    Gaussian elimination runs on every matrix in lock-step, one numpy operation per pivot
    column (as ``gf256.nonsingular_batch`` does for square ones), so tens of thousands of erasure
    patterns are checked in about a second.

    Parameters
    ----------
    stack
        A (count, rows, columns) uint8 array with rows >= columns.

    Returns
    -------
    numpy.ndarray
        A (count,) bool array, True where the columns are linearly independent.

    Raises
    ------
    ParameterError
        If ``stack`` is not a stack of matrices with at least as many rows as columns.

    Examples
    --------
    >>> full_column_rank(np.array([[[1, 2], [2, 4], [0, 0]], [[1, 2], [2, 4], [0, 1]]]))
    array([False,  True])
    """
    work = np.array(stack, dtype=np.uint8)
    if work.ndim != 3 or work.shape[1] < work.shape[2]:
        raise ParameterError(
            f"expected a (count, rows, columns) stack, rows >= columns: {work.shape}"
        )
    count, _, columns = work.shape
    independent = np.ones(count, dtype=bool)
    every = np.arange(count)
    inverse_of = np.concatenate(
        [np.zeros(1, dtype=np.uint8), gf256.inv(np.arange(1, 256, dtype=np.uint8))]
    )
    for column in range(columns):
        nonzero = work[:, column:, column] != 0
        independent &= nonzero.any(axis=1)
        pivot = column + nonzero.argmax(axis=1)
        top = work[every, column].copy()
        work[every, column] = work[every, pivot]
        work[every, pivot] = top
        factors = gf256.MUL_TABLE[
            work[:, column + 1 :, column], inverse_of[work[:, column, column]][:, None]
        ]
        # rows below the pivot are already zero left of ``column``: eliminate from it rightwards
        work[:, column + 1 :, column:] ^= gf256.MUL_TABLE[
            factors[:, :, None], work[:, column, column:][:, None, :]
        ]
    return independent


PATTERN_BATCH = 4096  # erasure patterns eliminated together (bounds the working memory)


def recovered_patterns(generator: np.ndarray, n: int, alpha: int, losses: int) -> int:
    """How many of the C(n, losses) sets of lost nodes decode, counted exactly (batched ranks).

    A set decodes when the parity-check columns of its lost layers are independent.

    Parameters
    ----------
    generator
        The systematic (n alpha) x (k alpha) layer generator.
    n
        Nodes.
    alpha
        Layers per node.
    losses
        Nodes lost at once.

    Returns
    -------
    int
        The number of sets that decode.

    Examples
    --------
    >>> generator = np.vstack([np.eye(2, dtype=np.uint8), np.ones((1, 2), np.uint8)])
    >>> recovered_patterns(generator, 3, 1, 1), recovered_patterns(generator, 3, 1, 2)
    (3, 0)
    """
    return sum(int(ok.sum()) for ok in _decodable_batches(generator, n, alpha, losses))


def _decodable_batches(
    generator: np.ndarray, n: int, alpha: int, losses: int
) -> Iterator[np.ndarray]:
    """Per batch of ``PATTERN_BATCH`` sets of ``losses`` nodes, which decode (bool array)."""
    rows, cols = generator.shape
    patterns = combinations(range(n), losses)
    if losses * alpha > rows - cols:  # more lost layers than parity layers: none decodes
        while batch := list(islice(patterns, PATTERN_BATCH)):
            yield np.zeros(len(batch), dtype=bool)
        return
    check = np.hstack([generator[cols:], np.eye(rows - cols, dtype=np.uint8)])
    layers = np.arange(alpha)
    while batch := list(islice(patterns, PATTERN_BATCH)):
        nodes = np.array(batch, dtype=np.intp).reshape(len(batch), losses)
        columns = (nodes[:, :, None] * alpha + layers).reshape(len(batch), -1)
        yield full_column_rank(np.moveaxis(check[:, columns], 1, 0))


def tolerates(generator: np.ndarray, layout: LRCLayout, alpha: int, erasures: int) -> bool:
    """Every set of ``erasures`` lost nodes is decodable (parity-check columns independent).

    Exhaustive over all C(n, erasures) node sets, in batches (``full_column_rank``); stops at
    the first batch with a set that does not decode.
    """
    return all(ok.all() for ok in _decodable_batches(generator, layout.n, alpha, erasures))


def locally_repairable(generator: np.ndarray, layout: LRCLayout, alpha: int) -> bool:
    """Each data node is a linear function of the other nodes of its local group."""
    for group in range(layout.groups):
        nodes = layout.group_nodes(group)
        for node in nodes[: layout.r]:
            others = [m * alpha + a for m in nodes if m != node for a in range(alpha)]
            basis = generator[others]
            for a in range(alpha):
                if gf256.express(basis, generator[node * alpha + a]) is None:
                    return False
    return True


def measure(merge: LRCMerge, shard_bytes: int = 3072, seed: int = 0) -> Measured:
    """Encode lam random codewords, convert, compare with the final code's direct encoding."""
    code = LRCGlobalMerge.build(merge)
    if shard_bytes < code.alpha or shard_bytes % code.alpha:
        raise ParameterError(f"shard_bytes={shard_bytes} must be a positive multiple of alpha")
    rng = np.random.default_rng(seed)
    data = [rng.integers(0, 256, (merge.k, shard_bytes), dtype=np.uint8) for _ in range(merge.lam)]
    globals_, nbytes = code.convert([code.encode(d) for d in data])
    direct = code.final_encode(np.vstack(data))[-merge.g_f :]
    return Measured(
        code.alpha, nbytes, Fraction(nbytes, shard_bytes), np.array_equal(globals_, direct)
    )
