"""Self-checking Linear / Conv2d layers: global ABFT, tiled ABFT and replication.

* ``global``: compare the sum of all outputs 1^T (A B) 1 with (1^T A)(B 1) + rows * sum(b);
  B 1 is precomputed in float64, 1^T A is read from the input (im2col column sums for convs).
  Cost: an extra pass over the input and one over the output.
* ``tiled``: the output channels are cut into tiles of ``tile`` channels; each tile gets one
  extra weight column (the sum of its weights) appended to the GEMM, so every output row carries
  its own per-tile checksum computed from the same inputs in the same pass (the CPU analogue of
  thread-level ABFT). Cost: extra compute of 1/tile, no extra read of the inputs for the check.
  Grouped convolutions get the checksum channels from a second grouped convolution.
* ``replication``: run the layer twice and compare bit for bit.

Every scheme returns exactly the unprotected layer's output tensor values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from redundancy.abft.gemm import ColumnSums, conv_cover, layer_shape
from redundancy.abft.thresholds import ThresholdConfig, unit_roundoff
from redundancy.errors import IntegrityError, ParameterError

Scheme = Literal["global", "tiled", "replication"]
SCHEMES: tuple[str, ...] = ("global", "tiled", "replication")
U32 = 2.0**-24
U64 = 2.0**-53


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
        self.cover = conv_cover(layer) if self.is_conv else 1
        if self.is_conv:  # validates padding mode and geometry early
            layer_shape(layer, torch.Size((1, layer.in_channels, 64, 64)), w.dtype)
        self.fused = scheme == "tiled" and self.groups == 1
        with torch.no_grad():
            if scheme == "global":
                self._init_global(w)
            elif scheme == "tiled":
                self._init_tiled(w)

    def _bias64(self) -> torch.Tensor:
        b = self.layer.bias
        return torch.zeros(self.n_out, dtype=torch.float64) if b is None else b.detach().double()

    def _init_global(self, w: torch.Tensor) -> None:
        w64 = w.double()
        if self.is_conv:  # (N, C/g, kh, kw) -> per input channel: sum over its group's outputs
            grouped = w64.view(self.groups, self.n_out // self.groups, *w64.shape[1:])
            w1 = grouped.sum(1).reshape(-1, *w64.shape[2:])
            wabs = grouped.abs().sum(1)
        else:
            w1, wabs = w64.sum(0), w64.abs().sum(0)
        b64 = self._bias64()
        self.register_buffer("w1", w1, persistent=False)
        self.colsum = ColumnSums(self.layer) if self.is_conv else None
        self.wabs_max = float(wabs.max())
        self.bias_sum, self.bias_abs = float(b64.sum()), float(b64.abs().sum())

    def _init_tiled(self, w: torch.Tensor) -> None:
        tw = effective_tile(self.n_out // self.groups, self.tile)
        self.tile_width, self.tiles = tw, self.n_out // tw
        tiles = w.double().view(self.tiles, tw, *w.shape[1:])
        wck = tiles.sum(1).to(w.dtype)
        b64 = self._bias64().view(self.tiles, tw)
        shape = (1, self.tiles, 1, 1) if self.is_conv else (self.tiles,)
        coef_w = tiles.abs().sum(1).flatten(1).amax(1).float().view(shape)
        self.register_buffer("coef_w", coef_w, persistent=False)
        self.register_buffer("coef_b", b64.abs().sum(1).float().view(shape), persistent=False)
        bck = b64.sum(1).to(w.dtype) if self.layer.bias is not None else None
        self.w_ck, self.b_ck = wck, bck
        if self.fused:  # weight, bias and checksums become views into the augmented tensors
            self._fuse_ok: dict[tuple, bool] = {}
            self.w_aug = torch.cat([w, wck])
            self.layer.weight = nn.Parameter(self.w_aug[: self.n_out], requires_grad=False)
            self.w_ck = self.w_aug[self.n_out :]
            self.b_aug = None
            if bck is not None:
                self.b_aug = torch.cat([self.layer.bias.detach(), bck])
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

    def _absmax(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = torch.aminmax(x)
        return torch.maximum(-lo, hi).double()

    def tolerance(self, x: torch.Tensor, out_shape: torch.Size) -> torch.Tensor:
        """Round-off threshold of this layer's check on input ``x``: a scalar (global), one
        value per tile broadcastable over the tile sums (tiled), or 0 (replication)."""
        if self.scheme == "replication":
            return torch.zeros(())
        if self.scheme == "tiled":
            factor = self.thresholds.total(
                [(self.k + 2, self.u), (self.k + 2, self.u), (self.tile_width, U32)]
            )
            amax = self._absmax(x).float()
            return factor * (self.k * amax * self.coef_w + self.coef_b)
        rows = math.prod(out_shape) // self.n_out
        terms = [(self.k + 2, self.u)]
        if self.is_conv:
            terms += [(out_shape[2] * out_shape[3], U32), (x.shape[0], U32)]
            terms.append((x.shape[2] * x.shape[3] * 4, U64))
        else:
            terms += [(self.n_out, U32), (rows, U32)]
        magnitude = self.cover * x.numel() * self._absmax(x) * self.wabs_max + rows * self.bias_abs
        return self.thresholds.total(terms) * magnitude

    def _check_global(self, x: torch.Tensor, y: torch.Tensor) -> float:
        if self.is_conv:
            ref = (self.colsum(x) * self.w1).sum()
            out = y.sum((2, 3), dtype=torch.float32).double().sum()
        else:
            ref = x.reshape(-1, self.k).sum(0, dtype=torch.float32).double() @ self.w1
            out = y.reshape(-1, self.n_out).sum(1, dtype=torch.float32).double().sum()
        ref = ref + (y.numel() // self.n_out) * self.bias_sum
        tau = self.tolerance(x, y.shape) + 1e-300
        return float(((out - ref).abs() / tau).item())

    def _check_tiles(self, x: torch.Tensor, y: torch.Tensor, ck: torch.Tensor) -> float:
        if self.is_conv:
            sums = y.unflatten(1, (self.tiles, self.tile_width)).sum(2, dtype=torch.float32)
        else:
            sums = y.unflatten(-1, (self.tiles, self.tile_width)).sum(-1, dtype=torch.float32)
        tau = self.tolerance(x, y.shape) + 1e-30
        return float(((sums - ck.float()).abs() / tau).amax().item())
