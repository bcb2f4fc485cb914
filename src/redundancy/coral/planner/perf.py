"""Performance model: per-layer prefill/decode times (roofline or profiled) and T_hat_j(node).

T_hat_j(c, S) is the largest request throughput (req/s) one node of config ``c`` sustains while
holding ``j`` layers of a model, with each pipeline stage given 1/S of the SLO:
the largest batch B such that the KV cache of the S microbatches of B requests a full pipeline
keeps in flight fits beside the weights, whose decode step stays within
decode_ms/S and whose prefill stays within prefill_ms/S; a request then costs the node
``prefill + output_tokens * step(B) / B`` seconds.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from redundancy.coral.planner.catalog import ModelSpec, NodeConfig, PerfParams
from redundancy.errors import ConfigError


@dataclass(frozen=True)
class NodeRates:
    """Effective rates of a node of ``count`` GPUs, tensor parallel over them.

    ``bandwidth`` streams weights and KV cache, ``flops`` runs prefill GEMMs, ``decode_flops``
    the (smaller, less efficient) decode GEMMs; ``overhead_ms`` is a fixed per-layer launch cost;
    a TP node pays two all-reduces of the layer's activations per layer over its interconnect
    (``link_bytes_per_s`` bus bandwidth, ``link_latency_s`` each). ``source`` says whether the
    numbers are calibrated on measurements or the uncalibrated roofline (flagged in plans).
    """

    memory_bytes: float
    bandwidth: float  # bytes/s
    flops: float  # FLOP/s (prefill)
    decode_flops: float = 0.0  # FLOP/s at large decode batches (0: same as flops)
    overhead_ms: float = 0.0
    smooth: float = 0.0  # generalised-mean exponent joining memory and compute time (0: max)
    count: int = 1
    link_bytes_per_s: float = float("inf")
    link_latency_s: float = 0.0
    source: str = "roofline"

    @classmethod
    def of(cls, config: NodeConfig, perf: PerfParams) -> NodeRates:
        """Rates of ``config``: calibrated where ``perf.model`` is "calibrated" and the GPU has
        fitted factors (``calibration.yaml``), else the roofline with ``perf``'s efficiencies."""
        from redundancy.coral.planner.calibration import shipped_calibration

        gpu, n = config.gpu, config.count
        memory = n * gpu.memory_gb * 1e9 * perf.memory_utilisation
        fit = shipped_calibration().gpus.get(gpu.name) if perf.model == "calibrated" else None
        if fit is None:
            tp = perf.tp_efficiency ** np.log2(n)
            return cls(
                memory_bytes=memory,
                bandwidth=n * gpu.bandwidth_tbs * 1e12 * perf.eta_bandwidth * tp,
                flops=n * gpu.tflops * 1e12 * perf.eta_compute * tp,
                count=n,
                source="roofline",
            )
        calibration = shipped_calibration()
        link = calibration.links.get(config.interconnect) if n > 1 and perf.communication else None
        return cls(
            memory_bytes=memory,
            bandwidth=n * gpu.bandwidth_tbs * 1e12 * fit.eta_bandwidth,
            flops=n * gpu.tflops * 1e12 * fit.eta_prefill,
            decode_flops=n * gpu.tflops * 1e12 * fit.eta_decode,
            overhead_ms=fit.overhead_ms,
            smooth=calibration.smooth,
            count=n,
            link_bytes_per_s=link.bus_gbs * 1e9 if link else float("inf"),
            link_latency_s=link.latency_us * 1e-6 if link else 0.0,
            source=f"calibrated ({fit.source})",
        )


@dataclass(frozen=True)
class LayerShape:
    """Per-layer quantities of a model under a workload (bytes, FLOPs per token)."""

    weight_bytes: float
    kv_bytes_per_token: float
    flops_per_token: float
    active_fraction: float
    activation_bytes_per_token: float = 0.0  # hidden state (BF16) passed on / all-reduced

    @classmethod
    def of(cls, model: ModelSpec, perf: PerfParams) -> LayerShape:
        """Weights/L, K+V bytes per token, 2*active/L + attention FLOPs at the mean context."""
        context = perf.input_tokens + perf.output_tokens / 2
        return cls(
            weight_bytes=model.weight_bytes / model.layers,
            kv_bytes_per_token=model.kv_bytes_per_token,
            flops_per_token=2 * model.active_params_b * 1e9 / model.layers
            + 4 * context * model.hidden,
            active_fraction=model.active_params_b / model.params_b,
            activation_bytes_per_token=2.0 * model.hidden,
        )


def _join(memory_s: np.ndarray, compute_s: np.ndarray, smooth: float) -> np.ndarray:
    """max(memory, compute) (smooth = 0) or their generalised mean (m^p + c^p)^(1/p)."""
    if smooth <= 0:
        return np.maximum(memory_s, compute_s)
    return (memory_s**smooth + compute_s**smooth) ** (1.0 / smooth)


def allreduce_ms(shape: LayerShape, rates: NodeRates, tokens: np.ndarray) -> np.ndarray:
    """Tensor-parallel cost (ms) of one layer for ``tokens`` tokens: two ring all-reduces of the
    hidden states over the node's interconnect (0 on one GPU)."""
    tokens = np.asarray(tokens, dtype=float)
    if rates.count <= 1:
        return np.zeros_like(tokens)
    n = rates.count
    volume = 2 * (n - 1) / n * tokens * shape.activation_bytes_per_token
    return 1e3 * 2 * (rates.link_latency_s + volume / rates.link_bytes_per_s)


def roofline_decode_ms(shape: LayerShape, rates: NodeRates, perf: PerfParams, batch: np.ndarray):
    """Decode step time (ms) of ONE layer for each batch size: weights (MoE: the experts some
    token touches) and KV cache over bandwidth joined with FLOPs over decode peak, plus the
    per-layer overhead and the TP all-reduces."""
    batch = np.asarray(batch, dtype=float)
    # MoE: the chance that an expert is touched by at least one of B tokens.
    touched = np.maximum(shape.active_fraction, 1 - (1 - shape.active_fraction) ** batch)
    context = perf.input_tokens + perf.output_tokens / 2
    bytes_moved = shape.weight_bytes * touched + batch * context * shape.kv_bytes_per_token
    compute = batch * shape.flops_per_token / (rates.decode_flops or rates.flops)
    core = _join(bytes_moved / rates.bandwidth, compute, rates.smooth)
    return rates.overhead_ms + 1e3 * core + allreduce_ms(shape, rates, batch)


def roofline_prefill_ms(shape: LayerShape, rates: NodeRates, perf: PerfParams) -> float:
    """Prefill time (ms) of ONE layer for one prompt of ``input_tokens`` tokens."""
    tokens = perf.input_tokens
    compute = tokens * shape.flops_per_token / rates.flops
    core = _join(
        np.float64(shape.weight_bytes / rates.bandwidth), np.float64(compute), rates.smooth
    )
    return float(rates.overhead_ms + 1e3 * core + allreduce_ms(shape, rates, np.float64(tokens)))


def hop_ms(shape: LayerShape, config: NodeConfig, tokens: np.ndarray) -> np.ndarray:
    """Time (ms) to send ``tokens`` tokens' hidden states to the next pipeline stage over the
    node's network (``network_gbps``)."""
    return (
        1e3
        * np.asarray(tokens, dtype=float)
        * shape.activation_bytes_per_token
        / (config.network_gbps * 1e9 / 8)
    )


@dataclass
class ProfileTable:
    """Measured per-layer times: (model, node config) -> batch sizes, decode ms, prefill ms."""

    entries: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, float]] = field(
        default_factory=dict
    )

    def lookup(self, model: str, node: str) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The measured curve for (model, node), or None where the roofline applies."""
        return self.entries.get((model, node))

    def digest(self) -> str:
        """Short hash of the table's contents (part of the template cache key)."""
        blob = repr(
            sorted((k, v[0].tolist(), v[1].tolist(), v[2]) for k, v in self.entries.items())
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


PROFILE_COLUMNS = ("model", "node", "batch_size", "decode_ms_per_layer", "prefill_ms_per_layer")


def load_profile(path: Path) -> ProfileTable:
    """Read a CSV (columns PROFILE_COLUMNS) of measured per-layer times, Helix-style."""
    rows: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(PROFILE_COLUMNS) - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(f"{path}: missing column(s) {sorted(missing)}")
            for line in reader:
                key = (line["model"], line["node"])
                batch = int(line["batch_size"])
                decode = float(line["decode_ms_per_layer"])
                prefill = float(line["prefill_ms_per_layer"])
                if batch < 1 or decode <= 0 or prefill <= 0:
                    raise ConfigError(f"{path}: batch_size >= 1 and positive times required")
                rows.setdefault(key, []).append((batch, decode, prefill))
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"cannot read profile {path}: {exc}") from None
    table = ProfileTable()
    for key, items in rows.items():
        items.sort()
        batches = np.array([b for b, _, _ in items], dtype=float)
        decode = np.array([d for _, d, _ in items])
        table.entries[key] = (batches, decode, float(np.mean([p for _, _, p in items])))
    return table


def _feasible_rates(
    model: ModelSpec,
    configs: list[NodeConfig],
    perf: PerfParams,
    max_stages: int,
    profile: ProfileTable | None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(S, config index, rate[j-1, B-1]) in req/s, zero where batch B breaks memory or the SLO."""
    layers = model.layers
    shape = LayerShape.of(model, perf)
    batch = np.arange(1, perf.max_batch + 1, dtype=float)
    j = np.arange(1, layers + 1, dtype=float)[:, None]
    context_max = perf.input_tokens + perf.output_tokens
    for ci, config in enumerate(configs):
        rates = NodeRates.of(config, perf)
        measured = profile.lookup(model.name, config.name) if profile else None
        if measured is None:
            decode = roofline_decode_ms(shape, rates, perf, batch)
            prefill = roofline_prefill_ms(shape, rates, perf)
        else:
            decode = np.interp(batch, measured[0], measured[1])
            prefill = measured[2]
        step = j * decode[None, :] + perf.step_overhead_ms  # (L, B) ms per decode step
        kv = j * batch[None, :] * context_max * shape.kv_bytes_per_token
        per_request_s = 1e-3 * (j * prefill + perf.output_tokens * step / batch[None, :])
        rate = 1.0 / per_request_s
        # Between stages each request's hidden states cross the network: prompt and output tokens.
        nic_cap = config.network_gbps * 1e9 / 8 / (context_max * shape.activation_bytes_per_token)
        hop_step = hop_ms(shape, config, batch)[None, :]
        hop_prefill = float(hop_ms(shape, config, np.float64(perf.input_tokens)))
        if not perf.communication:
            nic_cap, hop_step, hop_prefill = np.inf, np.zeros_like(hop_step), 0.0
        for stages in range(1, max_stages + 1):
            piped = stages > 1
            # A full S-stage pipeline keeps S microbatches of B requests in flight on every node.
            ok = (
                (j * shape.weight_bytes + stages * kv <= rates.memory_bytes)
                & (step + piped * hop_step <= model.slo.decode_ms / stages)
                & (j * prefill + piped * hop_prefill <= model.slo.prefill_ms / stages)
            )
            capped = np.minimum(rate, nic_cap) if piped else rate
            yield stages, ci, np.where(ok, capped, 0.0)


def throughput_table(
    model: ModelSpec,
    configs: list[NodeConfig],
    perf: PerfParams,
    max_stages: int,
    profile: ProfileTable | None = None,
) -> np.ndarray:
    """T_hat[S, c, j] in req/s for S = 1..max_stages, every config, j = 0..L layers (j=0 unused).

    Non-increasing in j by construction (fewer layers never hurt), zero where nothing fits.
    """
    table = np.zeros((max_stages + 1, len(configs), model.layers + 1))
    for stages, ci, rate in _feasible_rates(model, configs, perf, max_stages, profile):
        table[stages, ci, 1:] = np.minimum.accumulate(rate.max(axis=1))
    return table


def batch_table(
    model: ModelSpec,
    configs: list[NodeConfig],
    perf: PerfParams,
    max_stages: int,
    profile: ProfileTable | None = None,
) -> np.ndarray:
    """B[S, c, j]: the smallest feasible microbatch reaching T_hat[S, c, j] (0 where T_hat is 0)."""
    table = throughput_table(model, configs, perf, max_stages, profile)
    out = np.zeros(table.shape, dtype=np.int64)
    for stages, ci, rate in _feasible_rates(model, configs, perf, max_stages, profile):
        target = table[stages, ci, 1:, None]
        reach = (rate > 0) & (rate >= target * (1 - 1e-12)) & (target > 0)
        out[stages, ci, 1:] = np.where(reach.any(axis=1), reach.argmax(axis=1) + 1, 0)
    return out
