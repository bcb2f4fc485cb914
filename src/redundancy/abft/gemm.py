"""Linear and Conv2d seen as GEMMs: shapes, arithmetic intensity, and the im2col column sums.

A Linear layer on x of shape (..., K) is C = A B with A = x (M x K), B = W^T (K x N).
A Conv2d layer is the same after im2col: M = batch * H_out * W_out rows (one per output pixel),
K = C_in / groups * kh * kw, N = C_out, done once per group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from redundancy.errors import ParameterError


@dataclass(frozen=True)
class GemmShape:
    """One layer as a GEMM, plus the real tensor sizes that memory traffic depends on."""

    kind: str
    m: int
    n: int
    k: int
    groups: int
    in_numel: int
    out_numel: int
    weight_numel: int
    elem_bytes: int

    @property
    def flops(self) -> float:
        """Multiply-adds counted as 2 flops: 2 M N K (K per group)."""
        return 2.0 * self.m * self.n * self.k

    @property
    def intensity(self) -> float:
        """AI = 2MNK / (bytes * (MN + MK + KN)), with the im2col A (the paper's definition)."""
        traffic = self.m * self.n + self.m * self.k * self.groups + self.k * self.n
        return self.flops / (self.elem_bytes * traffic)


def conv_padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """Explicit (left, right, top, bottom) zero padding of a Conv2d, resolving 'same'/'valid'."""
    if conv.padding_mode != "zeros":
        raise ParameterError(f"padding_mode={conv.padding_mode!r} is not supported (zeros)")
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return (0, 0, 0, 0)
        pads = []
        for d, k in zip(conv.dilation, conv.kernel_size, strict=True):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return (left, right, top, bottom)
    ph, pw = conv.padding
    return (pw, pw, ph, ph)


def conv_cover(conv: nn.Conv2d) -> int:
    """Most im2col patches one input element can appear in (bounds sum |A| by cover * sum |x|)."""
    cover = 1
    for k, s, d in zip(conv.kernel_size, conv.stride, conv.dilation, strict=True):
        cover *= min(k, math.ceil(((k - 1) * d + 1) / s))
    return cover


def layer_shape(module: nn.Module, x_shape: torch.Size, dtype: torch.dtype) -> GemmShape:
    """The GEMM a Linear or Conv2d layer performs on an input of ``x_shape``."""
    elem = torch.empty((), dtype=dtype).element_size()
    in_numel = math.prod(x_shape)
    if isinstance(module, nn.Linear):
        m = in_numel // module.in_features
        return GemmShape(
            "linear",
            m,
            module.out_features,
            module.in_features,
            1,
            in_numel,
            m * module.out_features,
            module.weight.numel(),
            elem,
        )
    if isinstance(module, nn.Conv2d):
        left, right, top, bottom = conv_padding(module)
        h, w = x_shape[-2] + top + bottom, x_shape[-1] + left + right
        (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.stride, module.dilation
        ho = (h - dh * (kh - 1) - 1) // sh + 1
        wo = (w - dw * (kw - 1) - 1) // sw + 1
        batch = in_numel // (module.in_channels * x_shape[-2] * x_shape[-1])
        m = batch * ho * wo
        k = module.in_channels // module.groups * kh * kw
        return GemmShape(
            "conv2d",
            m,
            module.out_channels,
            k,
            module.groups,
            in_numel,
            m * module.out_channels,
            module.weight.numel(),
            elem,
        )
    raise ParameterError(f"layer type {type(module).__name__} is not supported (Linear, Conv2d)")


class ColumnSums:
    """Column sums 1^T A of a Conv2d's im2col matrix, shape (C_in, kh, kw), in float64.

    Never forms A: the batch is summed first (float32), then for each kernel offset the sum of
    the strided window it slides over is read from a float64 integral image, one image per
    stride phase. Index tensors are built once per input size.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        self.conv = conv
        self.pads = conv_padding(conv)
        self._plans: dict[tuple[int, int], tuple[int, int, list]] = {}
        self.pointwise = conv.kernel_size == (1, 1) and conv.stride == (1, 1)
        self.pointwise = self.pointwise and self.pads == (0, 0, 0, 0)

    def _plan(self, hp: int, wp: int) -> tuple[int, int, list]:
        (kh, kw), (sh, sw), (dh, dw) = self.conv.kernel_size, self.conv.stride, self.conv.dilation
        ho = (hp - dh * (kh - 1) - 1) // sh + 1
        wo = (wp - dw * (kw - 1) - 1) // sw + 1
        phases = []
        for ph in sorted({i * dh % sh for i in range(kh)}):
            rows = [i for i in range(kh) if i * dh % sh == ph]
            for pw in sorted({j * dw % sw for j in range(kw)}):
                cols = [j for j in range(kw) if j * dw % sw == pw]
                r0 = torch.tensor([i * dh // sh for i in rows])[:, None]
                c0 = torch.tensor([j * dw // sw for j in cols])[None, :]
                where = (torch.tensor(rows)[:, None], torch.tensor(cols)[None, :])
                phases.append((ph, pw, r0, c0, where))
        return ho, wo, phases

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.sum(0, dtype=torch.float32).double()
        if self.pointwise:
            return xs.sum((1, 2)).view(-1, 1, 1)
        left, right, top, bottom = self.pads
        xp = F.pad(xs, (left, right, top, bottom))
        key = (xp.shape[1], xp.shape[2])
        if key not in self._plans:
            self._plans[key] = self._plan(*key)
        ho, wo, phases = self._plans[key]
        (sh, sw), (kh, kw) = self.conv.stride, self.conv.kernel_size
        out = xp.new_empty((xp.shape[0], kh, kw))
        for ph, pw, r0, c0, where in phases:
            ii = F.pad(xp[:, ph::sh, pw::sw].cumsum(1).cumsum(2), (1, 0, 1, 0))
            a, b = r0 + ho, c0 + wo
            out[:, where[0], where[1]] = ii[:, a, b] - ii[:, r0, b] - ii[:, a, c0] + ii[:, r0, c0]
        return out
