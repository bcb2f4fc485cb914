"""Self-checking Linear / Conv2d layers: global ABFT, tiled ABFT and replication.

* ``global``: compare the column sums of the output, 1^T (A B), with (1^T A) B + rows * b, one
  check per output channel; 1^T A is read from the input (im2col column sums for convs) and
  multiplied with a clean copy of B kept by the check. Each channel's threshold comes from
  (1^T |A|) |B|, computed in the same product, so it scales with that channel's own magnitude.
  Cost: two extra passes over the input, one over the output, one over a copy of B.
* ``tiled``: the output channels are cut into tiles of ``tile`` channels; each tile gets one
  extra weight column (the sum of its weights) appended to the GEMM, so every output row carries
  its own per-tile checksum computed from the same inputs in the same pass (the CPU analogue of
  thread-level ABFT). Cost: extra compute of 1/tile, no extra read of the inputs for the check.
  Grouped convolutions get the checksum channels from a second grouped convolution.
* ``replication``: run the layer twice and compare bit for bit.

Every scheme returns exactly the unprotected layer's output tensor values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from redundancy.abft.gemm import ColumnSums, layer_shape
from redundancy.abft.thresholds import ThresholdConfig, gamma, unit_roundoff
from redundancy.errors import IntegrityError, ParameterError

Scheme = Literal["global", "tiled", "replication"]
SCHEMES: tuple[str, ...] = ("global", "tiled", "replication")
U32 = 2.0**-24
TINY = 1e-30  # keeps an all-zero check at ratio 0 instead of 0 / 0
F32 = torch.float32


class SilentDataCorruption(IntegrityError):
    """A layer's checksum disagreed with its output by more than the round-off threshold."""


@dataclass(frozen=True)
class Detection:
    """One failed check: which layer, which scheme, and |difference| / threshold (> 1)."""

    layer: str
    scheme: str
    ratio: float


@dataclass
class Monitor:
    """Shared by the layers of one protected model: the policy and what the checks saw."""

    policy: Literal["raise", "report"] = "report"
    detections: list[Detection] = field(default_factory=list)
    max_clean_ratio: dict[str, float] = field(default_factory=dict)
    checks: int = 0

    def record(self, layer: str, scheme: str, ratio: float) -> None:
        """Log one check's outcome; on a mismatch report it or raise, naming the layer."""
        self.checks += 1
        if ratio <= 1.0:  # NaN compares False, so a NaN ratio counts as a detection
            self.max_clean_ratio[layer] = max(self.max_clean_ratio.get(layer, 0.0), ratio)
            return
        self.detections.append(Detection(layer, scheme, ratio))
        if self.policy == "raise":
            raise SilentDataCorruption(
                f"layer {layer!r} ({scheme} ABFT): checksum mismatch {ratio:.3g}x the threshold"
            )

    def reset(self) -> None:
        """Forget detections and statistics (the policy stays)."""
        self.detections.clear()
        self.max_clean_ratio.clear()
        self.checks = 0


def effective_tile(channels: int, tile: int) -> int:
    """Largest divisor of ``channels`` that is <= ``tile``: tiles of equal width cover them."""
    return max(d for d in range(1, min(tile, channels) + 1) if channels % d == 0)


class ProtectedLayer(nn.Module):
    """A Linear or Conv2d layer that checks every output it produces with one ABFT scheme.

    ``output_fault`` (used by fault injection) is called on the computed output in place,
    before the check, as a transient fault inside the GEMM would corrupt it.
    """

    def __init__(
        self,
        name: str,
        layer: nn.Linear | nn.Conv2d,
        scheme: Scheme,
        monitor: Monitor,
        tile: int = 32,
        thresholds: ThresholdConfig | None = None,
    ) -> None:
        super().__init__()
        if scheme not in SCHEMES:
            raise ParameterError(f"scheme={scheme!r} is not allowed (one of {SCHEMES})")
        if not isinstance(layer, nn.Linear | nn.Conv2d):
            raise ParameterError(f"layer {name!r}: {type(layer).__name__} is not Linear/Conv2d")
        if tile < 1:
            raise ParameterError(f"tile={tile} is out of range (allowed: >= 1)")
        self.name, self.scheme, self.monitor, self.tile = name, scheme, monitor, tile
        self.thresholds = thresholds or ThresholdConfig()
        self.is_conv = isinstance(layer, nn.Conv2d)
        self.layer = layer
        self.output_fault: Callable[[torch.Tensor], None] | None = None
        w = layer.weight.detach()
        self.u = unit_roundoff(w.dtype)
        self.n_out = w.shape[0]
        self.k = w[0].numel()
        self.groups = layer.groups if self.is_conv else 1
        if self.is_conv:  # validates padding mode and geometry early
            layer_shape(layer, torch.Size((1, layer.in_channels, 64, 64)), w.dtype)
        self.fused = scheme == "tiled" and self.groups == 1
        self._factors: dict[tuple, float] = {}
        with torch.no_grad():
            if scheme == "global":
                self._init_global(w)
            elif scheme == "tiled":
                self._init_tiled(w)

    def _init_global(self, w: torch.Tensor) -> None:
        g, per_group = self.groups, self.n_out // self.groups
        wg = w.float().reshape(g, per_group, -1).transpose(1, 2)  # (g, K, N/g)
        self.register_buffer("w_pm", torch.cat([wg, wg.abs()]).contiguous(), persistent=False)
        b = self.layer.bias
        bias = torch.zeros(self.n_out) if b is None else b.detach().float()
        b_pm = torch.cat([bias, bias.abs() + TINY]).view(2 * g, 1, per_group)
        self.register_buffer("b_pm", b_pm, persistent=False)
        self.colsum = ColumnSums(self.layer) if self.is_conv else None

    def _init_tiled(self, w: torch.Tensor) -> None:
        tw = effective_tile(self.n_out // self.groups, self.tile)
        self.tile_width, self.tiles = tw, self.n_out // tw
        tiles = w.double().view(self.tiles, tw, *w.shape[1:])
        wck = tiles.sum(1).to(w.dtype)
        b = self.layer.bias
        b64 = torch.zeros(self.n_out, dtype=torch.float64) if b is None else b.detach().double()
        b64 = b64.view(self.tiles, tw)
        # the GEMM and the checksum column each err by f(K + 2) (the checksum weights are
        # rounded to the dtype), the tile sum by f(tile); row L1 norms are fp32 sums of K terms
        factor = self.thresholds.total([(self.k + 2, self.u)] * 2 + [(tw, U32)])
        factor *= 1.0 + gamma(self.k, U32)
        shape = (1, self.tiles, 1, 1) if self.is_conv else (self.tiles,)
        coef_w = tiles.abs().sum(1).flatten(1).amax(1)
        self.register_buffer("fw", (factor * coef_w).float().view(shape), persistent=False)
        coef_b = factor * b64.abs().sum(1) + TINY
        self.register_buffer("fb", coef_b.float().view(shape), persistent=False)
        if self.is_conv:
            c = self.layer
            ones = torch.ones(self.groups, 1, *c.kernel_size)
            self.register_buffer("ones", ones, persistent=False)
            halves = isinstance(c.padding, tuple) and all(
                2 * p <= k for p, k in zip(c.padding, c.kernel_size, strict=True)
            )
            self.pool = halves and c.dilation == (1, 1)
        self.w_ck = wck
        self.b_ck = None if b is None else b64.sum(1).to(w.dtype)
        if self.fused:  # weight, bias and checksums become views into the augmented tensors
            self._fuse_ok: dict[tuple, bool] = {}
            self.w_aug = torch.cat([w, wck])
            self.layer.weight = nn.Parameter(self.w_aug[: self.n_out], requires_grad=False)
            self.w_ck = self.w_aug[self.n_out :]
            self.b_aug = None
            if self.b_ck is not None:
                self.b_aug = torch.cat([self.layer.bias.detach(), self.b_ck])
                self.layer.bias = nn.Parameter(self.b_aug[: self.n_out], requires_grad=False)
                self.b_ck = self.b_aug[self.n_out :]

    @property
    def weight(self) -> torch.Tensor:
        """The weight the layer computes with (fault injection flips bits here)."""
        return self.layer.weight

    def _op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if not self.is_conv:
            return F.linear(x, w, b)
        c = self.layer
        return F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)

    def _split(self, yaug: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.is_conv:
            return yaug[:, : self.n_out], yaug[:, self.n_out :]
        return yaug[..., : self.n_out], yaug[..., self.n_out :]

    def _fused_pass(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Data and checksum outputs of the augmented GEMM, or None where it is not bit-exact.

        Backends may pick another algorithm for N + T output channels than for N, which can
        change the rounding; so the first call per input geometry compares against the plain
        GEMM once, and geometries that differ use a separate checksum GEMM from then on.
        """
        key = (tuple(x.shape), x.stride(), x.dtype, x.device, torch.get_num_threads())
        verdict = self._fuse_ok.get(key)
        if verdict is False:
            return None
        y, ck = self._split(self._op(x, self.w_aug, self.b_aug))
        if verdict is None:
            self._fuse_ok[key] = torch.equal(y, self._op(x, self.layer.weight, self.layer.bias))
            if not self._fuse_ok[key]:
                return None
        return y, ck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output, after checking it (report or raise via the monitor)."""
        with torch.no_grad():
            fused = self._fused_pass(x) if self.fused else None
            if fused is not None:
                y, ck = fused
            else:
                y = self._op(x, self.layer.weight, self.layer.bias)
            if self.output_fault is not None:
                self.output_fault(y)
            if self.scheme == "global":
                ratio = self._check_global(x, y)
            elif self.scheme == "replication":
                same = torch.equal(y, self._op(x, self.layer.weight, self.layer.bias))
                ratio = 0.0 if same else float("inf")
            else:
                if fused is None:
                    ck = self._op(x, self.w_ck, self.b_ck)
                ratio = self._check_tiles(x, y, ck)
        self.monitor.record(self.name, self.scheme, ratio)
        return y

    def _global_factor(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Relative error factor of the column check for this input geometry (cached)."""
        key = (tuple(x.shape), tuple(y.shape))
        if key not in self._factors:
            rows = y.numel() // self.n_out
            # the GEMM; fp32 sums of the output column and of the input columns; the product
            if self.is_conv:
                pixels = y.shape[-1] * y.shape[-2]
                terms = [(rows, U32), (x.shape[0], U32), (pixels, U32), (self.k, U32)]
                sums = x.shape[0] + pixels + self.k
            else:
                terms = [(rows, U32), (rows, U32), (self.k, U32)]
                sums = rows + self.k
            factor = self.thresholds.total([(self.k + 2, self.u), *terms])
            self._factors[key] = factor * (1.0 + gamma(sums, U32))  # magnitude summed in fp32
        return self._factors[key]

    def _global_sums(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Output column sums, their reference (1^T A) B + rows b, and the magnitudes
        (1^T |A|) |B| + rows |b| that the thresholds scale, one per output channel."""
        src = x if self.is_conv else x.reshape(-1, self.k)
        norm = torch.linalg.vector_norm(src, 1, 0, dtype=F32)
        cols = torch.stack((src.sum(0, dtype=F32), norm))
        if self.is_conv:
            cols = self.colsum(cols.flatten(0, 1))
            out = y.sum((0, 2, 3), dtype=F32)
        else:
            out = y.reshape(-1, self.n_out).sum(0, dtype=F32)
        rows = y.numel() // self.n_out
        cols = cols.reshape(2 * self.groups, 1, -1)
        ref, mag = torch.baddbmm(self.b_pm, cols, self.w_pm, beta=rows).view(2, -1)
        return out, ref, mag

    def _row_norms(self, x: torch.Tensor) -> torch.Tensor:
        """L1 norm of each im2col row of A (per group for convs), in fp32."""
        if not self.is_conv:
            return torch.linalg.vector_norm(x, 1, -1, keepdim=True, dtype=F32)
        c, g = self.layer, self.groups
        per_pixel = x.abs().unflatten(1, (g, -1)).sum(2, dtype=F32)
        if self.pool:  # a box sum over each receptive field
            rows = F.avg_pool2d(per_pixel, c.kernel_size, c.stride, c.padding, divisor_override=1)
        else:
            rows = F.conv2d(per_pixel, self.ones, None, c.stride, c.padding, c.dilation, g)
        per_tile = self.tiles // g
        return rows.repeat_interleave(per_tile, 1) if g > 1 and per_tile > 1 else rows

    def tolerance(self, x: torch.Tensor, out_shape: torch.Size) -> torch.Tensor:
        """Round-off threshold of this layer's checks on input ``x``: one per output channel
        (global), one per output row and tile (tiled), or 0 (replication)."""
        if self.scheme == "replication":
            return torch.zeros(())
        if self.scheme == "tiled":
            return torch.addcmul(self.fb, self._row_norms(x), self.fw)
        y = x.new_zeros(out_shape)
        return self._global_sums(x, y)[2] * self._global_factor(x, y)

    def tolerance_at(self, x: torch.Tensor, out_shape: torch.Size, position: tuple) -> float:
        """Threshold of the check that covers output element ``position``."""
        if self.scheme == "replication":
            return 0.0
        tau = self.tolerance(x, out_shape)
        dim = 1 if self.is_conv else len(out_shape) - 1
        if self.scheme == "global":
            return float(tau[position[dim]])
        shape, index = list(out_shape), list(position)
        shape[dim], index[dim] = self.tiles, position[dim] // self.tile_width
        return float(tau.expand(shape)[tuple(index)])

    def _check_global(self, x: torch.Tensor, y: torch.Tensor) -> float:
        out, ref, mag = self._global_sums(x, y)
        return float(out.sub_(ref).abs_().div_(mag).amax()) / self._global_factor(x, y)

    def _check_tiles(self, x: torch.Tensor, y: torch.Tensor, ck: torch.Tensor) -> float:
        if self.is_conv:
            sums = y.unflatten(1, (self.tiles, self.tile_width)).sum(2, dtype=F32)
        else:
            sums = y.unflatten(-1, (self.tiles, self.tile_width)).sum(-1, dtype=F32)
        tau = torch.addcmul(self.fb, self._row_norms(x), self.fw)
        return float(sums.sub_(ck.float()).abs_().div_(tau).amax())
