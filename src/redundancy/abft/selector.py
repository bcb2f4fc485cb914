"""Per-layer scheme choice: predict each scheme's overhead on a device profile, pick the least.

The cost model is a roofline, time = max(flops / peak, bytes / bandwidth), plus a fixed cost per
extra tensor operation. Global ABFT pays extra memory passes (the input for 1^T A and its
magnitude, the output for its sum); tiled ABFT pays extra compute (1 / tile of the GEMM) inside
the same pass, plus the per-tile output sums. So tiled wins where the layer is bandwidth bound
(low arithmetic intensity) and global wins where it is compute bound (high intensity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from redundancy.abft.gemm import GemmShape, layer_shape
from redundancy.abft.profile import DeviceProfile
from redundancy.abft.schemes import effective_tile
from redundancy.errors import ParameterError

SelectorMode = Literal["cost", "intensity"]
OPS_GLOBAL_LINEAR = 10
OPS_GLOBAL_CONV = 10
OPS_PER_PHASE = 12
OPS_TILED = 10


@dataclass(frozen=True)
class LayerPlan:
    """One layer's GEMM, its arithmetic intensity, predicted times and the chosen scheme."""

    name: str
    shape: GemmShape
    base_s: float
    overhead_s: dict[str, float]
    scheme: str

    @property
    def intensity(self) -> float:
        """Arithmetic intensity of the layer's GEMM (flops per byte)."""
        return self.shape.intensity


def _roof(flops: float, nbytes: float, profile: DeviceProfile, dtype: str) -> float:
    return max(flops / profile.peak(dtype), nbytes / profile.bandwidth)


def _phases(module: nn.Module) -> int:
    if not isinstance(module, nn.Conv2d):
        return 0
    (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.stride, module.dilation
    return len({i * dh % sh for i in range(kh)}) * len({j * dw % sw for j in range(kw)})


def predict(
    module: nn.Module, shape: GemmShape, profile: DeviceProfile, dtype: str, tile: int
) -> tuple[float, dict[str, float]]:
    """Predicted base time and extra time of each scheme (seconds) for one layer."""
    e, launch = shape.elem_bytes, profile.launch_s
    i, o, w, f = shape.in_numel, shape.out_numel, shape.weight_numel, shape.flops
    base = _roof(f, e * (i + o + w), profile, dtype) + launch
    read_in = _roof(i, e * i, profile, dtype)
    read_out = _roof(o, e * o, profile, dtype)
    ops = OPS_GLOBAL_CONV + OPS_PER_PHASE * _phases(module) if shape.kind == "conv2d" else 0
    global_s = 2 * read_in + read_out + (ops or OPS_GLOBAL_LINEAR) * launch
    grow = 1.0 / effective_tile(shape.n // shape.groups, tile)
    if shape.groups == 1:  # checksum columns ride in the same GEMM
        fused = _roof(f * (1 + grow), e * (i + (o + w) * (1 + grow)), profile, dtype)
        extra = fused - _roof(f, e * (i + o + w), profile, dtype)
    else:  # a second, grouped convolution for the checksum channels
        extra = _roof(f * grow, e * (i + (o + w) * grow), profile, dtype) + launch
    tiled_s = extra + read_out + read_in + OPS_TILED * launch
    replication_s = base + _roof(o, 2 * e * o, profile, dtype) + launch
    return base, {"global": global_s, "tiled": tiled_s, "replication": replication_s}


def choose(
    shape: GemmShape, overhead: dict[str, float], profile: DeviceProfile, dtype: str, mode: str
) -> str:
    """The scheme for one layer: least predicted overhead, or the paper's AI-vs-ridge rule."""
    if mode == "intensity":
        return "tiled" if shape.intensity < profile.ridge(dtype) else "global"
    if mode == "cost":
        return min(("global", "tiled"), key=lambda s: overhead[s])
    raise ParameterError(f"selector mode={mode!r} is not allowed (cost, intensity)")


def layer_inputs(model: nn.Module, example: torch.Tensor) -> dict[str, torch.Size]:
    """Input shape of every Linear/Conv2d layer for one forward pass on ``example``."""
    shapes: dict[str, torch.Size] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear | nn.Conv2d):

            def hook(_m: nn.Module, args: tuple, name: str = name) -> None:
                shapes.setdefault(name, args[0].shape)

            handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def plan(
    model: nn.Module,
    example: torch.Tensor,
    profile: DeviceProfile,
    tile: int = 32,
    mode: SelectorMode = "cost",
) -> list[LayerPlan]:
    """Per-layer GEMM shape, intensity, predicted overheads and chosen scheme."""
    if tile < 1:
        raise ParameterError(f"tile={tile} is out of range (allowed: >= 1)")
    modules = dict(model.named_modules())
    plans = []
    for name, x_shape in layer_inputs(model, example).items():
        module = modules[name]
        dtype = str(module.weight.dtype).removeprefix("torch.")
        shape = layer_shape(module, x_shape, module.weight.dtype)
        base, overhead = predict(module, shape, profile, dtype, tile)
        plans.append(
            LayerPlan(name, shape, base, overhead, choose(shape, overhead, profile, dtype, mode))
        )
    return plans
