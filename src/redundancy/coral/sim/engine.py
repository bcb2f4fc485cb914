"""One serving instance as a continuous-batching engine, timed by the planner's performance model.

An instance is a pipeline of stages; a stage's data-parallel nodes share its work in proportion to
their rates at the pipeline's operating point (``perf.pipeline_rate``; a microbatch of b requests
puts ``b * share_k`` on node k). With R requests decoding, the engine cycles ``m = min(R, S)``
microbatches of ``b = R / m`` through the S stages, so one decode iteration (one token for every
decoding request) takes

    period(R) = max(sum_s step_s(b), m * max_s step_s(b)),   step_s(b) = max_k j_s decode_k(b_k)

(a lone request sees the sum of the stage times; a full pipeline runs at its bottleneck).
Prefill runs as chunked prefill does: its compute hides in the memory-bound decode iterations, so it
is a FIFO lane of its own whose throughput is the bottleneck stage's aggregate compute and whose
latency is the sum of the stages' (slowest node) prefill times; the first token comes out of the
prefill. A disaggregated instance (``Instance.prefill_nodes``) instead has one FIFO server per
prefill node, each running the whole model, and the first token counts once the prompt's KV cache
(input tokens x layers x KV bytes) has crossed the link to the decode nodes.
A request enters the lane once its KV cache (input + output tokens, reserved up front; on the
decode nodes when disaggregated) fits on every node beside its layers, and joins the decode batch
at the next iteration boundary.

Between events the decoding set is constant, so the engine jumps over whole runs of iterations: the
cost is O(requests log requests), not O(tokens).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from redundancy.coral.planner.catalog import ModelSpec, NodeConfig, PerfParams, Scenario
from redundancy.coral.planner.perf import (
    LayerShape,
    NodeRates,
    ProfileTable,
    pipeline_rate,
    roofline_decode_ms,
)
from redundancy.coral.schema import Instance

DONE, NO_INSTANCE, TIMED_OUT = 0, 1, 2


@dataclass
class EngineModel:
    """Precomputed timing of one instance: iteration period per running count, prefill, limits."""

    period_s: np.ndarray  # period_s[R] for R = 0..max_running
    prefill_per_token: np.ndarray  # per stage: slowest node's compute seconds per prompt token
    prefill_floor: np.ndarray  # per stage: slowest node's weight-streaming seconds
    prefill_speedup: np.ndarray  # per stage: aggregate compute / slowest node's compute
    kv_tokens: float  # tokens of KV cache the instance can hold
    max_running: int
    lanes: int = 1  # prefill servers (disaggregated: one per prefill node)
    transfer_per_token: float = 0.0  # seconds to move one prompt token's KV cache to decode

    def prefill_s(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(latency, lane occupancy) in seconds of prompts of ``tokens`` tokens."""
        per_stage = np.maximum(
            np.multiply.outer(tokens, self.prefill_per_token), self.prefill_floor
        )
        return per_stage.sum(axis=-1), (per_stage / self.prefill_speedup).max(axis=-1)


@dataclass(frozen=True)
class LayerTimes:
    """One node's per-layer timing: decode ms(batch), prefill s per prompt token, prefill floor s.

    Measured curves (``perf.ProfileTable``) replace the roofline where the table has the pair;
    a profiled prefill time (one prompt of ``perf.input_tokens``) is taken as linear in tokens.
    """

    spec: ModelSpec
    shape: LayerShape
    rates: NodeRates
    perf: PerfParams
    measured: tuple[np.ndarray, np.ndarray, float] | None

    @classmethod
    def of(cls, spec, config: NodeConfig, perf: PerfParams, profile: ProfileTable | None):
        """Timing of ``spec`` on ``config`` (profiled where ``profile`` has it)."""
        measured = profile.lookup(spec.name, config.name) if profile else None
        return cls(spec, LayerShape.of(spec, perf), NodeRates.of(config, perf), perf, measured)

    def decode_ms(self, batch: np.ndarray) -> np.ndarray:
        """Decode step time (ms) of one layer for each (possibly fractional) batch size."""
        if self.measured is None:
            return roofline_decode_ms(self.shape, self.rates, self.perf, batch)
        return np.interp(batch, self.measured[0], self.measured[1])

    @property
    def prefill_per_token(self) -> float:
        """Seconds per prompt token of one layer (compute)."""
        if self.measured is None:
            return self.shape.flops_per_token / self.rates.flops
        return 1e-3 * self.measured[2] / self.perf.input_tokens

    @property
    def prefill_floor(self) -> float:
        """Seconds of one layer's prefill however short the prompt (weight streaming)."""
        return 0.0 if self.measured else self.shape.weight_bytes / self.rates.bandwidth


def engine_model(
    instance: Instance, scenario: Scenario, profile: ProfileTable | None = None
) -> EngineModel:
    """Build the timing tables of ``instance`` from the scenario's (or profiled) performance."""
    perf = scenario.perf
    spec = next(m for m in scenario.models if m.name == instance.model)
    configs = {c.name: c for c in scenario.configs}
    shape = LayerShape.of(spec, perf)
    stages_n = len(instance.stages)
    layout = [(stage.nodes, stage.layer_end - stage.layer_start) for stage in instance.stages]
    _, node_rates = pipeline_rate(spec, scenario.configs, perf, layout, profile)
    timing = {c.name: LayerTimes.of(spec, c, perf, profile) for c in configs.values()}
    kv_limit, run_limit = np.inf, np.inf
    per_token, floor, speedup = [], [], []
    stage_nodes: list[tuple[int, list[tuple[LayerTimes, float]]]] = []
    for stage, rates in zip(instance.stages, node_rates, strict=True):
        j = stage.layer_end - stage.layer_start
        weights = {name: n * max(rates[name], 1e-12) for name, n in stage.nodes.items()}
        total = sum(weights.values())
        nodes = []
        slow_tok, slow_floor, rate = 0.0, 0.0, 0.0
        for name, n in stage.nodes.items():
            share = weights[name] / total / n  # fraction of the stage's requests per node
            times = timing[name]
            free = times.rates.memory_bytes - j * shape.weight_bytes
            kv_limit = min(kv_limit, max(free, 0.0) / (j * shape.kv_bytes_per_token) / share)
            run_limit = min(run_limit, perf.max_batch / share)
            nodes.append((times, share))
            slow_tok = max(slow_tok, j * times.prefill_per_token)
            slow_floor = max(slow_floor, j * times.prefill_floor)
            rate += n / (j * times.prefill_per_token)
        per_token.append(slow_tok)
        floor.append(slow_floor)
        speedup.append(rate * slow_tok)
        stage_nodes.append((j, nodes))
    max_running = int(max(1, min(run_limit * stages_n, kv_limit / 2)))
    running = np.arange(max_running + 1, dtype=float)
    micro = np.minimum(np.maximum(running, 1), stages_n)
    batch = np.maximum(running, 1) / micro
    steps = np.zeros((stages_n, len(running)))
    for s, (j, nodes) in enumerate(stage_nodes):
        for times, share in nodes:
            ms = j * times.decode_ms(batch * share) + perf.step_overhead_ms
            steps[s] = np.maximum(steps[s], ms)
    period = 1e-3 * np.maximum(steps.sum(axis=0), micro * steps.max(axis=0))
    period[0] = 0.0
    model = EngineModel(
        period, np.array(per_token), np.array(floor), np.array(speedup), float(kv_limit),
        max_running,
    )  # fmt: skip
    if instance.prefill_nodes:  # disaggregated: whole-model prefill servers, then a KV transfer
        slowest = max(
            (timing[name] for name in instance.prefill_nodes),
            key=lambda t: t.prefill_per_token,
        )
        model.prefill_per_token = np.array([spec.layers * slowest.prefill_per_token])
        model.prefill_floor = np.array([spec.layers * slowest.prefill_floor])
        model.prefill_speedup = np.ones(1)
        model.lanes = sum(instance.prefill_nodes.values())
        link = max(instance.kv_link_gbps, 1e-9) * 1e9 / 8
        model.transfer_per_token = spec.layers * shape.kv_bytes_per_token / link
    return model


def run_engine(
    model: EngineModel,
    arrival: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    ready_s: float = 0.0,
    max_queue_s: float = 60.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Serve requests (sorted by arrival) from ``ready_s`` on; (ttft, tpot, finish, status).

    A request that cannot start its prefill within ``max_queue_s`` of arriving is dropped (status
    TIMED_OUT), as is one whose KV reservation exceeds the whole instance; every other one is DONE.
    """
    n = len(arrival)
    ttft, tpot, finish = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    status = np.full(n, DONE, dtype=np.int8)
    need = (input_tokens + output_tokens).astype(float)
    latency, occupancy = model.prefill_s(np.asarray(input_tokens, dtype=float))
    latency = latency + model.transfer_per_token * np.asarray(input_tokens, dtype=float)
    period, cap_running, cap_kv = model.period_s, model.max_running, model.kv_tokens
    joins: list[tuple[float, int]] = []  # (prefill done, request)
    running: list[tuple[int, int]] = []  # (finish iteration, request)
    t, k, nxt, reserved, holders = ready_s, 0, 0, 0.0, 0
    lanes, released = [ready_s] * model.lanes, ready_s  # heap of prefill servers' free times
    while True:
        while nxt < n and holders < cap_running and reserved + need[nxt] <= cap_kv:
            i = nxt
            nxt += 1
            start = max(arrival[i], lanes[0], released)
            if start - arrival[i] > max_queue_s:
                status[i] = TIMED_OUT
                continue
            heapq.heapreplace(lanes, start + occupancy[i])
            ttft[i] = start + latency[i] - arrival[i]
            reserved += need[i]
            holders += 1
            heapq.heappush(joins, (arrival[i] + ttft[i], i))
        if nxt < n and need[nxt] > cap_kv:
            status[nxt] = TIMED_OUT
            nxt += 1
            continue
        if not running and not joins:  # nothing holds KV, so every request has started
            break
        if running:
            step = period[len(running)]
            jump = running[0][0] - k
            if joins:
                jump = min(jump, max(1, int(np.ceil((joins[0][0] - t) / step - 1e-12))))
            t += jump * step
            k += jump
        else:
            t = max(t, joins[0][0])
        while running and running[0][0] <= k:
            _, i = heapq.heappop(running)
            finish[i] = t
            tpot[i] = (t - arrival[i] - ttft[i]) / (output_tokens[i] - 1)
            reserved -= need[i]
            holders -= 1
            released = t
        while joins and joins[0][0] <= t:
            _, i = heapq.heappop(joins)
            if output_tokens[i] > 1:
                heapq.heappush(running, (k + int(output_tokens[i]) - 1, i))
            else:
                finish[i], tpot[i] = arrival[i] + ttft[i], 0.0
                reserved -= need[i]
                holders -= 1
                released = t
    return ttft, tpot, finish, status
