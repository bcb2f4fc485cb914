"""Per-layer scheme choice: predict or measure each scheme's overhead, pick the least.

Three modes:

* ``cost``: a roofline, time = max(flops / peak, bytes / bandwidth), plus a fixed cost per extra
  tensor operation, on a device profile (which may describe a device you do not have). Global
  ABFT pays extra memory passes (the input twice for 1^T A and 1^T |A|, the output for its
  column sums, a copy of B); tiled ABFT pays extra compute (1 / tile of the GEMM) in a second,
  narrow GEMM over the same input, plus the per-tile output sums and one pass over the input
  for the row norms.
* ``paper``: the SC'21 rule, tiled ("thread-level") where AI < the profile's ridge point,
  global otherwise.
* ``measured``: time both schemes on each layer's real input on this device (``timing.py``)
  and keep the faster one. Use it when the model runs where ``protect`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from redundancy.abft.gemm import GemmShape, layer_shape
from redundancy.abft.profile import DeviceProfile
from redundancy.abft.schemes import effective_tile
from redundancy.abft.thresholds import ThresholdConfig
from redundancy.abft.timing import CANDIDATES, DEFAULT_TIMER, LayerTimer, Timings, layer_inputs_of
from redundancy.errors import ParameterError

SelectorMode = Literal["cost", "paper", "measured"]
MODES: tuple[str, ...] = ("cost", "paper", "measured")
OPS_GLOBAL = 14  # small tensor operations per global check (sums, stack, product, compare)
OPS_COLSUM = 3  # extra for a conv: pad and the two strided-window reductions
OPS_TILED = 9  # row norms, tile sums, compare


@dataclass(frozen=True)
class LayerPlan:
    """One layer's GEMM, its arithmetic intensity, predicted times and the chosen scheme."""

    name: str
    shape: GemmShape
    base_s: float
    overhead_s: dict[str, float]
    scheme: str
    measured_s: dict[str, float] | None = None

    @property
    def intensity(self) -> float:
        """Arithmetic intensity of the layer's GEMM (flops per byte)."""
        return self.shape.intensity


def _roof(flops: float, nbytes: float, profile: DeviceProfile, dtype: str) -> float:
    return max(flops / profile.peak(dtype), nbytes / profile.bandwidth)


def predict(
    shape: GemmShape, profile: DeviceProfile, dtype: str, tile: int
) -> tuple[float, dict[str, float]]:
    """Predicted base time and extra time of each scheme (seconds) for one layer."""
    e, launch = shape.elem_bytes, profile.launch_s
    i, o, w, f = shape.in_numel, shape.out_numel, shape.weight_numel, shape.flops
    base = _roof(f, e * (i + o + w), profile, dtype) + launch
    read_in = _roof(i, e * i, profile, dtype)
    read_out = _roof(o, e * o, profile, dtype)
    read_w = _roof(2 * w, 2 * 4 * w, profile, "float32")  # the fp32 copy of B and |B|
    ops = OPS_GLOBAL + (OPS_COLSUM if shape.kind == "conv2d" else 0)
    global_s = 2 * read_in + read_out + read_w + ops * launch
    grow = 1.0 / effective_tile(shape.n // shape.groups, tile)
    # a second, narrow GEMM (N / tile output channels) for the checksums
    extra = _roof(f * grow, e * (i + (o + w) * grow), profile, dtype) + launch
    tiled_s = extra + read_out + read_in + OPS_TILED * launch
    replication_s = base + _roof(o, 2 * e * o, profile, dtype) + launch
    return base, {"global": global_s, "tiled": tiled_s, "replication": replication_s}


def choose(
    shape: GemmShape,
    overhead: dict[str, float],
    profile: DeviceProfile,
    dtype: str,
    mode: str,
    measured: dict[str, float] | None = None,
) -> str:
    """The scheme for one layer: least predicted or measured time, or the paper's rule."""
    if mode == "paper":
        return "tiled" if shape.intensity < profile.ridge(dtype) else "global"
    if mode == "cost":
        return min(CANDIDATES, key=lambda s: overhead[s])
    if mode == "measured":
        if measured is None:
            raise ParameterError("selector mode 'measured' needs timings for every layer")
        return min(CANDIDATES, key=lambda s: measured[s])
    raise ParameterError(f"selector mode={mode!r} is not allowed (one of {MODES})")


def plan(
    model: nn.Module,
    example: torch.Tensor,
    profile: DeviceProfile,
    tile: int = 32,
    mode: SelectorMode = "cost",
    timings: Timings | None = None,
    timer: LayerTimer | None = None,
    thresholds: ThresholdConfig | None = None,
) -> list[LayerPlan]:
    """Per-layer GEMM shape, intensity, predicted overheads and chosen scheme.

    In ``measured`` mode the choice comes from ``timings`` (layer name -> scheme -> seconds per
    call) or, when not given, from timing every layer with ``timer`` on ``example``.
    """
    if tile < 1:
        raise ParameterError(f"tile={tile} is out of range (allowed: >= 1)")
    if mode not in MODES:
        raise ParameterError(f"selector mode={mode!r} is not allowed (one of {MODES})")
    if mode == "measured" and timings is None:
        timings = (timer or DEFAULT_TIMER).measure(model, example, tile, thresholds)
    modules = dict(model.named_modules())
    plans = []
    for name, x in layer_inputs_of(model, example).items():
        module = modules[name]
        dtype = str(module.weight.dtype).removeprefix("torch.")
        shape = layer_shape(module, x.shape, module.weight.dtype)
        base, overhead = predict(shape, profile, dtype, tile)
        measured = None if timings is None else timings.get(name)
        scheme = choose(shape, overhead, profile, dtype, mode, measured)
        plans.append(LayerPlan(name, shape, base, overhead, scheme, measured))
    return plans
