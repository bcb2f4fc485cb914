"""Bandwidth-optimal MDS merge with a piggybacked vector code (sub-packetization alpha = r_F).

For r_I < r_F <= k_I no scalar code beats reading k_I shards per codeword; splitting every shard
into alpha = r_F layers does. Layers 0..r_I-1 of the initial code are plain codewords of the
family's [k_I + r_I, k_I] code. In layer r_I + b, parity j also carries a piggyback: the value of
the *new* final parity r_I + b on layer j's data. Conversion reads every initial parity in full and
layers r_I..r_F-1 of every data shard (a 1 - r_I / r_F fraction): with those layers it recomputes
the base parities, peels the piggybacks off and so learns the new parities of layers 0..r_I-1.
Total lambda (r_I + k_I (1 - r_I / r_F)) shards: the bandwidth bound.

The piggybacks depend only on layers 0..r_I-1, which decode first, so the initial code stays MDS;
``verify_mds`` checks that and the conversion matrix is solved (not assumed) from the read set.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from itertools import combinations

import numpy as np

from redundancy import gf256
from redundancy.convertible.algebra.access import ConvertibleFamily
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.algebra.family import search_thetas
from redundancy.errors import DecodeError, ParameterError

Symbol = tuple[int, int, int]  # (codeword, node, layer)


@dataclass(frozen=True)
class PiggybackMerge:
    """Initial piggybacked vector code, final layered MDS code, and the conversion between them.

    Build it with ``PiggybackMerge.build(conversion)`` for a merge with r_I < r_F <= k_I; every
    shard has alpha = r_F layers and ``convert`` reads ``bandwidth()`` shard units, the bandwidth
    bound lambda (r_I + k_I (1 - r_I / r_F)).

    Attributes
    ----------
    family : ConvertibleFamily
        The verified Vandermonde (``cvt``) family whose codes are applied layer by layer.

    Raises
    ------
    ParameterError
        From ``build``: not a merge, or r_F outside r_I < r_F <= k_I.

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.convertible.algebra.bounds import costs
    >>> code = PiggybackMerge.build(Conversion.merge(4, 1, 2, 2))
    >>> code.alpha, code.bandwidth(), costs(code.conversion).bandwidth, code.verify_mds()
    (2, Fraction(6, 1), Fraction(6, 1), True)
    >>> data = np.random.default_rng(0).integers(0, 256, (2, 4, 4), dtype=np.uint8)
    >>> parities, read = code.convert([code.encode(block) for block in data])
    >>> bool((parities == code.final_encode(np.vstack(data))).all()), read / 4
    (True, 6.0)
    """

    family: ConvertibleFamily

    @classmethod
    def build(cls, conversion: Conversion) -> PiggybackMerge:
        """Check the regime (merge, r_I < r_F <= k_I) and search a verified family.

        Parameters
        ----------
        conversion : Conversion
            A merge with r_I < r_F <= k_I.

        Returns
        -------
        PiggybackMerge
            The codes over the verified Vandermonde (``cvt``) family.

        Raises
        ------
        ParameterError
            Not a merge, r_F outside r_I < r_F <= k_I, or no verified family.
        """
        c = conversion
        if c.regime != "merge":
            raise ParameterError(f"piggyback conversion is for merges; {c.describe()} is not")
        if not (c.r_i < c.r_f <= c.k_i):
            raise ParameterError(
                f"r_F={c.r_f} is out of range for piggybacking (allowed: r_I={c.r_i} < r_F <= "
                f"k_I={c.k_i}); outside it the scalar access-optimal code already meets the bound"
            )
        return cls(ConvertibleFamily.build(conversion, construction="cvt"))

    @property
    def conversion(self) -> Conversion:
        return self.family.conversion

    @cached_property
    def thetas(self) -> tuple[int, ...]:
        """The verified Vandermonde family's thetas (parity j = sum_i theta_j^i d_i per layer)."""
        c = self.conversion
        return search_thetas(tuple(sorted({(c.k_i, c.r_i), (c.k_f, c.r_f)})))

    @property
    def alpha(self) -> int:
        """Sub-packetization: layers per shard."""
        return self.conversion.r_f

    @cached_property
    def initial_generator(self) -> np.ndarray:
        """(n_I alpha) x (k_I alpha) symbol generator; row node*alpha + a, column i*alpha + a."""
        c, a_n, th = self.conversion, self.alpha, self.thetas
        k, n = c.k_i, c.k_i + c.r_i
        g = np.zeros((n * a_n, k * a_n), dtype=np.uint8)
        for i in range(k):
            for a in range(a_n):
                g[i * a_n + a, i * a_n + a] = 1
        for j in range(c.r_i):
            for a in range(a_n):
                row = (k + j) * a_n + a
                for i in range(k):
                    g[row, i * a_n + a] = gf256.power(th[j], i)
                    if a >= c.r_i:  # piggyback: new parity a on layer j's data
                        g[row, i * a_n + j] = gf256.power(th[a], i)
        return g

    @cached_property
    def final_generator(self) -> np.ndarray:
        """(n_F alpha) x (k_F alpha): the family's [n_F, k_F] code applied to each layer."""
        c, a_n = self.conversion, self.alpha
        layer = self.family.final_code().generator
        g = np.zeros(((c.k_f + c.r_f) * a_n, c.k_f * a_n), dtype=np.uint8)
        for a in range(a_n):
            g[a::a_n, a::a_n] = layer
        return g

    @cached_property
    def reads(self) -> tuple[Symbol, ...]:
        """Every parity layer, and layers r_I..alpha-1 of every data shard, of every codeword."""
        c, a_n = self.conversion, self.alpha
        out: list[Symbol] = []
        for t in range(c.lambda_i):
            out += [(t, i, a) for i in range(c.k_i) for a in range(c.r_i, a_n)]
            out += [(t, c.k_i + j, a) for j in range(c.r_i) for a in range(a_n)]
        return tuple(out)

    def read_rows(self, reads: tuple[Symbol, ...]) -> np.ndarray:
        """Rows of the lambda stacked initial generators (block diagonal) for ``reads``."""
        c, a_n = self.conversion, self.alpha
        width = c.k_i * a_n
        rows = np.zeros((len(reads), c.lambda_i * width), dtype=np.uint8)
        for r, (t, node, a) in enumerate(reads):
            rows[r, t * width : (t + 1) * width] = self.initial_generator[node * a_n + a]
        return rows

    def targets(self) -> np.ndarray:
        """Rows of the final generator that conversion must produce (the parity layers)."""
        c, a_n = self.conversion, self.alpha
        return self.final_generator[c.k_f * a_n :]

    @cached_property
    def matrix(self) -> np.ndarray:
        """Conversion matrix: final parity symbols = matrix . read symbols (solved, then cached)."""
        try:
            return gf256.left_solve(self.targets(), self.read_rows(self.reads))
        except DecodeError:
            raise ParameterError(f"{self.conversion.describe()}: read set cannot convert") from None

    def bandwidth(self) -> Fraction:
        """Shard units read: symbols read / alpha."""
        return Fraction(len(self.reads), self.alpha)

    # ---------------------------------------------------------------- bytes
    def encode(self, data: np.ndarray) -> np.ndarray:
        """Initial codeword: (k_I, alpha L) data shards -> (n_I, alpha L) shards (layer-major)."""
        c, a_n = self.conversion, self.alpha
        if data.ndim != 2 or data.shape[0] != c.k_i or data.shape[1] % a_n:
            raise ParameterError(
                f"data must be (k_I={c.k_i}, L) with L a multiple of alpha={a_n}, got {data.shape}"
            )
        symbols = data.reshape(c.k_i * a_n, -1)
        coded = gf256.matmul(self.initial_generator, symbols)
        return coded.reshape(c.k_i + c.r_i, -1)

    def convert(self, codewords: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """Final parity shards (r_F, alpha L) from lambda initial codewords; also bytes read."""
        c, a_n = self.conversion, self.alpha
        if len(codewords) != c.lambda_i:
            raise ParameterError(f"expected lambda={c.lambda_i} codewords, got {len(codewords)}")
        layers = [w.reshape(w.shape[0], a_n, -1) for w in codewords]
        fetched = [layers[t][node, a] for t, node, a in self.reads]
        out = gf256.matmul_sparse(self.matrix, fetched)
        return out.reshape(c.r_f, -1), sum(f.nbytes for f in fetched)

    def final_encode(self, data: np.ndarray) -> np.ndarray:
        """Direct encoding of merged data with the final code: the (r_F, alpha L) parities."""
        c, a_n = self.conversion, self.alpha
        coded = gf256.matmul(self.final_generator[c.k_f * a_n :], data.reshape(c.k_f * a_n, -1))
        return coded.reshape(c.r_f, -1)

    def verify_mds(self) -> bool:
        """Any k_I of the n_I initial nodes recover all k_I alpha data symbols (exhaustive)."""
        c, a_n = self.conversion, self.alpha
        g = self.initial_generator
        for nodes in combinations(range(c.k_i + c.r_i), c.k_i):
            rows = [node * a_n + a for node in nodes for a in range(a_n)]
            if gf256.rank(g[rows]) < c.k_i * a_n:
                return False
        return True


@dataclass(frozen=True)
class Measured:
    """A vector-code conversion run on random data (piggyback or LRC merge): bytes read, and
    whether the converted parities equal a direct encoding."""

    alpha: int
    bytes_read: int
    units: Fraction  # bytes read / bytes per shard
    correct: bool


def measure(conversion: Conversion, shard_bytes: int = 4096, seed: int = 0) -> Measured:
    """Encode lambda random codewords, convert them, compare with encoding the merged data."""
    code = PiggybackMerge.build(conversion)
    c, a_n = conversion, code.alpha
    if shard_bytes < a_n or shard_bytes % a_n:
        raise ParameterError(f"shard_bytes={shard_bytes} must be a positive multiple of {a_n}")
    rng = np.random.default_rng(seed)
    data = [rng.integers(0, 256, (c.k_i, shard_bytes), dtype=np.uint8) for _ in range(c.lambda_i)]
    parities, nbytes = code.convert([code.encode(d) for d in data])
    correct = np.array_equal(parities, code.final_encode(np.vstack(data)))
    return Measured(a_n, nbytes, Fraction(nbytes, shard_bytes), correct)
