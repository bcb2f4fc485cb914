"""``protect(model, profile)``: a copy of a model whose Linear/Conv2d layers check themselves."""

from __future__ import annotations

import copy
import statistics
from dataclasses import replace
from typing import Literal

import torch
from torch import nn

from redundancy.abft.profile import DeviceProfile
from redundancy.abft.schemes import (
    SCHEMES,
    Detection,
    Monitor,
    ProtectedLayer,
    protectable_layers,
)
from redundancy.abft.selector import LayerPlan, SelectorMode, plan
from redundancy.abft.thresholds import ThresholdConfig
from redundancy.abft.timing import CANDIDATES, DEFAULT_TIMER, LayerTimer, time_models
from redundancy.errors import ParameterError

Strategy = Literal["guided", "global", "tiled", "replication"]
STRATEGIES: tuple[str, ...] = ("guided", *SCHEMES)


class ProtectedModel(nn.Module):
    """The protected copy: forward as the original, plus ``monitor`` with what the checks saw.

    Made by :func:`protect`; ``schemes()`` says which check each layer runs, ``report()`` lists
    the failed checks.

    Parameters
    ----------
    model : torch.nn.Module
        The copy of the model whose layers are wrapped in self-checking layers.
    monitor : Monitor
        Shared by the layers: the policy and what the checks saw.
    plans : list of LayerPlan
        The per-layer plans of the guided strategy (empty otherwise).
    unprotected : dict of str to str, optional
        Linear/Conv2d layers left as they were, with the reason (for example the projections
        inside ``nn.MultiheadAttention``, whose weights it reads directly).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    >>> safe = protect(net, strategy="global")
    >>> sorted(safe.layers), safe.schemes(), safe.unprotected
    (['0', '2'], {'0': 'global', '2': 'global'}, {})
    >>> _ = safe(torch.randn(8, 64))
    >>> safe.report(), safe.unchecked
    ([], [])
    """

    def __init__(
        self,
        model: nn.Module,
        monitor: Monitor,
        plans: list[LayerPlan],
        unprotected: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.model, self.monitor, self.plans = model, monitor, plans
        self.unprotected = dict(unprotected or {})

    def forward(self, *args: object, **kwargs: object) -> object:
        """Run the model; checks run inside each protected layer."""
        self.monitor.checked.clear()
        return self.model(*args, **kwargs)

    @property
    def unchecked(self) -> list[str]:
        """Protected layers whose check did not run in the last call.

        A module whose parent reads its weights instead of calling it (PyTorch's fused
        inference fast path of ``nn.TransformerEncoderLayer``, for one) computes unchecked.
        Turn such fast paths off (``torch.backends.mha.set_fastpath_enabled(False)``) for the
        original and the protected model alike to have those layers checked.
        """
        return sorted(set(self.layers) - self.monitor.checked)

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

    With no fault the copy returns exactly the bits ``model.eval()`` returns (each layer's
    output comes from the layer's own call; the checks only read it). Layers that cannot be
    checked are left as they are and listed in ``unprotected`` (see ``protectable_layers``).
    The original model is left untouched.

    Parameters
    ----------
    model : torch.nn.Module
        The model to protect.
    profile : DeviceProfile, optional
        The device (see :func:`get_profile`); needed by the guided strategy.
    example : torch.Tensor, optional
        A typical input; needed by the guided strategy, which plans on the GEMM each layer
        runs on it.
    strategy : {"guided", "global", "tiled", "replication"}, default "guided"
        ``"guided"`` picks global or tiled per layer; the others use one scheme everywhere.
    policy : {"report", "raise"}, default "report"
        On a mismatch, log it in ``monitor.detections`` or raise
        :class:`SilentDataCorruption` naming the layer.
    tile : int, default 32
        Output channels per checksum column of the tiled scheme.
    thresholds : ThresholdConfig, optional
        The round-off bound a check allows (default: statistical, lam = 8).
    selector : {"measured", "cost", "paper"}, default "measured"
        How the guided strategy chooses: timing both schemes on each layer's input on this
        device, the roofline model, or the paper's AI-vs-ridge rule.
    timer : LayerTimer, optional
        Timer (and cache) for the measured selector.

    Returns
    -------
    ProtectedModel
        The protected copy, in eval mode.

    Raises
    ------
    ParameterError
        If the strategy, policy or selector is unknown, or the guided strategy lacks a profile
        or an example.

    Examples
    --------
    >>> from redundancy.abft.profile import get_profile
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    >>> x = torch.randn(32, 64)
    >>> safe = protect(net, get_profile("T4"), x, selector="cost", policy="raise")
    >>> safe.schemes()
    {'0': 'tiled', '2': 'tiled'}
    >>> torch.equal(safe(x), net.eval()(x))  # bit for bit
    True
    >>> safe.layers["0"].weight.data[0, 0] += 1000  # a corrupted weight
    >>> safe(x)
    Traceback (most recent call last):
    ...
    redundancy.abft.schemes.SilentDataCorruption: layer '0' (tiled ABFT): checksum mismatch ...
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
    wrapped, unprotected = _wrap(clone, schemes, strategy, monitor, tile, thresholds)
    return ProtectedModel(wrapped, monitor, plans, unprotected)


def _wrap(
    model: nn.Module,
    schemes: dict[str, str],
    default: str,
    monitor: Monitor,
    tile: int,
    thresholds: ThresholdConfig | None,
) -> tuple[nn.Module, dict[str, str]]:
    """A copy of ``model`` with each protectable layer wrapped in its scheme (or default).

    Returns the copy and the Linear/Conv2d layers left unwrapped, with the reason.
    """
    clone = copy.deepcopy(model)
    layers, skipped = protectable_layers(clone)
    wrappers: dict[int, ProtectedLayer] = {}
    for name, module in layers.items():
        scheme = schemes.get(name, "global" if default == "guided" else default)
        wrapped = ProtectedLayer(name, module, scheme, monitor, tile, thresholds)  # type: ignore[arg-type]
        if not name:  # the model is itself one Linear/Conv2d layer
            return wrapped, skipped
        wrappers[id(module)] = wrapped
    # every place a wrapped layer is registered (a shared layer may sit under several names)
    for parent in list(clone.modules()):
        for child_name, child in list(parent.named_children()):
            if id(child) in wrappers:
                setattr(parent, child_name, wrappers[id(child)])
    return clone, skipped


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
    models = {
        k: _wrap(model, v, "guided", Monitor(), tile, thresholds)[0] for k, v in mixes.items()
    }
    samples = time_models(models, example, timer.rounds, 10 * timer.min_sample_s)
    best = min(samples, key=lambda k: statistics.median(samples[k]))
    return [replace(p, scheme=mixes[best][p.name]) for p in plans]
