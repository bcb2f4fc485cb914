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
    """Column sums 1^T A of a Conv2d's im2col matrix, computed without forming A.

    Input: batch-summed images (C', H, W); output (C', kh, kw). Entry (c, a, b) is the sum of
    the padded image over the strided Ho x Wo grid that kernel tap (a, b) visits. The grid sum
    is separable: one strided-window reduction over rows (for the kh taps), then one over
    columns (for the kw taps), both on views of the image, so two passes in all.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        self.conv = conv
        self.pads = conv_padding(conv)

    def __call__(self, xs: torch.Tensor) -> torch.Tensor:
        """Column sums of the im2col matrix of the (C', H, W) images ``xs``: (C', kh, kw)."""
        return self.of_padded(F.pad(xs, self.pads) if any(self.pads) else xs)

    def of_padded(self, xs: torch.Tensor) -> torch.Tensor:
        """The same from images that already carry the layer's zero padding (``pads``)."""
        xs = xs.contiguous()  # the strided windows below assume its layout
        (kh, kw), (sh, sw), (dh, dw) = self.conv.kernel_size, self.conv.stride, self.conv.dilation
        channels, height, width = xs.shape
        ho = (height - dh * (kh - 1) - 1) // sh + 1
        wo = (width - dw * (kw - 1) - 1) // sw + 1
        # rows[c, a, w] = sum over the Ho output rows p of xs[c, a*dh + p*sh, w]
        windows = (channels, kh, ho, width), (height * width, dh * width, sh * width, 1)
        rows = xs.as_strided(*windows).sum(2).contiguous()
        # out[c, a, b] = sum over the Wo output columns q of rows[c, a, b*dw + q*sw]
        windows = (channels, kh, kw, wo), (kh * width, width, dw, sw)
        return rows.as_strided(*windows).sum(-1)
