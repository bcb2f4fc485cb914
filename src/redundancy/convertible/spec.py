"""Code specs: what users type (``rs:K,M``, ``lrc:K,L,G``) and what convertible stores record.

Users name codes with the toolkit's one grammar, shared with ``redundancy ec``:

- ``rs:K,M``: Reed-Solomon, K data and M parity shards;
- ``lrc:K,L,G``: K data shards in L local groups with one XOR local parity each, and G global
  parities (``redundancy.erasure.codes.parse_code`` reads the same spec). The convertible LRC
  needs equal groups, so L must divide K; its group size is r = K / L.

Stores record the family they were written with: ``grs:K_I,R_I:K_F,R_F`` (RS merge, split or
general regime; ``cvt:`` in stores written before the explicit construction),
``lrc-cvt:k,g,r,l:K_F,G_F,r,l`` (LRC global merge, internal (k, g, r, l) order, l local parities
per group) and ``pb-cvt:K_I,R_I:K_F,R_F`` (piggyback, ``convertible.stores.layered``).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from redundancy.convertible.algebra.access import ConvertibleFamily
from redundancy.convertible.algebra.bounds import Conversion, LRCMerge
from redundancy.errors import ConfigError, ParameterError

_SPEC = re.compile(r"^(grs|cvt):(\d+),(\d+):(\d+),(\d+)$")
_RS = re.compile(r"^rs:(\d+),(\d+)$")
_LRC = re.compile(r"^lrc:(\d+),(\d+),(\d+)$")
RS_GRAMMAR = "rs:K,M (K data, M parity shards; e.g. rs:10,4)"
LRC_GRAMMAR = (
    "lrc:K,L,G (K data shards in L local groups of one XOR parity each, G global parities; "
    "as in `redundancy ec`, e.g. lrc:6,2,1)"
)
_LRC_SPEC = re.compile(r"^lrc-cvt:(\d+,\d+,\d+,\d+):(\d+,\d+,\d+,\d+)$")


def parse_spec(spec: str) -> ConvertibleFamily:
    """``grs:10,4:20,4`` -> the family converting [14,10] codewords into [24,20].

    ``grs:`` names the explicit GRS construction (``algebra.grs``, what new stores use); ``cvt:``
    the searched Vandermonde family of earlier stores (still read and converted).

    Raises
    ------
    ParameterError
        If the spec is malformed or its codes cannot be built.
    """
    match = _SPEC.match(spec.strip())
    if not match:
        raise ParameterError(
            f"code spec {spec!r}: expected grs:K_I,R_I:K_F,R_F (e.g. grs:10,4:20,4) or cvt:..."
        )
    construction = match.group(1)
    k_i, r_i, k_f, r_f = (int(g) for g in match.groups()[1:])
    return ConvertibleFamily.build(Conversion(k_i, r_i, k_f, r_f), construction)


def parse_rs(spec: str, field: str) -> tuple[int, int]:
    """``rs:K,M`` -> (K, M); the error names ``field``."""
    match = _RS.match(spec.strip())
    if not match:
        raise ParameterError(f"{field}={spec!r}: expected {RS_GRAMMAR} or {LRC_GRAMMAR}")
    return int(match.group(1)), int(match.group(2))


def family_spec(initial: str, final: str) -> str:
    """``rs:10,4`` + ``rs:20,4`` -> ``grs:10,4:20,4`` (validated by building the family)."""
    k_i, r_i = parse_rs(initial, "code")
    k_f, r_f = parse_rs(final, "to")
    spec = f"grs:{k_i},{r_i}:{k_f},{r_f}"
    parse_spec(spec)
    return spec


def parse_lrc_merge(initial: str, final: str) -> LRCMerge:
    """``6,1,3,1`` -> ``12,2,3,1`` as (k, g, r, l) tuples: a global merge of LRCs."""
    parts = []
    for field, text in (("initial", initial), ("to", final)):
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            raise ParameterError(f"{field}={text!r}: expected k,g,r,l integers") from None
        if len(values) != 4:
            raise ParameterError(f"{field}={text!r}: expected 4 values k,g,r,l")
        parts.append(values)
    (k_i, g_i, r_i, l_i), (k_f, g_f, r_f, l_f) = parts
    if (r_i, l_i) != (r_f, l_f):
        raise ParameterError(
            f"group size r and local parities l must stay fixed in a global merge, "
            f"got r,l = {r_i},{l_i} -> {r_f},{l_f}"
        )
    if k_i <= 0 or k_f % k_i:
        raise ParameterError(f"to: k_F={k_f} must be a multiple lambda * k_I of k_I={k_i}")
    return LRCMerge(k_i, g_i, g_f, r_i, l_i, k_f // k_i)


def is_lrc(spec: str) -> bool:
    """Does ``spec`` name an LRC (``lrc:K,L,G``) rather than an RS code?"""
    return spec.strip().startswith("lrc:")


def parse_lrc(spec: str, field: str) -> tuple[int, int, int]:
    """``lrc:K,L,G`` (the grammar of ``redundancy ec``) -> the convertible LRC's (k, g, r).

    Parameters
    ----------
    spec : str
        ``lrc:K,L,G``: K data shards, L local groups (one XOR local parity each), G globals.
    field : str
        The option the spec came from, for the error message.

    Returns
    -------
    tuple of int
        (k, g, r): data shards, global parities, group size K / L (one local parity per group).

    Raises
    ------
    ParameterError
        If ``spec`` is not ``lrc:K,L,G`` with 1 <= L <= K and L dividing K.

    Examples
    --------
    >>> parse_lrc("lrc:12,2,2", "code")
    (12, 2, 6)
    """
    match = _LRC.match(spec.strip())
    if not match:
        raise ParameterError(f"{field}={spec!r}: expected {LRC_GRAMMAR}")
    k, groups, g = (int(v) for v in match.groups())
    if not 1 <= groups <= k or k % groups:
        raise ParameterError(
            f"{field}={spec!r}: L={groups} local groups must divide K={k} "
            "(convertible LRCs need equal groups)"
        )
    return k, g, k // groups


def lrc_name(k: int, groups: int, g: int) -> str:
    """The user-facing spec ``lrc:K,L,G`` of an LRC with one local parity per group."""
    return f"lrc:{k},{groups},{g}"


def lrc_merge(initial: str, final: str) -> LRCMerge:
    """``lrc:6,2,1`` -> ``lrc:12,4,2``: the global merge of lambda = K_F / K_I LRCs.

    Raises
    ------
    ParameterError
        If a spec is not ``lrc:K,L,G``, the group size K / L changes, or K_F is not a multiple
        of K_I (and the merge's own checks: g_F within the bound's range).

    Examples
    --------
    >>> lrc_merge("lrc:6,2,1", "lrc:12,4,2").lam
    2
    """
    k_i, g_i, r_i = parse_lrc(initial, "code")
    k_f, g_f, r_f = parse_lrc(final, "to")
    if r_i != r_f:
        raise ParameterError(
            f"to={final!r}: the group size K/L must stay fixed in a global merge "
            f"({k_i}/{k_i // r_i} = {r_i} -> {k_f}/{k_f // r_f} = {r_f})"
        )
    if k_f % k_i:
        raise ParameterError(f"to={final!r}: K_F={k_f} must be a multiple of K_I={k_i}")
    return LRCMerge(k_i, g_i, g_f, r_i, 1, k_f // k_i)


def lrc_family_spec(initial: str, final: str) -> str:
    """``lrc:6,2,1`` + ``lrc:12,4,2`` -> the stored spec ``lrc-cvt:6,1,3,1:12,2,3,1``."""
    m = lrc_merge(initial, final)
    return f"lrc-cvt:{m.k},{m.g_i},{m.r},{m.l}:{m.lam * m.k},{m.g_f},{m.r},{m.l}"


def canonical(spec: str, field: str) -> str:
    """``rs:K,M`` or ``lrc:K,L,G`` validated and written without spaces (for comparisons)."""
    if is_lrc(spec):
        k, g, r = parse_lrc(spec, field)
        return lrc_name(k, k // r, g)
    k, m = parse_rs(spec, field)
    return f"rs:{k},{m}"


def default_target(spec: str) -> str:
    """The default ``--to``: merge two codewords (``rs:10,4`` -> ``rs:20,4``).

    An LRC merge also gains one global parity (``lrc:6,2,1`` -> ``lrc:12,4,2``): the
    bandwidth-optimal LRC merge needs g_I < g_F.
    """
    if is_lrc(spec):
        k, g, r = parse_lrc(spec, "code")
        return lrc_name(2 * k, 2 * k // r, g + 1)
    k, m = parse_rs(spec, "code")
    return f"rs:{2 * k},{m}"


def parse_lrc_spec(spec: str) -> LRCMerge:
    """``lrc-cvt:6,1,3,1:12,2,3,1`` (as stored in an LRC store's manifest) -> the LRCMerge."""
    match = _LRC_SPEC.match(spec.strip())
    if not match:
        raise ParameterError(f"code spec {spec!r}: expected lrc-cvt:k,g,r,l:K_F,G_F,r,l")
    return parse_lrc_merge(match.group(1), match.group(2))


class ConversionConfig(BaseModel):
    """A conversion as a file: initial and final ``rs:K,M`` (YAML or JSON)."""

    code: str = "rs:10,4"
    to: str = "rs:20,4"

    @classmethod
    def load(cls, path: Path) -> ConversionConfig:
        """Read YAML or JSON; errors name the file and field."""
        try:
            raw = yaml.safe_load(Path(path).read_text())
            return cls.model_validate(raw or {})
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"{path}: invalid conversion config ({exc})") from None

    def conversion(self) -> Conversion:
        """The validated Conversion."""
        k_i, r_i = parse_rs(self.code, "code")
        k_f, r_f = parse_rs(self.to, "to")
        return Conversion(k_i, r_i, k_f, r_f)
