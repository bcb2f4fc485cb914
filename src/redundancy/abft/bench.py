"""Time a model unprotected and under each protection strategy, on the same input."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from redundancy.abft.profile import DeviceProfile
from redundancy.abft.protect import protect
from redundancy.abft.selector import SelectorMode
from redundancy.abft.timing import time_models
from redundancy.errors import ParameterError

STRATEGY_ORDER = ("global", "tiled", "guided", "replication")


@dataclass(frozen=True)
class Timing:
    """Median seconds per inference, unprotected and per strategy, and the timing noise.

    ``noise`` bounds what this run cannot resolve, relative to the unprotected median: the
    larger of the robust spread of the unprotected rounds (1.4826 x median absolute
    deviation) and the gap between two separately built but identical tiled-only models (an
    A/A control, which catches layout and allocation effects that a spread cannot see).
    Every timed call is also a clean run, so ``false_positives`` counts the checks that failed
    and ``max_clean_ratio`` the largest |difference| / threshold any check saw.
    """

    unprotected: float
    seconds: dict[str, float]
    noise: float
    false_positives: int
    max_clean_ratio: float

    def overhead(self, strategy: str) -> float:
        """Extra time of ``strategy`` relative to the unprotected model (0.1 = 10 %)."""
        return self.seconds[strategy] / self.unprotected - 1.0


def progress_steps(repeats: int, strategies: tuple[str, ...] = STRATEGY_ORDER) -> int:
    """How many times ``time_strategies`` calls its ``progress`` callback.

    Raises
    ------
    ParameterError
        If ``repeats`` is outside 1..1000.

    Examples
    --------
    >>> progress_steps(5)  # 4 strategies + the A/A control + 5 rounds
    10
    """
    if not (1 <= repeats <= 1000):
        raise ParameterError(f"repeats={repeats} is out of range (allowed: 1..1000)")
    return len(strategies) + 1 + repeats


def time_strategies(
    model: nn.Module,
    x: torch.Tensor,
    profile: DeviceProfile,
    repeats: int = 9,
    strategies: tuple[str, ...] = STRATEGY_ORDER,
    tile: int = 32,
    selector: SelectorMode = "measured",
    min_sample_s: float = 0.01,
    progress: Callable[[], None] | None = None,
) -> Timing:
    """Median inference time, unprotected and per strategy, over interleaved rounds.

    Every variant is warmed up first. Each round times every variant once (each sample
    averages enough calls to last ``min_sample_s``), starting from a different variant each
    round, so that drifts in machine load hit all variants alike. ``progress`` is called
    after each protected variant is built and after each round:
    ``progress_steps(repeats, strategies)`` times in all.
    """
    progress_steps(repeats, strategies)  # validates repeats
    step = progress or (lambda: None)
    variants: dict[str, nn.Module] = {"unprotected": model.eval()}
    protected = {}
    for s in strategies:
        protected[s] = protect(model, profile, x, strategy=s, tile=tile, selector=selector)
        step()
    variants.update(protected)
    variants["control"] = protect(model, strategy="tiled", tile=tile)
    step()
    samples = time_models(variants, x, repeats, min_sample_s, on_round=step)
    median = {name: statistics.median(v) for name, v in samples.items()}
    unprotected = median.pop("unprotected")
    spread = 1.4826 * statistics.median(abs(v - unprotected) for v in samples["unprotected"])
    control = median.pop("control")
    noise = max(spread, abs(control - median["tiled"]) if "tiled" in median else 0.0)
    monitors = [p.monitor for p in protected.values()]
    false_positives = sum(len(m.detections) for m in monitors)
    ratios = [r for m in monitors for r in m.max_clean_ratio.values()]
    worst = max(ratios, default=0.0)
    return Timing(unprotected, median, noise / unprotected, false_positives, worst)
