"""Self-checking Linear / Conv2d layers: global ABFT, tiled ABFT and replication.

The layer's output is always computed by the wrapped layer itself, with the very call the
unprotected model makes (``nn.Linear.forward`` / ``nn.Conv2d.forward``, same weights, same
input, same grad mode), so a protected model returns the unprotected model's bits. The checks
run beside it, under ``torch.no_grad()``, and never write to the output:

* ``global``: compare the column sums of the output, 1^T (A B), with (1^T A) B + rows * b, one
  check per output channel; 1^T A is read from the input (im2col column sums for convs) and
  multiplied with a clean copy of B kept by the check. Each channel's threshold comes from
  (1^T |A|) |B|, computed in the same product, so it scales with that channel's own magnitude.
  Cost: two extra passes over the input, one over the output, one over a copy of B.
* ``tiled``: the output channels are cut into tiles of ``tile`` channels; a second, narrow GEMM
  with one weight column per tile (the sum of its weights, taken from the clean weights at
  protect time) gives every output row its own per-tile checksum (the CPU analogue of
  thread-level ABFT). Cost: extra compute of 1/tile, one more read of the input.
* ``replication``: run the layer twice and compare bit for bit.

Why not fold the checksum columns into the layer's own GEMM (one pass, as on a GPU)? A GEMM
with N + N/tile output columns may use another kernel, blocking or summation order than the
one with N columns, so its data columns can differ from the plain layer's in the last bit, and
its data part is a strided slice of a wider tensor (``.view`` on it fails). Neither can be
ruled out for every shape, dtype, backend and thread count, so the output never comes from an
augmented GEMM.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from redundancy.abft.gemm import ColumnSums, layer_shape
from redundancy.abft.thresholds import UNIT_ROUNDOFF, ThresholdConfig, gamma, unit_roundoff
from redundancy.errors import IntegrityError, ParameterError

Scheme = Literal["global", "tiled", "replication"]
SCHEMES: tuple[str, ...] = ("global", "tiled", "replication")
TINY = 1e-30  # keeps an all-zero check at ratio 0 instead of 0 / 0


class SilentDataCorruption(IntegrityError):
    """A layer's checksum disagreed with its output by more than the round-off threshold.

    Raised by a model protected with ``policy="raise"``; the message names the layer, the
    scheme and the ratio to the threshold. An :class:`~redundancy.errors.IntegrityError`.

    Examples
    --------
    >>> monitor = Monitor(policy="raise")
    >>> monitor.record("fc1", "global", ratio=3.5)
    Traceback (most recent call last):
    ...
    redundancy.abft.schemes.SilentDataCorruption: layer 'fc1' (global ABFT): checksum mismatch ...
    """


@dataclass(frozen=True)
class Detection:
    """One failed check: which layer, which scheme, and |difference| / threshold (> 1)."""

    layer: str
    scheme: str
    ratio: float


@dataclass
class Monitor:
    """Shared by the layers of one protected model: the policy and what the checks saw.

    ``checked`` holds the layers whose check ran since the last ``reset`` (or since the start
    of the last ``ProtectedModel`` call), so layers that a model never calls as modules (a
    fused fast path reading their weights directly) show up as unchecked.
    """

    policy: Literal["raise", "report"] = "report"
    detections: list[Detection] = field(default_factory=list)
    max_clean_ratio: dict[str, float] = field(default_factory=dict)
    checks: int = 0
    checked: set[str] = field(default_factory=set)

    def record(self, layer: str, scheme: str, ratio: float) -> None:
        """Log one check's outcome; on a mismatch report it or raise, naming the layer."""
        self.checks += 1
        self.checked.add(layer)
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
        self.checked.clear()


def effective_tile(channels: int, tile: int) -> int:
    """Largest divisor of ``channels`` that is <= ``tile``: tiles of equal width cover them."""
    return max(d for d in range(1, min(tile, channels) + 1) if channels % d == 0)


def unsupported_reason(module: nn.Module) -> str | None:
    """Why ``module`` cannot be wrapped in a ProtectedLayer, or None when it can.

    Supported: exactly ``nn.Linear`` or ``nn.Conv2d`` (a subclass may compute something else in
    its own ``forward``), zero padding, a floating-point dtype with a known unit roundoff.

    Parameters
    ----------
    module : nn.Module
        Any module.

    Returns
    -------
    str or None
        A short reason in the user's terms, or None.

    Examples
    --------
    >>> from torch import nn
    >>> unsupported_reason(nn.Linear(2, 2)) is None
    True
    >>> unsupported_reason(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"))
    "padding_mode='reflect' (only zero padding is checked)"
    """
    if type(module).forward not in (nn.Linear.forward, nn.Conv2d.forward):
        return f"{type(module).__name__} is not a plain Linear/Conv2d layer"
    if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
        return f"padding_mode={module.padding_mode!r} (only zero padding is checked)"
    dtype = str(module.weight.dtype).removeprefix("torch.")
    if dtype not in UNIT_ROUNDOFF:
        return f"dtype {dtype} (checked: {', '.join(sorted(UNIT_ROUNDOFF))})"
    return None


def protectable_layers(model: nn.Module) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """The Linear/Conv2d layers ``protect`` wraps, by name, and the others with the reason.

    A layer registered under several names is listed once, under its first name. Projections
    inside ``nn.MultiheadAttention`` are left alone: it reads their weights directly and never
    calls them, so a wrapper's check would never run.

    Parameters
    ----------
    model : nn.Module
        Any model.

    Returns
    -------
    tuple of dict
        ``(layers, skipped)``: name -> module for the layers that get a check, and
        name -> reason for the Linear/Conv2d layers that do not.

    Examples
    --------
    >>> from torch import nn
    >>> attention = nn.MultiheadAttention(8, 2)
    >>> layers, skipped = protectable_layers(nn.Sequential(nn.Linear(8, 8), attention))
    >>> list(layers), list(skipped)
    (['0'], ['1.out_proj'])
    """
    layers: dict[str, nn.Module] = {}
    skipped: dict[str, str] = {}
    seen: set[int] = set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear | nn.Conv2d) or id(module) in seen:
            continue
        seen.add(id(module))
        parent_name = name.rpartition(".")[0]
        parent = model.get_submodule(parent_name) if name else None
        reason = unsupported_reason(module)
        if isinstance(parent, nn.MultiheadAttention):
            reason = "MultiheadAttention reads its weights directly; a check would never run"
        if reason is None:
            layers[name] = module
        else:
            skipped[name] = reason
    return layers, skipped


class ProtectedLayer(nn.Module):
    """A Linear or Conv2d layer that checks every output it produces with one ABFT scheme.

    The output is the wrapped layer's own output (bit-identical to the unprotected layer's);
    the check never changes it. ``weight``, ``bias`` and any other attribute of the wrapped
    layer read through, so code that reads ``layer.weight`` keeps working.
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
        # check sums run in fp32 (fp64 for fp64 layers), with that format's unit roundoff
        self.acc = torch.float64 if w.dtype == torch.float64 else torch.float32
        self.u_acc = unit_roundoff(self.acc)
        self.n_out = w.shape[0]
        self.k = w[0].numel()
        self.groups = layer.groups if self.is_conv else 1
        if self.is_conv:  # validates padding mode and geometry early
            layer_shape(layer, torch.Size((1, layer.in_channels, 64, 64)), w.dtype)
        self._factors: dict[tuple, float] = {}
        self._scratch: dict[tuple, tuple[torch.Tensor, ...]] = {}
        with torch.no_grad():
            if scheme == "global":
                self._init_global(w)
            elif scheme == "tiled":
                self._init_tiled(w)

    def _init_global(self, w: torch.Tensor) -> None:
        g, per_group = self.groups, self.n_out // self.groups
        wg = w.to(self.acc).reshape(g, per_group, -1).transpose(1, 2)  # (g, K, N/g)
        self.register_buffer("w_pm", torch.cat([wg, wg.abs()]).contiguous(), persistent=False)
        b = self.layer.bias
        zeros = torch.zeros(self.n_out, dtype=self.acc, device=w.device)
        bias = zeros if b is None else b.detach().to(self.acc)
        b_pm = torch.cat([bias, bias.abs() + TINY]).view(2 * g, 1, per_group)
        self.register_buffer("b_pm", b_pm, persistent=False)
        self.colsum = ColumnSums(self.layer) if self.is_conv else None

    def _init_tiled(self, w: torch.Tensor) -> None:
        tw = effective_tile(self.n_out // self.groups, self.tile)
        self.tile_width, self.tiles = tw, self.n_out // tw
        tiles = w.double().view(self.tiles, tw, *w.shape[1:])
        wck = tiles.sum(1).to(w.dtype)
        b = self.layer.bias
        zeros = torch.zeros(self.n_out, dtype=torch.float64, device=w.device)
        b64 = zeros if b is None else b.detach().double()
        b64 = b64.view(self.tiles, tw)
        # the layer's GEMM and the checksum GEMM each err by f(K + 2) (the checksum weights are
        # rounded to the dtype), the tile sum by f(tile); row L1 norms are sums of K terms
        factor = self.thresholds.total([(self.k + 2, self.u)] * 2 + [(tw, self.u_acc)])
        factor *= 1.0 + gamma(self.k, self.u_acc)
        shape = (1, self.tiles, 1, 1) if self.is_conv else (self.tiles,)
        coef_w = tiles.abs().sum(1).flatten(1).amax(1)
        self.register_buffer("fw", (factor * coef_w).to(self.acc).view(shape), persistent=False)
        coef_b = factor * b64.abs().sum(1) + TINY
        self.register_buffer("fb", coef_b.to(self.acc).view(shape), persistent=False)
        if self.is_conv:
            c = self.layer
            ones = torch.ones(self.groups, 1, *c.kernel_size, dtype=self.acc, device=w.device)
            self.register_buffer("ones", ones, persistent=False)
            halves = isinstance(c.padding, tuple) and all(
                2 * p <= k for p, k in zip(c.padding, c.kernel_size, strict=True)
            )
            self.pool = halves and c.dilation == (1, 1)
        self.register_buffer("w_ck", wck, persistent=False)
        b_ck = None if b is None else b64.sum(1).to(w.dtype)
        self.register_buffer("b_ck", b_ck, persistent=False)

    @property
    def weight(self) -> torch.Tensor:
        """The weight the layer computes with (fault injection flips bits here)."""
        return self.layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        """The wrapped layer's bias."""
        return self.layer.bias

    def __getattr__(self, name: str) -> object:
        """Parameters, buffers and submodules first; then the wrapped layer's attributes."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get("_modules", {})
            if "layer" not in modules:
                raise
            return getattr(modules["layer"], name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped layer's output, after checking it (report or raise via the monitor)."""
        # _modules / _buffers are read directly: nn.Module.__getattr__ costs about a microsecond
        # per lookup, which at batch 1 is a sizeable share of a check's time
        layer = self._modules["layer"]
        y = layer(x)  # the unprotected layer's own call: its bits, its autograd graph
        if torch.is_grad_enabled():
            with torch.no_grad():
                ratio = self._check(layer, x, y)
        else:  # inference already runs without autograd: skip the context manager's cost
            ratio = self._check(layer, x, y)
        self.monitor.record(self.name, self.scheme, ratio)
        return y

    def _check(self, layer: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        """Apply ``output_fault``, then |difference| / threshold of the worst check (no grad)."""
        if self.output_fault is not None:
            self.output_fault(y)
        if self.scheme == "global":
            return self._check_global(x, y)
        if self.scheme == "replication":
            return 0.0 if torch.equal(y, layer.forward(x)) else math.inf
        return self._check_tiles(x, y)

    def _global_factor(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Relative error factor of the column check for this input geometry (cached)."""
        key = (x.shape, y.shape)
        if key not in self._factors:
            rows = y.numel() // self.n_out
            # the GEMM; sums of the output column and of the input columns; the product
            if self.is_conv:
                pixels = y.shape[-1] * y.shape[-2]
                terms = [
                    (rows, self.u_acc),
                    (x.shape[0], self.u_acc),
                    (pixels, self.u_acc),
                    (self.k, self.u_acc),
                ]
                sums = x.shape[0] + pixels + self.k
            else:
                terms = [(rows, self.u_acc), (rows, self.u_acc), (self.k, self.u_acc)]
                sums = rows + self.k
            factor = self.thresholds.total([(self.k + 2, self.u), *terms])
            self._factors[key] = factor * (
                1.0 + gamma(sums, self.u_acc)
            )  # magnitudes summed in self.acc
        return self._factors[key]

    def _global_scratch(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Preallocated tensors of the global check for this input shape (cached).

        ``sums`` (2, K) or, for convs, (2, C, H + pads, W + pads) zero-padded images: the
        check writes 1^T A and 1^T |A| into ``signed`` and ``absolute`` (its interior), so
        neither a stack nor a pad runs per call; ``both`` receives [reference; magnitudes].
        """
        key = (x.shape if self.is_conv else None, x.device)
        if key not in self._scratch:
            if len(self._scratch) >= 8:  # inputs of ever new shapes: keep the cache small
                self._scratch.clear()
            new = {"dtype": self.acc, "device": x.device}
            if self.is_conv:
                left, right, top, bottom = self.colsum.pads
                height, width = x.shape[-2:]
                sums = torch.zeros(
                    2, x.shape[1], top + height + bottom, left + width + right, **new
                )
                inner = sums[:, :, top : top + height, left : left + width]
            else:
                sums = inner = torch.zeros(2, self.k, **new)
            both = torch.empty(2 * self.groups, 1, self.n_out // self.groups, **new)
            ref, mag = both.view(2, -1).unbind()
            self._scratch[key] = (sums, *inner.unbind(), both, ref, mag)
        return self._scratch[key]

    def _global_sums(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Output column sums, their reference (1^T A) B + rows b, and the magnitudes
        (1^T |A|) |B| + rows |b| that the thresholds scale, one per output channel.

        The reference and the magnitudes live in a scratch buffer that the next call at the
        same shape overwrites."""
        acc, buffers = self.acc, self._buffers
        sums, signed, absolute, both, ref, mag = self._global_scratch(x)
        if self.is_conv:
            torch.sum(x, 0, dtype=acc, out=signed)
            torch.linalg.vector_norm(x, 1, 0, dtype=acc, out=absolute)
            cols = self.colsum.of_padded(sums.flatten(0, 1))
            out = y.sum((0, 2, 3), dtype=acc)
        else:
            src = x.reshape(-1, self.k)
            torch.sum(src, 0, dtype=acc, out=signed)
            torch.linalg.vector_norm(src, 1, 0, dtype=acc, out=absolute)
            cols = sums
            out = y.reshape(-1, self.n_out).sum(0, dtype=acc)
        rows = y.numel() // self.n_out
        cols = cols.view(2 * self.groups, 1, -1)
        torch.baddbmm(buffers["b_pm"], cols, buffers["w_pm"], beta=rows, out=both)
        return out, ref, mag

    def _row_norms(self, x: torch.Tensor) -> torch.Tensor:
        """L1 norm of each im2col row of A (per group for convs), in the check precision."""
        if not self.is_conv:
            return torch.linalg.vector_norm(x, 1, -1, keepdim=True, dtype=self.acc)
        c, g = self._modules["layer"], self.groups
        per_pixel = torch.unflatten(x.abs(), 1, (g, -1)).sum(2, dtype=self.acc)
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
        worst = torch.linalg.vector_norm(out.sub_(ref).div_(mag), math.inf)  # NaN stays NaN
        return float(worst) / self._global_factor(x, y)

    def _check_tiles(self, x: torch.Tensor, y: torch.Tensor) -> float:
        buffers = self._buffers
        tiles = (self.tiles, self.tile_width)
        if self.is_conv:
            c = self._modules["layer"]
            weights = buffers["w_ck"], buffers["b_ck"]
            ck = F.conv2d(x, *weights, c.stride, c.padding, c.dilation, c.groups)
            sums = torch.unflatten(y, 1, tiles).sum(2, dtype=self.acc)
        else:
            ck = F.linear(x, buffers["w_ck"], buffers["b_ck"])
            sums = torch.unflatten(y, -1, tiles).sum(-1, dtype=self.acc)
        tau = torch.addcmul(buffers["fb"], self._row_norms(x), buffers["fw"])
        # sub_ promotes the checksum to the check precision, as .to(self.acc) would
        return float(torch.linalg.vector_norm(sums.sub_(ck).div_(tau), math.inf))
