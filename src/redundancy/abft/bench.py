"""Time a model unprotected and under each protection strategy, on the same input."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from redundancy.abft.profile import DeviceProfile
from redundancy.abft.protect import protect
from redundancy.errors import ParameterError

STRATEGY_ORDER = ("global", "tiled", "guided", "replication")


@dataclass(frozen=True)
class Timing:
    """Best-of-rounds seconds per inference, unprotected and per strategy (min resists noise
    from other processes on a shared machine)."""

    unprotected: float
    seconds: dict[str, float]

    def overhead(self, strategy: str) -> float:
        """Extra time of ``strategy`` relative to the unprotected model (0.1 = 10 %)."""
        return self.seconds[strategy] / self.unprotected - 1.0


def _time_once(model: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        model(x)  # warm-up (first calls verify fused GEMMs, build index plans)
        start = time.perf_counter()
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start


def time_strategies(
    model: nn.Module,
    x: torch.Tensor,
    profile: DeviceProfile,
    repeats: int = 5,
    strategies: tuple[str, ...] = STRATEGY_ORDER,
    tile: int = 32,
) -> Timing:
    """Fastest inference time, unprotected and per strategy, interleaved round by round.

    Rounds alternate between the variants so that drifts in machine load hit them alike.
    """
    if not (1 <= repeats <= 1000):
        raise ParameterError(f"repeats={repeats} is out of range (allowed: 1..1000)")
    variants: dict[str, nn.Module] = {"unprotected": model.eval()}
    for strategy in strategies:
        variants[strategy] = protect(model, profile, x, strategy=strategy, tile=tile)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, variant in variants.items():
            samples[name].append(_time_once(variant, x))
    best = {name: min(v) for name, v in samples.items()}
    unprotected = best.pop("unprotected")
    return Timing(unprotected, best)
