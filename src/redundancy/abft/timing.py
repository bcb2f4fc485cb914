"""Profile-guided selection: time each candidate scheme on a layer's real input, once per shape.

The roofline model in ``selector.py`` cannot see everything a device does with small operations
(dispatch overhead, cache effects, which GEMM algorithm a backend picks). So the ``measured``
selector runs every Linear/Conv2d layer of the model once unprotected and once per candidate
scheme on the very input the layer sees, interleaved over a few rounds, and keeps the median
seconds per call. Results are cached by the layer's geometry and input shape, so repeated
blocks (and repeated ``protect`` calls) are timed once.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from redundancy.abft.schemes import Monitor, ProtectedLayer, protectable_layers
from redundancy.abft.thresholds import ThresholdConfig
from redundancy.errors import ParameterError

CANDIDATES: tuple[str, ...] = ("global", "tiled")
Timings = dict[str, dict[str, float]]


def layer_key(module: nn.Module, x: torch.Tensor, tile: int) -> tuple:
    """What a layer's cost depends on: its geometry, the input's shape/dtype/device, threads."""
    geometry: tuple = (type(module).__name__, tuple(module.weight.shape), module.bias is None)
    if isinstance(module, nn.Conv2d):
        geometry += (module.stride, module.padding, module.dilation, module.groups)
    threads = torch.get_num_threads()
    return (*geometry, tuple(x.shape), x.dtype, str(x.device), threads, tile)


def layer_inputs_of(model: nn.Module, example: torch.Tensor) -> dict[str, torch.Tensor]:
    """A copy of the input each protectable layer receives on ``example`` (first call).

    Layers the model never calls as modules on ``example`` are absent.
    """
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in protectable_layers(model)[0].items():

        def hook(_m: nn.Module, args: tuple, name: str = name) -> None:
            if name not in seen:
                seen[name] = args[0].detach().clone()

        handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def cpu_clock(x: torch.Tensor) -> Callable[[], float]:
    """Thread CPU time where all work runs on this thread (CPU, one torch thread), else wall."""
    if x.device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


def time_models(
    models: dict[str, nn.Module],
    x: torch.Tensor,
    rounds: int,
    min_sample_s: float,
    on_round: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each model on ``x``, one sample per model per round.

    All models are warmed up first (first calls allocate and pick kernels). Each sample
    averages enough calls of the first model to last ``min_sample_s``; each round starts from
    a different model, so drifts in machine load hit all of them alike. On a CPU with one
    torch thread the clock is this thread's CPU time, which other processes sharing the
    cores do not inflate (they still pollute caches); otherwise it is wall-clock time.
    ``on_round`` is called after each round (progress).
    """
    samples: dict[str, list[float]] = {name: [] for name in models}
    order = list(models)
    clock = cpu_clock(x)
    with torch.no_grad():
        for model in models.values():
            model(x)
            model(x)
        start = clock()
        models[order[0]](x)
        once = clock() - start
        calls = max(1, min(100, math.ceil(min_sample_s / max(once, 1e-9))))
        for r in range(rounds):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                model = models[name]
                start = clock()
                for _ in range(calls):
                    model(x)
                if x.is_cuda:
                    torch.cuda.synchronize()
                samples[name].append((clock() - start) / calls)
            if on_round is not None:
                on_round()
    return samples


class LayerTimer:
    """Times unprotected vs each candidate scheme per layer; caches by ``layer_key``."""

    def __init__(self, rounds: int = 7, min_sample_s: float = 2e-4) -> None:
        if not (1 <= rounds <= 100):
            raise ParameterError(f"rounds={rounds} is out of range (allowed: 1..100)")
        self.rounds, self.min_sample_s = rounds, min_sample_s
        self.cache: dict[tuple, dict[str, float]] = {}

    def time_layer(
        self,
        module: nn.Linear | nn.Conv2d,
        x: torch.Tensor,
        tile: int = 32,
        thresholds: ThresholdConfig | None = None,
    ) -> dict[str, float]:
        """Median seconds per call: ``"none"`` (unprotected) and each candidate scheme."""
        key = layer_key(module, x, tile)
        if key in self.cache:
            return self.cache[key]
        variants: dict[str, nn.Module] = {"none": copy.deepcopy(module)}
        for scheme in CANDIDATES:
            layer = copy.deepcopy(module)
            variants[scheme] = ProtectedLayer("timed", layer, scheme, Monitor(), tile, thresholds)
        samples = time_models(variants, x, self.rounds, self.min_sample_s)
        self.cache[key] = {name: statistics.median(v) for name, v in samples.items()}
        return self.cache[key]

    def measure(
        self,
        model: nn.Module,
        example: torch.Tensor,
        tile: int = 32,
        thresholds: ThresholdConfig | None = None,
    ) -> Timings:
        """Timings of every Linear/Conv2d layer of ``model`` on the input it sees."""
        modules = dict(model.named_modules())
        return {
            name: self.time_layer(modules[name], x, tile, thresholds)
            for name, x in layer_inputs_of(model, example).items()
        }


DEFAULT_TIMER = LayerTimer()
