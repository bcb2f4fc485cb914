"""Code specs of convertible stores: ``cvt:K_I,R_I:K_F,R_F`` names the initial code of a family."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from redundancy.convertible.access import ConvertibleFamily
from redundancy.convertible.bounds import Conversion, LRCMerge
from redundancy.convertible.general import GeneralConversion
from redundancy.errors import ConfigError, ParameterError

_SPEC = re.compile(r"^cvt:(\d+),(\d+):(\d+),(\d+)$")
_RS = re.compile(r"^rs:(\d+),(\d+)$")
_LRC = re.compile(r"^lrc:(\d+,\d+,\d+,\d+)$")
_LRC_SPEC = re.compile(r"^lrc-cvt:(\d+,\d+,\d+,\d+):(\d+,\d+,\d+,\d+)$")


def parse_spec(spec: str) -> ConvertibleFamily:
    """``cvt:10,4:20,4`` -> the verified family converting [14,10] codewords into [24,20].

    General-regime specs (e.g. ``cvt:5,1:12,1``) get the thetas of ``GeneralConversion``, so the
    family's initial and final codes are the ones its construction verified.
    """
    match = _SPEC.match(spec.strip())
    if not match:
        raise ParameterError(
            f"code spec {spec!r}: expected cvt:K_I,R_I:K_F,R_F (e.g. cvt:10,4:20,4)"
        )
    k_i, r_i, k_f, r_f = (int(g) for g in match.groups())
    conversion = Conversion(k_i, r_i, k_f, r_f)
    if conversion.regime == "general":  # same verified thetas as GeneralConversion.build
        return ConvertibleFamily(conversion, GeneralConversion.build(conversion).thetas)
    return ConvertibleFamily.build(conversion)


def parse_rs(spec: str, field: str) -> tuple[int, int]:
    """``rs:K,M`` -> (K, M); the error names ``field``."""
    match = _RS.match(spec.strip())
    if not match:
        raise ParameterError(f"{field}={spec!r}: expected rs:K,M (e.g. rs:20,4)")
    return int(match.group(1)), int(match.group(2))


def family_spec(initial: str, final: str) -> str:
    """``rs:10,4`` + ``rs:20,4`` -> ``cvt:10,4:20,4`` (validated by building the family)."""
    k_i, r_i = parse_rs(initial, "code")
    k_f, r_f = parse_rs(final, "to")
    spec = f"cvt:{k_i},{r_i}:{k_f},{r_f}"
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
    """Does ``spec`` name an LRC (``lrc:k,g,r,l``) rather than an RS code?"""
    return spec.strip().startswith("lrc:")


def lrc_family_spec(initial: str, final: str) -> str:
    """``lrc:6,1,3,1`` + ``lrc:12,2,3,1`` -> ``lrc-cvt:6,1,3,1:12,2,3,1`` (validated)."""
    parts = []
    for field, text in (("code", initial), ("to", final)):
        match = _LRC.match(text.strip())
        if not match:
            raise ParameterError(f"{field}={text!r}: expected lrc:k,g,r,l (e.g. lrc:6,1,3,1)")
        parts.append(match.group(1))
    parse_lrc_merge(*parts)
    return f"lrc-cvt:{parts[0]}:{parts[1]}"


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
