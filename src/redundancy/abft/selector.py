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
    """One layer's GEMM, its arithmetic intensity, predicted times and the chosen scheme.

    Attributes
    ----------
    name : str
        The layer's name in the model.
    shape : GemmShape
        The layer as a GEMM (M x K times K x N) and its tensor sizes.
    base_s : float
        Predicted time of the unprotected layer, seconds.
    overhead_s : dict of str to float
        Predicted extra time of each scheme (global, tiled, replication), seconds.
    scheme : str
        The chosen scheme.
    measured_s : dict of str to float, optional
        Measured time of each candidate scheme (the measured selector only).

    Examples
    --------
    >>> from redundancy.abft.profile import get_profile
    >>> layer_plan = plan(nn.Linear(64, 256), torch.zeros(32, 64), get_profile("T4"))[0]
    >>> (layer_plan.shape.m, layer_plan.shape.k, layer_plan.shape.n), layer_plan.scheme
    ((32, 64, 256), 'tiled')
    >>> round(layer_plan.intensity, 2)  # 2MNK / (4 bytes (MN + MK + KN))
    9.85
    """

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
    """Plan the check of every Linear/Conv2d layer: GEMM shape, intensity, overheads, scheme.

    Parameters
    ----------
    model : torch.nn.Module
        The model (not changed).
    example : torch.Tensor
        A typical input; each layer is planned for the input it sees on it.
    profile : DeviceProfile
        The device the cost model predicts for.
    tile : int, default 32
        Output channels per checksum column of the tiled scheme.
    mode : {"cost", "paper", "measured"}, default "cost"
        Least predicted overhead (roofline), the paper's rule (tiled where the intensity is
        below the profile's ridge point), or least measured time.
    timings : dict, optional
        For ``"measured"``: layer name -> scheme -> seconds per call (default: time every layer
        with ``timer`` on ``example``).
    timer : LayerTimer, optional
        Timer (and cache) for the measured mode.
    thresholds : ThresholdConfig, optional
        The round-off bound the timed checks use.

    Returns
    -------
    list of LayerPlan
        One plan per layer that runs on ``example``, in call order.

    Raises
    ------
    ParameterError
        If ``tile < 1`` or the mode is unknown.

    Examples
    --------
    >>> from redundancy.abft.profile import get_profile
    >>> net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    >>> x = torch.zeros(32, 64)
    >>> [(p.name, round(p.intensity, 1), p.scheme) for p in plan(net, x, get_profile("T4"))]
    [('0', 9.8, 'tiled'), ('2', 3.7, 'tiled')]
    >>> get_profile("T4").ridge()  # both layers lie below the ridge: memory-bound
    25.3125
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
