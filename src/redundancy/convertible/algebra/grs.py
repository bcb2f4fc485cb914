"""Explicit access-optimal convertible codes from generalized Reed-Solomon (GRS) codes.

Every code here is a systematic [k + r, k] GRS code over GF(2^8) given by its parity-check matrix
``H[j, x] = c_x x^j`` (j = 0..r-1) on fixed evaluation points: data position p sits at
``w^p`` and parity m at ``w^-(m+1)`` (w = 2, the field's generator), and ``c`` holds nonzero
check multipliers (1 on the parities). Any r columns of a Vandermonde matrix on distinct points
are independent, so **every such code is MDS whenever k + r <= 255** (the points are then
distinct nonzero field elements): that is the whole field-size condition, linear in the length.

Conversion (the syndrome argument behind Maturana & Rashmi's Vandermonde constructions, in the
GRS form of Kong's and Ramkumar et al.'s linear-field-size merges): puncture the initial code to
its first r' = min(r_F, r_I) parities; the punctured code is GRS again, with data multipliers
``u_x = c_x prod_{m >= r'} (x + w^-(m+1))`` (``x^j u_x`` is ``c_x`` times a polynomial of degree
< r_I that vanishes on the removed parity points). So for j < r', the syndrome
``S_j = sum_i u_i (w^i)^j d_i`` of each initial codeword is a combination of its first r' parities
alone. The final code puts initial shard i of block t at point ``w^(t k_I + i) = w^(t k_I) w^i``
with multiplier ``u_i``: its syndromes are ``sum_t w^(t k_I j) S_j^(t)``, so the final parities are
computed from r_F parities of each initial codeword (a merge), from the parities minus the other
blocks' data (a split), or both (the general regime). Final data position p therefore has
multiplier ``u_(p mod k_I)``; when r_F = r_I the multipliers are all 1 and the final code is the
base code of its own parameters again, so conversions chain (rs:6,3 -> rs:12,3 -> rs:24,3).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from redundancy import gf256
from redundancy.erasure.codes import LinearCode
from redundancy.errors import ParameterError

MAX_LENGTH = 255  # distinct nonzero points of GF(2^8): k + r <= 255


def data_point(position: int) -> int:
    """Evaluation point of data position ``position``: w^position."""
    return int(gf256.EXP[position % 255])


def parity_point(index: int) -> int:
    """Evaluation point of parity ``index``: w^-(index+1)."""
    return int(gf256.EXP[(-(index + 1)) % 255])


def check_length(k: int, r: int, what: str) -> None:
    """Refuse codes longer than GF(2^8) allows, naming the largest supported parameters."""
    if k < 1 or r < 0 or k + r > MAX_LENGTH:
        raise ParameterError(
            f"{what}: rs:{k},{r} is out of range for the GF(2^8) GRS construction "
            f"(allowed: k >= 1, r >= 0, k + r <= {MAX_LENGTH}, e.g. rs:{MAX_LENGTH - r},{r})"
        )


@dataclass(frozen=True)
class GRSCode:
    """A systematic [k + r, k] GRS code: data multipliers ``multipliers``, parity multipliers 1.

    Parameters
    ----------
    k, r : int
        Data and parity shards (k + r <= 255).
    multipliers : tuple of int
        Nonzero parity-check multiplier of each data position (length k).

    Raises
    ------
    ParameterError
        If k + r > 255 or a multiplier is 0 or not a field element.

    Example
    -------
    >>> GRSCode.base(4, 2).linear_code("rs").n
    6
    """

    k: int
    r: int
    multipliers: tuple[int, ...]

    def __post_init__(self) -> None:
        check_length(self.k, self.r, "code")
        if len(self.multipliers) != self.k or not all(0 < m < 256 for m in self.multipliers):
            raise ParameterError(f"multipliers: need {self.k} nonzero field elements (1..255)")

    @classmethod
    def base(cls, k: int, r: int) -> GRSCode:
        """The code with every multiplier 1 (what initial stores are encoded with)."""
        check_length(k, r, "code")
        return cls(k, r, (1,) * k)

    def points(self) -> tuple[list[int], list[int]]:
        """(data points, parity points)."""
        return [data_point(p) for p in range(self.k)], [parity_point(m) for m in range(self.r)]

    @cached_property
    def parity_matrix(self) -> np.ndarray:
        """The r x k matrix P with parities = P . data (P = H_parity^-1 H_data, char. 2)."""
        if self.r == 0:
            return np.zeros((0, self.k), dtype=np.uint8)
        data, parity = self.points()
        h_data = gf256.vandermonde(data, self.r).T
        h_data = gf256.MUL_TABLE[h_data, np.array(self.multipliers, dtype=np.uint8)[None, :]]
        h_parity = gf256.vandermonde(parity, self.r).T
        return gf256.matmul_small(gf256.inverse(h_parity), h_data)

    def linear_code(self, name: str) -> LinearCode:
        """The code as a systematic generator [I; P]."""
        generator = np.vstack([np.eye(self.k, dtype=np.uint8), self.parity_matrix])
        return LinearCode(generator, name=name)

    def punctured_multipliers(self, keep: int) -> tuple[int, ...]:
        """Data multipliers of this code punctured to its first ``keep`` parities."""
        data, parity = self.points()
        out = []
        for x, c in zip(data, self.multipliers, strict=True):
            for y in parity[keep:]:
                c = int(gf256.mul(c, x ^ y))
            out.append(c)
        return tuple(out)

    def converted(self, k_f: int, r_f: int) -> GRSCode:
        """The final [k_F + r_F, k_F] code of a conversion from this code (any regime).

        Data position p gets multiplier ``u_(p mod k)``, u the data multipliers of this code
        punctured to its first min(r_F, r) parities; see the module docstring.

        Raises
        ------
        ParameterError
            If k_F + r_F > 255.
        """
        check_length(k_f, r_f, "to")
        u = self.punctured_multipliers(min(r_f, self.r))
        return GRSCode(k_f, r_f, tuple(u[p % self.k] for p in range(k_f)))
