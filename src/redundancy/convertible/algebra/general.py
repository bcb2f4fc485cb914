"""Read-access-optimal conversion in the general regime (neither k_I nor k_F divides the other).

lambda_I codewords of an [n_I, k_I] code become lambda_F codewords of an [n_F, k_F] code, both from
one ``ConvertibleFamily`` (explicit GRS codes by default; see ``algebra.grs``). Write k_F = q k_I +
s. Following Maturana, Mukka & Rashmi (ISIT 2020) the conversion is a split of m = lambda_I mod
lambda_F initial codewords followed by merges: final codeword u takes q whole initial codewords
(merged: only their first r_F parities are read) and s data shards from the split codewords. Split
codeword t gives one final codeword a whole piece of s shards; its other k_I - s shards fill the
final codewords that no split codeword serves whole. A split codeword is read as its r_F parities
plus the k_I - s shards outside its s-piece (the s-piece's contribution is the parity minus the
rest), or as all k_I data shards when that is cheaper (r_F >= s). Total: lambda_I r_F + m (k_I -
max(s, r_F)), the bound. When r_F > r_I (or r_F >= k_I) no parity helps and every data shard is
read.

Data shards never move (stable conversion): ``layout[u]`` lists the (codeword, shard) positions that
are final codeword u's data, in order. The conversion matrix is solved over GF(2^8) from the read
set, and ``minimal_reads`` proves per initial codeword that no smaller read set works for these
codes and this layout (codewords hold disjoint data, so read sets decompose).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations

import numpy as np

from redundancy import gf256
from redundancy.convertible.algebra.access import (
    ConversionPlan,
    ConvertibleFamily,
    Shard,
    solve_plan,
)
from redundancy.convertible.algebra.bounds import Conversion
from redundancy.convertible.algebra.family import verify_mds
from redundancy.erasure.codes import LinearCode
from redundancy.errors import ParameterError

MEASURE_MAX_LCM = 120  # `convert cost` runs the construction up to this many data shards


@dataclass(frozen=True)
class GeneralConversion:
    """Codes, data layout and read set of one general-regime conversion."""

    family: ConvertibleFamily

    @classmethod
    def build(cls, conversion: Conversion, construction: str = "grs") -> GeneralConversion:
        """Build both codes (``construction`` as in ``ConvertibleFamily.build``)."""
        c = conversion
        if c.regime != "general":
            raise ParameterError(
                f"{c.describe()} is in the {c.regime} regime; use merge_plan or split_plan"
            )
        return cls(ConvertibleFamily.build(conversion, construction))

    @property
    def conversion(self) -> Conversion:
        """The conversion's parameters."""
        return self.family.conversion

    def initial_code(self) -> LinearCode:
        """The [n_I, k_I] code of every initial codeword."""
        return self.family.initial_code()

    def final_code(self) -> LinearCode:
        """The [n_F, k_F] code of every final codeword."""
        return self.family.final_code()

    @property
    def split_count(self) -> int:
        """Initial codewords that are split across final codewords: lambda_I mod lambda_F."""
        return self.conversion.lambda_i % self.conversion.lambda_f

    @cached_property
    def layout(self) -> tuple[tuple[Shard, ...], ...]:
        """Final codeword u's data shards, as (initial codeword, shard) in encoding order."""
        c = self.conversion
        q, s, m = c.k_f // c.k_i, c.k_f % c.k_i, self.split_count
        finals: list[list[Shard]] = [[] for _ in range(c.lambda_f)]
        whole = iter(range(m, c.lambda_i))
        for u in range(c.lambda_f):
            for _ in range(q):
                t = next(whole)
                finals[u] += [(t, i) for i in range(c.k_i)]
        for t in range(m):  # split codeword t's s-piece fills final codeword t's remainder
            finals[t] += [(t, i) for i in range(s)]
        leftovers = [(t, i) for t in range(m) for i in range(s, c.k_i)]
        for u in range(m, c.lambda_f):
            finals[u] += leftovers[:s]
            leftovers = leftovers[s:]
        assert not leftovers and all(len(f) == c.k_f for f in finals)
        return tuple(tuple(f) for f in finals)

    def _parities_help(self) -> bool:
        c = self.conversion
        return c.r_f <= c.r_i and c.r_f < c.k_i

    @cached_property
    def reads(self) -> tuple[Shard, ...]:
        """Reads: r_F parities per merged codeword; parities + all but the s-piece per split one."""
        c = self.conversion
        s = c.k_f % c.k_i
        parities = [c.k_i + j for j in range(c.r_f)]
        out: list[Shard] = []
        for t in range(c.lambda_i):
            if not self._parities_help():
                out += [(t, i) for i in range(c.k_i)]
            elif t >= self.split_count:
                out += [(t, p) for p in parities]
            elif c.r_f < s:
                out += [(t, i) for i in range(s, c.k_i)] + [(t, p) for p in parities]
            else:
                out += [(t, i) for i in range(c.k_i)]
        return tuple(out)

    def symbol_vector(self, shard: Shard) -> np.ndarray:
        """Initial shard (t, i) as a combination of the lcm(k_I, k_F) data shards."""
        c = self.conversion
        t, i = shard
        vec = np.zeros(c.lcm, dtype=np.uint8)
        if i < c.k_i:
            vec[t * c.k_i + i] = 1
        else:
            vec[t * c.k_i : (t + 1) * c.k_i] = self.family.parities[0][i - c.k_i]
        return vec

    def target_vectors(self) -> dict[Shard, np.ndarray]:
        """Final parity (u, j) as a combination of the lcm(k_I, k_F) data shards."""
        c = self.conversion
        rows = self.family.parities[1]
        out = {}
        for u, shards in enumerate(self.layout):
            for j in range(c.r_f):
                vec = np.zeros(c.lcm, dtype=np.uint8)
                for pos, (t, i) in enumerate(shards):
                    vec[t * c.k_i + i] = rows[j, pos]
                out[(u, j)] = vec
        return out

    def plan(self) -> ConversionPlan:
        """Matrix from ``reads`` to every final parity, solved over GF(2^8)."""
        return solve_plan(self.family, self.layout, self.reads)

    def final_data(self, initial_data: list[np.ndarray]) -> list[np.ndarray]:
        """Final codewords' data (k_F x B each), gathered by ``layout`` from the initial data."""
        return [np.stack([initial_data[t][i] for t, i in shards]) for shards in self.layout]

    def minimal_reads(self) -> int:
        """Fewest shards any linear conversion between these two codes (this layout) reads.

        Initial codewords hold disjoint data, so a read set works iff, for every codeword t, the
        shards read from t span the restriction of every final parity to t's data. Each codeword's
        subsets are enumerated by size (2^n_I of them) and the smallest sizes are summed.
        """
        c = self.conversion
        targets = np.array(list(self.target_vectors().values()), dtype=np.uint8)
        total = 0
        for t in range(c.lambda_i):
            own = targets[:, t * c.k_i : (t + 1) * c.k_i]
            need = own[np.any(own != 0, axis=1)]
            if len(need) == 0:
                continue
            span = slice(t * c.k_i, (t + 1) * c.k_i)
            symbols = np.array(
                [self.symbol_vector((t, i))[span] for i in range(c.k_i + c.r_i)], dtype=np.uint8
            )
            goal = gf256.rank(need)
            total += next(
                size
                for size in range(goal, len(symbols) + 1)
                for subset in combinations(range(len(symbols)), size)
                if gf256.rank(symbols[list(subset)])
                == gf256.rank(np.vstack([symbols[list(subset)], need]))
            )
        return total


class _CountingShards(dict):
    """A shard dict that records which keys were actually read."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.touched: set = set()

    def __getitem__(self, key):
        self.touched.add(key)
        return super().__getitem__(key)


@dataclass(frozen=True)
class GeneralRun:
    """What one in-memory general-regime conversion read, and whether it was right."""

    shards_read: int
    bytes_read: int
    correct: bool
    final_mds: bool


def convert(
    gen: GeneralConversion, codewords: list[np.ndarray]
) -> tuple[dict[Shard, np.ndarray], set[Shard]]:
    """Run the plan on lambda_I encoded codewords (n_I x B); return new parities and shards read."""
    plan = gen.plan()
    store = _CountingShards(
        {(t, i): word[i] for t, word in enumerate(codewords) for i in range(len(word))}
    )
    fetch = {}
    for key in plan.reads:
        fetch[key] = store[key]
    return plan.apply(fetch), store.touched


def measure(conversion: Conversion, shard_bytes: int = 64, seed: int = 0) -> GeneralRun:
    """Encode random data, convert, count shards read, compare with direct final encoding."""
    gen = GeneralConversion.build(conversion)
    c = conversion
    rng = np.random.default_rng(seed)
    data = [rng.integers(0, 256, (c.k_i, shard_bytes), dtype=np.uint8) for _ in range(c.lambda_i)]
    ic, fc = gen.initial_code(), gen.final_code()
    parities, touched = convert(gen, [ic.encode_all(d) for d in data])
    correct = all(
        np.array_equal(np.stack([parities[(u, j)] for j in range(c.r_f)]), fc.encode(fd))
        for u, fd in enumerate(gen.final_data(data))
    )
    return GeneralRun(len(touched), len(touched) * shard_bytes, correct, verify_mds(fc))
