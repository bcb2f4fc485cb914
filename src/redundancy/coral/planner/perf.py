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
    r"""Read a CSV (columns PROFILE_COLUMNS) of measured per-layer times, Helix-style.

    Parameters
    ----------
    path : Path
        CSV with columns ``model,node,batch_size,decode_ms_per_layer,prefill_ms_per_layer``.

    Returns
    -------
    ProfileTable
        Per (model, node config): batch sizes, decode ms, mean prefill ms.

    Raises
    ------
    ConfigError
        Unreadable file, missing columns, non-numeric or non-positive values.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "profile.csv"
    >>> _ = path.write_text("model,node,batch_size,decode_ms_per_layer,prefill_ms_per_layer\n"
    ...                     "Phi4-14B,L4x1,1,0.5,2.0\nPhi4-14B,L4x1,64,0.9,2.2\n")
    >>> load_profile(path).lookup("Phi4-14B", "L4x1")[1].tolist()
    [0.5, 0.9]
    """
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

    Node-local: each node at its own best batch within SLO/S. Non-increasing in j by
    construction (fewer layers never hurt), zero where nothing fits. A pipeline's rate is
    ``pipeline_rate`` (its stages in lockstep), at most the min over its stages of these.

    Parameters
    ----------
    model : ModelSpec
        The model served.
    configs : list of NodeConfig
        Node configs (axis c).
    perf : PerfParams
        Performance model and workload.
    max_stages : int
        Largest stage count S.
    profile : ProfileTable, optional
        Measured per-layer times replacing the model where present.

    Returns
    -------
    numpy.ndarray
        Shape ``(max_stages + 1, len(configs), model.layers + 1)``.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> scenario = load_scenario("core")
    >>> phi = next(m for m in scenario.models if m.name == "Phi4-14B")
    >>> table = throughput_table(phi, scenario.configs, scenario.perf, 2)
    >>> table.shape
    (3, 9, 41)
    >>> bool(table[1, 0, phi.layers] > 0)  # one L40S holds Phi-4 within its SLO
    True
    """
    table = np.zeros((max_stages + 1, len(configs), model.layers + 1))
    for stages, ci, rate in _feasible_rates(model, configs, perf, max_stages, profile):
        table[stages, ci, 1:] = np.minimum.accumulate(rate.max(axis=1))
    return table


def _stage_rates_at_budgets(
    model: ModelSpec,
    configs: list[NodeConfig],
    perf: PerfParams,
    stage_counts: list[int],
    profile: ProfileTable | None,
    rated: set[int] | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(S, config index, rate[g, j-1]) in req/s of a node in a pipeline of S >= 2 stages whose
    stages all step within the budget tau_g (``step_budgets``).

    The node runs the largest microbatch b whose decode step (plus the hop to the next stage)
    fits in tau_g and whose S microbatches of KV cache fit beside its layers; a request then costs
    it ``prefill + output_tokens * tau_g / b`` seconds (the pipeline steps at its slowest stage,
    so every stage is charged the budget, not its own step). The budget grid depends on all of
    ``configs``; only the configs ``rated`` (default all) are yielded.
    """
    shape = LayerShape.of(model, perf)
    batch = np.arange(1, perf.max_batch + 1, dtype=float)
    j = np.arange(1, model.layers + 1, dtype=float)
    context_max = perf.input_tokens + perf.output_tokens
    curves = []
    for config in configs:
        rates = NodeRates.of(config, perf)
        measured = profile.lookup(model.name, config.name) if profile else None
        if measured is None:
            decode = roofline_decode_ms(shape, rates, perf, batch)
            prefill = roofline_prefill_ms(shape, rates, perf)
        else:
            decode = np.interp(batch, measured[0], measured[1])
            prefill = measured[2]
        nic_cap = config.network_gbps * 1e9 / 8 / (context_max * shape.activation_bytes_per_token)
        hop_step = hop_ms(shape, config, batch)
        hop_prefill = float(hop_ms(shape, config, np.float64(perf.input_tokens)))
        if not perf.communication:
            nic_cap, hop_step, hop_prefill = np.inf, np.zeros_like(hop_step), 0.0
        # (L, B) ms per stage iteration, made non-decreasing in B so a search finds the largest b.
        cost = np.maximum.accumulate(
            j[:, None] * decode[None, :] + perf.step_overhead_ms + hop_step[None, :], axis=1
        )
        curves.append((rates, prefill, nic_cap, hop_prefill, cost))
    for ci, (rates, prefill, nic_cap, hop_prefill, cost) in enumerate(curves):
        if rated is not None and ci not in rated:
            continue
        free = rates.memory_bytes - j * shape.weight_bytes
        per_request = j * context_max * shape.kv_bytes_per_token
        for stages in stage_counts:
            # The slowest stage holds >= ceil(L / S) layers: no pipeline steps faster than that.
            fastest = min(curve[-(-model.layers // stages) - 1, 0] for *_, curve in curves)
            budgets = step_budgets(model.slo.decode_ms / stages, fastest, perf)
            fits_time = np.stack([np.searchsorted(row, budgets, side="right") for row in cost])
            fits_memory = np.floor(np.maximum(free, 0.0) / (stages * per_request))
            micro = np.minimum(fits_time, np.minimum(fits_memory, perf.max_batch)[:, None])
            seconds = 1e-3 * (
                j[:, None] * prefill + perf.output_tokens * budgets[None, :] / np.maximum(micro, 1)
            )
            prefill_ok = j * prefill + hop_prefill <= model.slo.prefill_ms / stages
            rate = np.where((micro >= 1) & prefill_ok[:, None], 1.0 / seconds, 0.0)
            rate = np.minimum.accumulate(np.minimum(rate, nic_cap), axis=0)  # (L, G)
            yield stages, ci, rate.T


def step_budgets(budget_ms: float, fastest_ms: float, perf: PerfParams) -> np.ndarray:
    """``perf.pipeline_points`` per-stage step budgets (ms) from ``budget_ms`` down to
    ``fastest_ms``, geometric with ratio ``perf.pipeline_step_ratio``, or wider where that many
    points do not reach ``fastest_ms`` (so the lowest budget is the fastest possible step);
    the unused points repeat the lowest budget.

    Parameters
    ----------
    budget_ms : float
        The per-stage decode budget (decode SLO / S).
    fastest_ms : float
        The fastest step the slowest stage can take.
    perf : PerfParams
        ``pipeline_points`` and ``pipeline_step_ratio``.

    Returns
    -------
    numpy.ndarray
        ``pipeline_points`` budgets in ms, non-increasing.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import PerfParams
    >>> perf = PerfParams(pipeline_points=4, pipeline_step_ratio=1.5)
    >>> step_budgets(9.0, 1.0, perf).round(3).tolist()  # ratio widened to 9 ** (1 / 3)
    [9.0, 4.327, 2.08, 1.0]
    >>> step_budgets(9.0, 8.0, perf).round(3).tolist()
    [9.0, 8.0, 8.0, 8.0]
    """
    points = perf.pipeline_points
    if fastest_ms >= budget_ms or points == 1:
        return np.full(points, budget_ms)
    span = np.log(budget_ms / fastest_ms)
    ratio = max(perf.pipeline_step_ratio, np.exp(span / (points - 1)))
    shrink = np.minimum(np.arange(points) * np.log(ratio), span)
    return budget_ms * np.exp(-shrink)


def operating_tables(
    model: ModelSpec,
    configs: list[NodeConfig],
    perf: PerfParams,
    max_stages: int,
    profile: ProfileTable | None = None,
) -> np.ndarray:
    """R[S, g, c, j]: req/s of one node of config c holding j layers in an S-stage pipeline run
    at its g-th per-stage step budget (S = 1..max_stages, g = 0..``perf.pipeline_points``-1).

    A pipeline's stages run in lockstep: each decode iteration moves one microbatch through every
    stage, so the pipeline steps at its slowest stage and carries the microbatch its tightest
    stage (time or KV memory) can hold. Rating every node at one shared budget makes a stage's
    rate ``sum_k R[S, g, c_k, j]`` and the pipeline's ``min_s`` of those, the rate the simulator's
    engine sustains (up to the budget grid's ``pipeline_step_ratio``); the placement search
    maximises over g. One stage (S = 1) has no lockstep: ``R[1, 0] = T_hat[1]``, other g zero.

    Parameters
    ----------
    model : ModelSpec
        The model served.
    configs : list of NodeConfig
        Node configs (axis c).
    perf : PerfParams
        Performance model and workload; ``pipeline_points`` and ``pipeline_step_ratio`` set the
        budget grid.
    max_stages : int
        Largest stage count S.
    profile : ProfileTable, optional
        Measured per-layer times replacing the model where present.

    Returns
    -------
    numpy.ndarray
        Shape ``(max_stages + 1, pipeline_points, len(configs), model.layers + 1)``; entries with
        S = 0 or j = 0 are unused (zero), zero where nothing fits.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> scenario = load_scenario("core")
    >>> qwen = next(m for m in scenario.models if m.name == "Qwen3-32B")
    >>> rates = operating_tables(qwen, scenario.configs, scenario.perf, 2)
    >>> rates.shape == (3, scenario.perf.pipeline_points, len(scenario.configs), qwen.layers + 1)
    True
    >>> local = throughput_table(qwen, scenario.configs, scenario.perf, 2)
    >>> bool((rates[2].max(axis=0) <= local[2] * (1 + 1e-9)).all())  # never above node-local
    True
    """
    points = perf.pipeline_points
    table = np.zeros((max_stages + 1, points, len(configs), model.layers + 1))
    if perf.pipeline_rating == "node-local":
        table[:, 0] = throughput_table(model, configs, perf, max_stages, profile)
        return table
    if max_stages >= 1:
        table[1, 0] = throughput_table(model, configs, perf, 1, profile)[1]
    stage_counts = list(range(2, max_stages + 1))
    for stages, ci, rate in _stage_rates_at_budgets(model, configs, perf, stage_counts, profile):
        table[stages, :, ci, 1:] = rate
    return table


def pipeline_rate(
    model: ModelSpec,
    configs: list[NodeConfig],
    perf: PerfParams,
    stages: list[tuple[dict[str, int], int]],
    profile: ProfileTable | None = None,
) -> tuple[float, list[dict[str, float]]]:
    """Req/s of one pipeline as the planner rates it, and each stage's per-node rates there.

    The pipeline's rate is ``max_g min_s sum_k n_k R[S, g, c_k, j_s]`` (see ``operating_tables``):
    every stage at the same per-stage step budget. The per-node rates at the best budget are the
    shares in which a stage's data-parallel nodes split its microbatch.

    Parameters
    ----------
    model : ModelSpec
        The model served.
    configs : list of NodeConfig
        Configs the stages may name (by ``NodeConfig.name``).
    perf : PerfParams
        Performance model and workload.
    stages : list of (dict, int)
        Per stage: node config name -> count, and the number of layers it holds.
    profile : ProfileTable, optional
        Measured per-layer times replacing the model where present.

    Returns
    -------
    tuple of (float, list of dict)
        The req/s (0 where no budget fits) and, per stage, config name -> req/s of one node.

    Raises
    ------
    KeyError
        A stage names a config not in ``configs``.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> scenario = load_scenario("core")
    >>> qwen = next(m for m in scenario.models if m.name == "Qwen3-32B")
    >>> alone, _ = pipeline_rate(qwen, scenario.configs, scenario.perf, [({"L40Sx4": 1}, 64)])
    >>> two, shares = pipeline_rate(
    ...     qwen, scenario.configs, scenario.perf, [({"L40Sx4": 1}, 40), ({"L40Sx1": 2}, 24)]
    ... )
    >>> two > alone > 0, sorted(shares[1])
    (True, ['L40Sx1'])
    """
    index = {c.name: i for i, c in enumerate(configs)}
    used = {index[name] for nodes, _ in stages for name in nodes}
    depth = len(stages)
    table = np.zeros((perf.pipeline_points, len(configs), model.layers + 1))  # (G, C, L+1)
    if depth == 1 or perf.pipeline_rating == "node-local":
        local = throughput_table(model, [configs[c] for c in sorted(used)], perf, depth, profile)
        for row, c in enumerate(sorted(used)):
            table[0, c] = local[depth, row]
    else:
        for _, ci, rate in _stage_rates_at_budgets(model, configs, perf, [depth], profile, used):
            table[:, ci, 1:] = rate
    stage_rates = np.stack(
        [
            sum(n * table[:, index[name], layers] for name, n in nodes.items())
            for nodes, layers in stages
        ]
    )  # (S, G)
    rate = stage_rates.min(axis=0)
    best = int(np.argmax(rate))
    per_node = [
        {name: float(table[best, index[name], layers]) for name in nodes}
        for nodes, layers in stages
    ]
    return float(rate[best]), per_node


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
