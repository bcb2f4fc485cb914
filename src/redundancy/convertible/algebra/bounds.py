"""Cost model of code conversion: lower bounds on access and bandwidth, and the re-encode cost.

A conversion turns lambda_I codewords of an [n_I, k_I] MDS code into lambda_F codewords of an
[n_F, k_F] MDS code (lambda_I k_I = lambda_F k_F = lcm(k_I, k_F)); merge is lambda_F = 1, split is
lambda_I = 1. Conversions are *stable*: data shards stay where they are, only parities change.

Access counts whole shards read and written (Maturana & Rashmi 2022; Maturana, Mukka & Rashmi
2020). Bandwidth counts data read, in units of one shard (Maturana & Rashmi, arXiv 2008.12707).
The LRC bound is the cut-set bound for the global merge of (k, g, r, l) LRCs (Chopra et al.).
The default ("re-encode") conversion reads every data shard and writes every new parity.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd

from redundancy.errors import ParameterError, check_range

MAX_K = 255


@dataclass(frozen=True)
class Conversion:
    """[n_I, k_I] -> [n_F, k_F] written with r = n - k; the regime follows from k_I and k_F.

    ``lambda_I`` initial codewords become ``lambda_F`` final ones, lambda_I k_I = lambda_F k_F =
    lcm(k_I, k_F): a merge when lambda_F = 1, a split when lambda_I = 1, else general.
    ``Conversion.merge(k_i, r_i, lam, r_f)`` builds the merge of ``lam`` codewords.

    Attributes
    ----------
    k_i, r_i : int
        Data and parity shards of an initial codeword (1 <= k_I <= 255, 0 <= r_I <= 256 - k_I).
    k_f, r_f : int
        Data and parity shards of a final codeword (1 <= k_F <= 255, 0 <= r_F <= 256 - k_F).

    Raises
    ------
    ParameterError
        A parameter is out of range, or k_I = k_F (nothing to convert).

    Examples
    --------
    >>> merge = Conversion.merge(6, 3, 2, 2)
    >>> merge, merge.regime, merge.describe()
    (Conversion(k_i=6, r_i=3, k_f=12, r_f=2), 'merge', '(9,6) x2 -> (14,12) x1')
    >>> Conversion(6, 2, 9, 3).regime, Conversion(12, 2, 6, 2).regime
    ('general', 'split')
    >>> Conversion(6, 2, 6, 3)
    Traceback (most recent call last):
    redundancy.errors.ParameterError: k_I = k_F = 6: nothing to convert (k must change)
    """

    k_i: int
    r_i: int
    k_f: int
    r_f: int

    def __post_init__(self) -> None:
        check_range("k_I", self.k_i, 1, MAX_K)
        check_range("k_F", self.k_f, 1, MAX_K)
        check_range("r_I", self.r_i, 0, 256 - self.k_i)
        check_range("r_F", self.r_f, 0, 256 - self.k_f)
        if self.k_i == self.k_f:
            raise ParameterError(f"k_I = k_F = {self.k_i}: nothing to convert (k must change)")

    @classmethod
    def merge(cls, k_i: int, r_i: int, lam: int, r_f: int) -> Conversion:
        """lam codewords of [k_i + r_i, k_i] into one [lam k_i + r_f, lam k_i].

        Parameters
        ----------
        k_i, r_i : int
            Data and parity shards of an initial codeword.
        lam : int
            Codewords merged (2..255).
        r_f : int
            Parity shards of the merged codeword.

        Returns
        -------
        Conversion
            The merge (k_I, r_I) -> (lam k_I, r_F).

        Raises
        ------
        ParameterError
            A parameter is out of range.
        """
        check_range("lambda", lam, 2, MAX_K)
        return cls(k_i, r_i, lam * k_i, r_f)

    @property
    def lcm(self) -> int:
        """Data symbols touched by one conversion: lcm(k_I, k_F)."""
        return self.k_i * self.k_f // gcd(self.k_i, self.k_f)

    @property
    def lambda_i(self) -> int:
        """Initial codewords per conversion."""
        return self.lcm // self.k_i

    @property
    def lambda_f(self) -> int:
        """Final codewords per conversion."""
        return self.lcm // self.k_f

    @property
    def regime(self) -> str:
        """merge (many into one), split (one into many) or general."""
        if self.lambda_f == 1:
            return "merge"
        if self.lambda_i == 1:
            return "split"
        return "general"

    def describe(self) -> str:
        """e.g. (14,10) x2 -> (24,20)."""
        left = f"({self.k_i + self.r_i},{self.k_i})"
        right = f"({self.k_f + self.r_f},{self.k_f})"
        return f"{left} x{self.lambda_i} -> {right} x{self.lambda_f}"


@dataclass(frozen=True)
class Costs:
    """Lower bounds and the re-encode cost of one conversion (shards, or shard units).

    Built by :func:`costs`; ``access`` and ``reencode_access`` add reads and writes.

    Attributes
    ----------
    read_access : int
        Fewest whole shards any stable linear MDS conversion reads.
    write_access : int
        Shards it writes: every final parity, lambda_F r_F.
    bandwidth : Fraction or None
        Fewest shard units any conversion reads (merge regime only; None otherwise).
    reencode_read, reencode_write : int
        Shards read and written by read-all-and-re-encode.

    Examples
    --------
    >>> bounds = costs(Conversion.merge(6, 3, 2, 2))
    >>> bounds.access, bounds.reencode_access, bounds.bandwidth
    (6, 14, Fraction(4, 1))
    """

    read_access: int
    write_access: int
    bandwidth: Fraction | None  # merge regime only
    reencode_read: int
    reencode_write: int

    @property
    def access(self) -> int:
        """Reads plus writes (the access cost of the papers)."""
        return self.read_access + self.write_access

    @property
    def reencode_access(self) -> int:
        """Reads plus writes of read-all-and-re-encode."""
        return self.reencode_read + self.reencode_write


def read_access_bound(c: Conversion) -> int:
    """Fewest shards any stable linear MDS conversion must read.

    Merge: lambda min(k_I, r_F) when r_F <= r_I. General (ISIT 2020):
    lambda_I r_F + (lambda_I mod lambda_F)(k_I - max(k_F mod k_I, r_F)). When r_F > r_I no
    parity helps and every data shard is read; never more than reading all data.
    """
    everything = c.lambda_i * c.k_i
    if c.r_f > c.r_i:
        return everything
    if c.regime == "merge":
        return c.lambda_i * min(c.k_i, c.r_f)
    extra = (c.lambda_i % c.lambda_f) * max(0, c.k_i - max(c.k_f % c.k_i, c.r_f))
    return min(everything, c.lambda_i * c.r_f + extra)


def write_access_bound(c: Conversion) -> int:
    """Every final parity is new: lambda_F r_F shards written."""
    return c.lambda_f * c.r_f


def bandwidth_bound(c: Conversion) -> Fraction:
    """Fewest shard-units any merge conversion must read (arXiv 2008.12707, Theorem 1 regimes).

    r_F <= r_I: lambda r_F; r_I < r_F <= k_I: lambda (r_I + k_I (1 - r_I / r_F));
    r_F > k_I: lambda k_I. Defined for the merge regime only.
    """
    if c.regime != "merge":
        raise ParameterError(
            f"bandwidth bounds are for the merge regime; {c.describe()} is {c.regime}"
        )
    lam = c.lambda_i
    if c.r_f <= c.r_i:
        return Fraction(lam * min(c.r_f, c.k_i))
    if c.r_f <= c.k_i:
        return lam * (c.r_i + c.k_i * (1 - Fraction(c.r_i, c.r_f)))
    return Fraction(lam * c.k_i)


def costs(c: Conversion) -> Costs:
    """All bounds of ``c`` next to the re-encode cost.

    Parameters
    ----------
    c : Conversion
        The conversion.

    Returns
    -------
    Costs
        Read and write access bounds, the bandwidth bound (merges only) and the re-encode cost.

    Examples
    --------
    >>> costs(Conversion.merge(6, 3, 2, 2))
    Costs(read_access=4, write_access=2, bandwidth=Fraction(4, 1), reencode_read=12,
          reencode_write=2)
    >>> split = costs(Conversion(12, 2, 6, 2))
    >>> split.read_access, split.reencode_read, split.bandwidth
    (8, 12, None)
    """
    bandwidth = bandwidth_bound(c) if c.regime == "merge" else None
    return Costs(
        read_access=read_access_bound(c),
        write_access=write_access_bound(c),
        bandwidth=bandwidth,
        reencode_read=c.lambda_i * c.k_i,
        reencode_write=c.lambda_f * c.r_f,
    )


@dataclass(frozen=True)
class LRCMerge:
    """Global merge of lam (k, g_I, r, l) LRCs into one (lam k, g_F, r, l): groups stay put.

    Attributes
    ----------
    k : int
        Data shards of an initial codeword, a multiple of ``r`` (1..255).
    g_i, g_f : int
        Global parities before (0..64) and after (1..64) the merge; the bound needs
        g_F <= r or g_F <= g_I.
    r : int
        Local group size (1..k).
    l : int
        Local parities per group (1..16).
    lam : int
        Codewords merged (2..255).

    Raises
    ------
    ParameterError
        A parameter is out of range or ``k`` is not a multiple of ``r``.

    Examples
    --------
    >>> merge = LRCMerge(k=4, g_i=1, g_f=2, r=2, l=1, lam=2)
    >>> merge.local_parities, lrc_bandwidth_bound(merge), lrc_reencode_bandwidth(merge)
    (2, Fraction(6, 1), Fraction(8, 1))
    """

    k: int
    g_i: int
    g_f: int
    r: int
    l: int  # noqa: E741 - the papers' letter
    lam: int

    def __post_init__(self) -> None:
        check_range("k_I", self.k, 1, MAX_K)
        check_range("r (local group size)", self.r, 1, self.k)
        check_range("l (local parities per group)", self.l, 1, 16)
        check_range("g_I", self.g_i, 0, 64)
        check_range("g_F", self.g_f, 1, 64)
        check_range("lambda", self.lam, 2, MAX_K)
        if self.k % self.r:
            raise ParameterError(f"k_I={self.k} must be a multiple of the group size r={self.r}")
        if self.g_f > self.r and self.g_f > self.g_i:
            raise ParameterError(
                f"g_F={self.g_f} is out of range for the LRC bound (allowed: g_F <= r={self.r} "
                f"or g_F <= g_I={self.g_i})"
            )

    @property
    def local_parities(self) -> int:
        """Local parities of one initial codeword: l per group."""
        return self.l * self.k // self.r


def lrc_bandwidth_bound(m: LRCMerge) -> Fraction:
    """Cut-set bound: lam [g_I + (k + l k / r)(g_F - g_I) / (g_F + l)], or lam g_F if g_F <= g_I.

    Parameters
    ----------
    m : LRCMerge
        The LRC global merge.

    Returns
    -------
    Fraction
        Fewest shard units any conversion must read.

    Examples
    --------
    >>> lrc_bandwidth_bound(LRCMerge(k=4, g_i=1, g_f=2, r=2, l=1, lam=2))
    Fraction(6, 1)
    >>> lrc_bandwidth_bound(LRCMerge(k=4, g_i=2, g_f=2, r=2, l=1, lam=3))
    Fraction(6, 1)
    """
    if m.g_f <= m.g_i:
        return Fraction(m.lam * m.g_f)
    nodes = m.k + m.local_parities
    return m.lam * (m.g_i + nodes * Fraction(m.g_f - m.g_i, m.g_f + m.l))


def lrc_mds_only_bandwidth(m: LRCMerge) -> Fraction:
    """Bandwidth of treating the globals as an MDS merge (ignoring the local parities)."""
    return bandwidth_bound(Conversion.merge(m.k, m.g_i, m.lam, m.g_f))


def lrc_reencode_bandwidth(m: LRCMerge) -> Fraction:
    """Read every data shard."""
    return Fraction(m.lam * m.k)


def format_units(value: Fraction) -> str:
    """7 1/3 style: whole part and a proper fraction."""
    whole, rest = divmod(value.numerator, value.denominator)
    if rest == 0:
        return str(whole)
    return f"{whole} {rest}/{value.denominator}" if whole else f"{rest}/{value.denominator}"
