"""Cauchy-style baseline (SoCC'25, adapted): prefill/decode disaggregation over "GPU combos".

A combo is ``a`` prefill nodes of one config plus ``b`` decode nodes of another (or the same), each
node holding the whole model (tensor parallel inside the node only, no pipeline): prefills run on
the prefill nodes, the prompt's KV cache crosses a link of ``link_gbps``, and decoding runs on the
decode nodes. A combo serves ``min(a * P(p), b * D(d))`` req/s, where

* P(p) = PREFILL_LOAD / prefill latency of a mean prompt on one node, if that latency plus the
  KV transfer meets the prefill SLO and the weights fit;
* D(d) = max over batch B of B / (output tokens x step(B)), with step(B) within the decode SLO and
  B requests' KV cache (input + output tokens) fitting beside the weights.

Combos of at most ``max_nodes`` nodes are then allocated by the same joint ILP as Coral's (prices,
availability, churn), so the only difference from Coral is the deployment form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from redundancy.coral.planner.allocation import allocate
from redundancy.coral.planner.catalog import ModelSpec, Scenario
from redundancy.coral.planner.perf import ProfileTable
from redundancy.coral.planner.plan import to_plan
from redundancy.coral.planner.templates import Stage, Template
from redundancy.coral.schema import Plan
from redundancy.coral.sim.engine import LayerTimes
from redundancy.errors import ParameterError

DEFAULT_LINK_GBPS = 25.0  # inter-node network of the instances the paper uses (g5/g6/g6e)
PREFILL_LOAD = 0.8  # prefill servers are planned at most this busy (queues under bursts)


@dataclass(frozen=True)
class Combo:
    """Prefill nodes and decode nodes of one disaggregated replica, with its req/s."""

    prefill: dict[str, int]
    decode: dict[str, int]
    throughput: float


def node_rates(
    model: ModelSpec, scenario: Scenario, link_gbps: float, profile: ProfileTable | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(P, D): prefill and decode req/s of one node of each config holding the whole model."""
    perf, layers = scenario.perf, model.layers
    batch = np.arange(1, perf.max_batch + 1, dtype=float)
    prefill, decode = np.zeros(len(scenario.configs)), np.zeros(len(scenario.configs))
    for ci, config in enumerate(scenario.configs):
        times = LayerTimes.of(model, config, perf, profile)
        free = times.rates.memory_bytes - layers * times.shape.weight_bytes
        if free <= 0:
            continue
        kv_per_request = layers * times.shape.kv_bytes_per_token
        latency = layers * max(perf.input_tokens * times.prefill_per_token, times.prefill_floor)
        transfer = perf.input_tokens * kv_per_request * 8 / (link_gbps * 1e9)
        if latency + transfer <= model.slo.prefill_ms / 1e3:
            prefill[ci] = PREFILL_LOAD / latency
        step_ms = layers * times.decode_ms(batch) + perf.step_overhead_ms
        fits = batch * (perf.input_tokens + perf.output_tokens) * kv_per_request <= free
        ok = fits & (step_ms <= model.slo.decode_ms)
        if ok.any():
            decode[ci] = float(
                np.max(np.where(ok, 1e3 * batch / (perf.output_tokens * step_ms), 0))
            )
    return prefill, decode


def combos(
    model: ModelSpec, scenario: Scenario, link_gbps: float, profile: ProfileTable | None = None
) -> list[Combo]:
    """Every combo of at most ``max_nodes`` nodes; the best split per node multiset."""
    prefill, decode = node_rates(model, scenario, link_gbps, profile)
    names = [c.name for c in scenario.configs]
    best: dict[tuple, Combo] = {}
    for p in np.flatnonzero(prefill):
        for d in np.flatnonzero(decode):
            for a in range(1, scenario.max_nodes):
                for b in range(1, scenario.max_nodes - a + 1):
                    rate = float(min(a * prefill[p], b * decode[d]))
                    nodes = {names[p]: a}
                    nodes[names[d]] = nodes.get(names[d], 0) + b
                    key = tuple(sorted(nodes.items()))
                    if key not in best or rate > best[key].throughput:
                        best[key] = Combo({names[p]: a}, {names[d]: b}, rate)
    return list(best.values())


def cauchy_planner(
    scenario: Scenario,
    previous: dict[tuple[str, str], int] | None = None,
    link_gbps: float = DEFAULT_LINK_GBPS,
    profile: ProfileTable | None = None,
) -> Plan:
    """Cheapest set of prefill/decode combos meeting every demand (joint ILP over combos)."""
    start = time.perf_counter()
    templates, layout = combo_templates(scenario, link_gbps, profile)
    allocation = allocate(scenario, templates, previous=previous)
    plan = to_plan(scenario, allocation, len(templates), 0.0, time.perf_counter() - start)
    instances = [
        inst.model_copy(
            update={"prefill_nodes": layout[inst.template].prefill, "kv_link_gbps": link_gbps}
        )
        for inst in plan.instances
    ]
    return plan.model_copy(update={"instances": instances})


def combo_templates(
    scenario: Scenario, link_gbps: float = DEFAULT_LINK_GBPS, profile: ProfileTable | None = None
) -> tuple[list[Template], dict[str, Combo]]:
    """Every model's combos as allocation templates (all nodes, decode layout), keyed back."""
    templates, layout = [], {}
    for model in scenario.models:
        found = combos(model, scenario, link_gbps, profile)
        if not found and scenario.demand[model.name] > 0:
            raise ParameterError(
                f"no prefill/decode combo of {[c.name for c in scenario.configs]} meets the SLO "
                f"of {model.name} (each node must hold the whole model)"
            )
        for combo in found:
            nodes = dict(combo.prefill)
            for name, n in combo.decode.items():
                nodes[name] = nodes.get(name, 0) + n
            stage = Stage(nodes=combo.decode, layers=model.layers)
            template = Template(
                model=model.name, nodes=nodes, stages=[stage], throughput=combo.throughput
            )
            templates.append(template)
            layout[template.key] = combo
    return templates, layout
