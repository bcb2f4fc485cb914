"""Round-off-aware thresholds: how far a clean checksum may drift before we call it a fault.

A GEMM output element C_ij = sum_k A_ik B_kj (+ b_j) computed in floating point with unit
roundoff u satisfies |C^_ij - C_ij| <= f(K + 1) * P_ij, with P_ij = sum_k |A_ik||B_kj| + |b_j|
(Higham, "Accuracy and Stability of Numerical Algorithms", Thm 3.1/3.5). Two choices of f:

* ``rigorous``:    f(n) = gamma_n = n u / (1 - n u); holds for every input and summation order.
* ``statistical``: f(n) = exp(lam sqrt(n) u + n u^2 / (1 - u)) - 1 ~ lam sqrt(n) u, the
  probabilistic bound of Higham & Mary (SIAM J. Sci. Comput. 2019) for independent, mean-zero
  rounding errors; the chance of exceeding it decays like exp(-lam^2 / 2).

Each scheme (see ``schemes.py``) adds the error of its own reference computation and of the sum
over output elements, and bounds the magnitude sum P at run time: exactly per output channel
from (1^T |A|) |B| (global), or per output row and tile from the row's L1 norm times the tile's
largest weight sum (tiled). The derivation per scheme is in docs/abft.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from redundancy.errors import ParameterError

UNIT_ROUNDOFF = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}

BoundMode = Literal["rigorous", "statistical"]


def unit_roundoff(dtype: object) -> float:
    """Unit roundoff u of a torch dtype (or its name), e.g. 2^-24 for float32."""
    name = str(dtype).removeprefix("torch.")
    if name not in UNIT_ROUNDOFF:
        raise ParameterError(f"dtype={name} is not supported (allowed: {sorted(UNIT_ROUNDOFF)})")
    return UNIT_ROUNDOFF[name]


def gamma(n: int, u: float) -> float:
    """Worst-case relative error factor gamma_n = n u / (1 - n u) of an n-term inner product."""
    if n * u >= 1.0:
        return math.inf
    return n * u / (1.0 - n * u)


def gamma_statistical(n: int, u: float, lam: float) -> float:
    """Probabilistic factor exp(lam sqrt(n) u + n u^2 / (1 - u)) - 1 (Higham & Mary, 2019)."""
    return math.expm1(lam * math.sqrt(n) * u + n * u * u / (1.0 - u))


@dataclass(frozen=True)
class ThresholdConfig:
    """Which round-off bound a check allows before it reports a fault.

    Parameters
    ----------
    mode : {"statistical", "rigorous"}, default "statistical"
        The probabilistic bound exp(lam sqrt(n) u + n u^2 / (1 - u)) - 1 (Higham & Mary, 2019)
        or the worst case gamma_n = n u / (1 - n u).
    lam : float, default 8.0
        Confidence parameter of the statistical bound, 1..100.

    Raises
    ------
    ParameterError
        If the mode is unknown or ``lam`` is out of range.

    Examples
    --------
    >>> u = unit_roundoff("float32")
    >>> u == 2**-24
    True
    >>> statistical, rigorous = ThresholdConfig(), ThresholdConfig("rigorous")
    >>> f"{statistical.factor(1000, u):.3g}", f"{rigorous.factor(1000, u):.3g}"
    ('1.51e-05', '5.96e-05')
    """

    mode: BoundMode = "statistical"
    lam: float = 8.0

    def __post_init__(self) -> None:
        if self.mode not in ("rigorous", "statistical"):
            raise ParameterError(f"mode={self.mode!r} is not allowed (rigorous, statistical)")
        if not (1.0 <= self.lam <= 100.0):
            raise ParameterError(f"lam={self.lam} is out of range (allowed: 1..100)")

    def factor(self, n: int, u: float) -> float:
        """Relative error factor for an n-term accumulation at unit roundoff u."""
        if self.mode == "rigorous":
            return gamma(n, u)
        return gamma_statistical(n, u, self.lam)

    def total(self, terms: list[tuple[int, float]]) -> float:
        """Sum of factors for accumulations given as (number of terms, unit roundoff) pairs.

        Each error source of a check (the GEMM itself, the checksum path, each summation pass)
        is bounded by its own factor times the same magnitude sum, so the factors add up.
        """
        return sum(self.factor(n, u) for n, u in terms)
