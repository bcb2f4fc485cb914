"""The Homo baseline (SkyServe/SageServe assumption): every replica is one node of one type.

Per model, in order, replicas are bought greedily from the (region, config) with the best
requests/s per dollar that still has nodes, until the demand is met or nothing is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redundancy.coral.catalog import Scenario
from redundancy.coral.perf import throughput_table


@dataclass
class HomoResult:
    """Replicas per (model, region, config), cost ($/h) and served demand per model."""

    replicas: dict[tuple[str, str, str], int]
    cost: float
    served: dict[str, float]
    model_cost: dict[str, float]


def homo_plan(scenario: Scenario) -> HomoResult:
    """Greedy best goodput-per-dollar single-node replicas, sharing availability across models."""
    left = {(r.name, c): n for r in scenario.regions for c, n in r.availability.items()}
    replicas: dict[tuple[str, str, str], int] = {}
    served: dict[str, float] = {}
    model_cost: dict[str, float] = {}
    cost = 0.0
    for model in scenario.models:
        table = throughput_table(model, scenario.configs, scenario.perf, 1)[1, :, model.layers]
        choices = []
        for region in scenario.regions:
            for config, rate in zip(scenario.configs, table, strict=True):
                if rate > 0 and scenario.offered(region, config):
                    price = scenario.price(region, config)
                    choices.append((rate / price, rate, price, region.name, config.name))
        need, got = scenario.demand[model.name], 0.0
        for _, rate, price, region, config in sorted(choices, reverse=True):
            if got >= need:
                break
            take = min(math.ceil((need - got) / rate - 1e-9), left.get((region, config), 0))
            if take > 0:
                left[(region, config)] -= take
                replicas[(model.name, region, config)] = take
                got += take * rate
                cost += take * price
                model_cost[model.name] = model_cost.get(model.name, 0.0) + take * price
        served[model.name] = min(got, need)
    return HomoResult(replicas, cost, served, model_cost)
