"""Fault injection: single bit flips in weights, activations or GEMM outputs of protected layers.

* ``weight``: a bit of a stored weight is flipped (a memory fault), then restored.
* ``activation``: a bit of the layer's input, as this layer reads it, is flipped. ABFT cannot see
  these (the checksum is computed from the same wrong input); they are measured to show it.
* ``output``: a bit of the GEMM result is flipped before the check (a fault in the computation).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from redundancy.abft.protect import ProtectedModel
from redundancy.abft.schemes import ProtectedLayer
from redundancy.errors import ParameterError

Target = Literal["weight", "activation", "output"]
TARGETS: tuple[str, ...] = ("weight", "activation", "output")
_INT_OF_SIZE = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def bit_width(dtype: torch.dtype) -> int:
    """Number of bits of one element of ``dtype``."""
    return torch.empty((), dtype=dtype).element_size() * 8


def flip_bit(tensor: torch.Tensor, index: int, bit: int) -> None:
    """Flip bit ``bit`` (0 = least significant) of element ``index`` (flat, row-major), in place."""
    width = bit_width(tensor.dtype)
    if not (0 <= bit < width):
        raise ParameterError(f"bit={bit} is out of range (allowed: 0..{width - 1})")
    if not (0 <= index < tensor.numel()):
        raise ParameterError(f"index={index} is out of range (allowed: 0..{tensor.numel() - 1})")
    position = tuple(int(i) for i in np.unravel_index(index, tuple(tensor.shape)))
    mask = 1 << bit
    if bit == width - 1:
        mask -= 1 << width  # the sign bit as a negative number of the signed type
    element = tensor[position].view(_INT_OF_SIZE[tensor.element_size()])
    element.bitwise_xor_(mask)


@dataclass
class BitResult:
    """Outcome of the flips at one bit position."""

    bit: int
    trials: int = 0
    detected: int = 0
    corrupted: int = 0
    detected_corrupted: int = 0

    @property
    def detection_rate(self) -> float:
        """Share of all injected flips that a check reported."""
        return self.detected / self.trials if self.trials else 0.0

    @property
    def coverage(self) -> float:
        """Share of flips that changed the model output which a check reported."""
        return self.detected_corrupted / self.corrupted if self.corrupted else 1.0


@dataclass
class CampaignResult:
    """Per-bit results of a campaign plus the false positives seen on clean runs.

    Attributes
    ----------
    target : str
        Where the bits were flipped: ``"weight"``, ``"activation"`` or ``"output"``.
    bits : list of BitResult
        Trials, detections and corruptions at each bit position.
    clean_runs : int
        Fault-free forward passes made.
    false_positives : int
        Detections on those clean runs.

    Examples
    --------
    >>> result = CampaignResult("output", [BitResult(30, 10, 10, 9, 9), BitResult(0, 10, 0, 2, 0)])
    >>> pooled = result.total()
    >>> pooled.trials, pooled.detected, pooled.coverage
    (20, 10, 0.8181818181818182)
    """

    target: str
    bits: list[BitResult] = field(default_factory=list)
    clean_runs: int = 0
    false_positives: int = 0

    def total(self, bits: list[int] | None = None) -> BitResult:
        """All (or the chosen) bit positions pooled together."""
        pooled = BitResult(bit=-1)
        for r in self.bits:
            if bits is None or r.bit in bits:
                pooled.trials += r.trials
                pooled.detected += r.detected
                pooled.corrupted += r.corrupted
                pooled.detected_corrupted += r.detected_corrupted
        return pooled


def _io_sizes(model: ProtectedModel, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    sizes: dict[str, tuple[int, int]] = {}

    def record(module: ProtectedLayer, args: tuple, out: torch.Tensor) -> None:
        sizes.setdefault(module.name, (args[0].numel(), out.numel()))

    handles = [layer.register_forward_hook(record) for layer in model.layers.values()]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return sizes


def _inject_once(
    model: ProtectedModel, layer: ProtectedLayer, x: torch.Tensor, target: str, index: int, bit: int
) -> torch.Tensor:
    if target == "weight":
        flip_bit(layer.weight.data, index, bit)
        try:
            return model(x)
        finally:
            flip_bit(layer.weight.data, index, bit)
    if target == "output":
        layer.output_fault = lambda y: flip_bit(y, index, bit)
        try:
            return model(x)
        finally:
            layer.output_fault = None

    def corrupt_input(_m: torch.nn.Module, args: tuple) -> tuple:
        bad = args[0].clone()
        flip_bit(bad, index, bit)
        return (bad, *args[1:])

    handle = layer.register_forward_pre_hook(corrupt_input)
    try:
        return model(x)
    finally:
        handle.remove()


def campaign(
    model: ProtectedModel,
    x: torch.Tensor,
    target: Target = "output",
    bits: list[int] | None = None,
    trials: int = 20,
    seed: int = 0,
    clean_runs: int = 3,
    progress: Callable[[], None] | None = None,
) -> CampaignResult:
    """Flip ``trials`` random single bits per bit position; count detections and corruptions.

    Each trial picks a protected layer that runs on ``x`` and an element uniformly at random.
    A flip "corrupts" when the model output is no longer bit-identical to the clean output.
    The model's policy is set to "report" for the campaign and restored afterwards.

    Parameters
    ----------
    model : ProtectedModel
        What :func:`~redundancy.abft.protect.protect` returned.
    x : torch.Tensor
        The input.
    target : {"output", "weight", "activation"}, default "output"
        Flip bits of a layer's output, its weights, or its input.
    bits : list of int, optional
        Bit positions to flip (default: every bit of the dtype).
    trials : int, default 20
        Flips per bit position, 1..100000.
    seed : int, default 0
        Seeds the choice of layer and element and the clean inputs.
    clean_runs : int, default 3
        Extra fault-free runs on random inputs, to count false positives.
    progress : callable, optional
        Called after each flip (``len(bits) * trials`` times).

    Returns
    -------
    CampaignResult
        Per-bit counts and the false positives.

    Raises
    ------
    ParameterError
        If the target or trials is out of range, or no protected layer runs on ``x``.

    Examples
    --------
    >>> from torch import nn
    >>> from redundancy.abft.protect import protect
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    >>> safe = protect(net, strategy="global")
    >>> result = campaign(safe, torch.randn(32, 64), bits=[30], trials=10)  # an exponent bit
    >>> result.total().detected, result.false_positives
    (10, 0)
    """
    if target not in TARGETS:
        raise ParameterError(f"target={target!r} is not allowed (one of {TARGETS})")
    if not (1 <= trials <= 100_000):
        raise ParameterError(f"trials={trials} is out of range (allowed: 1..100000)")
    layers = list(model.layers.values())
    if not layers:
        raise ParameterError("the model has no protected layers to inject into")
    width = bit_width(layers[0].weight.dtype)
    bits = list(range(width)) if bits is None else bits
    rng = random.Random(seed)
    policy, model.monitor.policy = model.monitor.policy, "report"
    result = CampaignResult(target=target)
    try:
        with torch.no_grad():
            model.monitor.reset()
            clean = model(x)
            for i in range(clean_runs):
                gen = torch.Generator().manual_seed(seed + 1 + i)
                model(torch.randn(x.shape, generator=gen, dtype=x.dtype))
            result.clean_runs = clean_runs + 1
            result.false_positives = len(model.monitor.detections)
            sizes = _io_sizes(model, x)
            ran = [layer for layer in layers if layer.name in sizes]
            if not ran:
                raise ParameterError(
                    "no protected layer runs its check on this input (a fused fast path "
                    "reads the weights directly); see ProtectedModel.unchecked"
                )
            for bit in bits:
                r = BitResult(bit=bit)
                for _ in range(trials):
                    layer = rng.choice(ran)
                    n_in, n_out = sizes[layer.name]
                    numel = {"weight": layer.weight.numel(), "activation": n_in, "output": n_out}
                    index = rng.randrange(numel[target])
                    model.monitor.reset()
                    out = _inject_once(model, layer, x, target, index, bit)
                    detected = bool(model.monitor.detections)
                    corrupted = not torch.equal(out, clean)
                    r.trials += 1
                    r.detected += detected
                    r.corrupted += corrupted
                    r.detected_corrupted += detected and corrupted
                    if progress is not None:
                        progress()
                result.bits.append(r)
    finally:
        model.monitor.policy = policy
        model.monitor.reset()
    return result
