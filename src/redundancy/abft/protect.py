"""``protect(model, profile)``: a copy of a model whose Linear/Conv2d layers check themselves."""

from __future__ import annotations

import copy
import statistics
from dataclasses import replace
from typing import Literal

import torch
from torch import nn

from redundancy.abft.profile import DeviceProfile
from redundancy.abft.schemes import SCHEMES, Detection, Monitor, ProtectedLayer
from redundancy.abft.selector import LayerPlan, SelectorMode, plan
from redundancy.abft.thresholds import ThresholdConfig
from redundancy.abft.timing import CANDIDATES, DEFAULT_TIMER, LayerTimer, time_models
from redundancy.errors import ParameterError

Strategy = Literal["guided", "global", "tiled", "replication"]
STRATEGIES: tuple[str, ...] = ("guided", *SCHEMES)


class ProtectedModel(nn.Module):
    """The protected copy: forward as the original, plus ``monitor`` with what the checks saw."""

    def __init__(self, model: nn.Module, monitor: Monitor, plans: list[LayerPlan]) -> None:
        super().__init__()
        self.model, self.monitor, self.plans = model, monitor, plans

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        """Run the model; checks run inside each protected layer."""
        return self.model(*args, **kwargs)

    @property
    def layers(self) -> dict[str, ProtectedLayer]:
        """Protected layers by their name in the original model."""
        return {m.name: m for m in self.model.modules() if isinstance(m, ProtectedLayer)}

    def schemes(self) -> dict[str, str]:
        """Scheme used by each protected layer."""
        return {name: layer.scheme for name, layer in self.layers.items()}

    def report(self) -> list[Detection]:
        """Detections since the last ``monitor.reset()``."""
        return list(self.monitor.detections)


def protect(
    model: nn.Module,
    profile: DeviceProfile | None = None,
    example: torch.Tensor | None = None,
    strategy: Strategy = "guided",
    policy: Literal["raise", "report"] = "report",
    tile: int = 32,
    thresholds: ThresholdConfig | None = None,
    selector: SelectorMode = "measured",
    timer: LayerTimer | None = None,
) -> ProtectedModel:
    """Copy ``model`` and wrap each Linear/Conv2d layer in a self-checking ProtectedLayer.

    ``strategy="guided"`` picks global or tiled per layer from the layer's GEMM on ``example``
    and the device ``profile``: by default (``selector="measured"``) from timing both schemes on
    each layer's input on this device, or from the roofline model (``"cost"``) or the paper's
    AI-vs-ridge rule (``"paper"``); the other strategies use one scheme everywhere. With
    ``policy="raise"`` a mismatch raises SilentDataCorruption naming the layer; with "report"
    it is logged in ``monitor.detections``. The original model is left untouched.
    """
    if strategy not in STRATEGIES:
        raise ParameterError(f"strategy={strategy!r} is not allowed (one of {STRATEGIES})")
    if policy not in ("raise", "report"):
        raise ParameterError(f"policy={policy!r} is not allowed (raise, report)")
    if strategy == "guided" and (profile is None or example is None):
        raise ParameterError("strategy='guided' needs a device profile and an example input")
    clone = copy.deepcopy(model).eval()
    plans: list[LayerPlan] = []
    if strategy == "guided":
        plans = plan(clone, example, profile, tile, selector, timer=timer, thresholds=thresholds)
        if selector == "measured" and len({p.scheme for p in plans}) > 1:
            plans = _confirm(clone, example, plans, tile, thresholds, timer or DEFAULT_TIMER)
    schemes = {p.name: p.scheme for p in plans} if plans else {}
    monitor = Monitor(policy=policy)
    wrapped = _wrap(clone, schemes, strategy, monitor, tile, thresholds)
    return ProtectedModel(wrapped, monitor, plans)


def _wrap(
    model: nn.Module,
    schemes: dict[str, str],
    default: str,
    monitor: Monitor,
    tile: int,
    thresholds: ThresholdConfig | None,
) -> nn.Module:
    """A copy of ``model`` with each Linear/Conv2d layer wrapped in its scheme (or default)."""
    clone = copy.deepcopy(model)
    targets = [
        (name, m) for name, m in clone.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)
    ]
    for name, module in targets:
        scheme = schemes.get(name, "global" if default == "guided" else default)
        wrapped = ProtectedLayer(name, module, scheme, monitor, tile, thresholds)  # type: ignore[arg-type]
        if not name:  # the model is itself one Linear/Conv2d layer
            return wrapped
        parent_name, _, child = name.rpartition(".")
        setattr(clone.get_submodule(parent_name) if parent_name else clone, child, wrapped)
    return clone


def _confirm(
    model: nn.Module,
    example: torch.Tensor,
    plans: list[LayerPlan],
    tile: int,
    thresholds: ThresholdConfig | None,
    timer: LayerTimer,
) -> list[LayerPlan]:
    """Check the per-layer mix end to end against global-only and tiled-only on ``example``.

    Layers timed alone can rank differently than inside the network (caches, allocator), and
    near ties are decided by noise; so the mix is timed against both uniform plans and the
    fastest of the three is kept.
    """
    mixes = {"mixed": {p.name: p.scheme for p in plans}}
    mixes |= {s: {p.name: s for p in plans} for s in CANDIDATES}
    models = {k: _wrap(model, v, "guided", Monitor(), tile, thresholds) for k, v in mixes.items()}
    samples = time_models(models, example, timer.rounds, 10 * timer.min_sample_s)
    best = min(samples, key=lambda k: statistics.median(samples[k]))
    return [replace(p, scheme=mixes[best][p.name]) for p in plans]
