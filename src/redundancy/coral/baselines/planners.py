"""Baseline planners, each with the simulator's interface ``(scenario, running counts) -> Plan``.

* Homo (SkyServe/SageServe assumption): every replica is one node of one type. Per model, in
  order, replicas are bought greedily from the (region, config) with the best requests/s per dollar
  that still has nodes, until the demand is met or nothing is left.
* Mélange-style: per model, an ILP over single-node replicas of any GPU type (models in turn).
* Cauchy-style prefill/decode GPU combos (``cauchy.py``) and Helix-style max-flow placement of
  one model on a fixed pool (``helix.py``).
* Ablations of Coral: homogeneous templates only (one joint ILP), and per-model allocation (Coral's
  templates, but each model solved on what the earlier ones left: no cross-model trade-offs).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from redundancy.coral.baselines.cauchy import cauchy_planner
from redundancy.coral.baselines.helix import helix_planner
from redundancy.coral.planner.allocation import Allocation, Option, allocate
from redundancy.coral.planner.catalog import ModelSpec, Scenario
from redundancy.coral.planner.perf import ProfileTable, throughput_table
from redundancy.coral.planner.plan import check_servable, to_plan
from redundancy.coral.planner.templates import Library, Stage, Template, build_library
from redundancy.coral.schema import Plan


@dataclass
class HomoResult:
    """Replicas per (model, region, config), cost ($/h) and served demand per model."""

    replicas: dict[tuple[str, str, str], int]
    cost: float
    served: dict[str, float]
    model_cost: dict[str, float]


def homo_plan(
    scenario: Scenario, profile: ProfileTable | None = None, only: str | None = None
) -> HomoResult:
    """Greedy best goodput-per-dollar single-node replicas, sharing availability across models.

    Parameters
    ----------
    scenario : Scenario
        Demand, node configs, prices, availability.
    profile : ProfileTable, optional
        Measured per-layer times replacing the performance model.
    only : str, optional
        Restrict every model to this one node config (the "one GPU type" definition).

    Returns
    -------
    HomoResult
        Replicas per (model, region, config), cost $/h, served req/s and cost per model.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> result = homo_plan(load_scenario("core"))
    >>> round(result.cost, 2), result.served["Qwen3-32B"]
    (30.29, 10.0)
    """
    left = {(r.name, c): n for r in scenario.regions for c, n in r.availability.items()}
    replicas: dict[tuple[str, str, str], int] = {}
    served: dict[str, float] = {}
    model_cost: dict[str, float] = {}
    cost = 0.0
    for model in scenario.models:
        table = _single_node_rates(model, scenario, profile)
        choices = []
        for region in scenario.regions:
            for config, rate in zip(scenario.configs, table, strict=True):
                if only is not None and config.name != only:
                    continue
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


# Planners with the simulator's interface: (scenario, running counts) -> Plan.


def _single_node_template(model: ModelSpec, config: str, rate: float) -> Template:
    return Template(
        model=model.name,
        nodes={config: 1},
        stages=[Stage(nodes={config: 1}, layers=model.layers)],
        throughput=rate,
    )


def _single_node_rates(model: ModelSpec, scenario: Scenario, profile: ProfileTable | None):
    """req/s of one node of each config holding the whole model (0 where it cannot)."""
    return throughput_table(model, scenario.configs, scenario.perf, 1, profile)[1, :, model.layers]


def homo_one_type_plan(scenario: Scenario, profile: ProfileTable | None = None) -> HomoResult:
    """Homo, second definition: ONE node config for every model, the cheapest that serves the
    most demand (then the cheapest)."""
    best = None
    for config in scenario.configs:
        result = homo_plan(scenario, profile, only=config.name)
        key = (-round(sum(result.served.values()), 9), result.cost)
        if best is None or key < best[0]:
            best = (key, result)
    return best[1]


def homo_planner(
    scenario: Scenario,
    previous: dict[tuple[str, str], int] | None = None,
    profile: ProfileTable | None = None,
    one_type: bool = False,
) -> Plan:
    """The Homo baseline as a Plan (greedy, so ``previous`` is ignored); ``one_type``: one node
    config for all models instead of the best per model."""
    start = time.perf_counter()
    result = homo_one_type_plan(scenario, profile) if one_type else homo_plan(scenario, profile)
    configs = {c.name: c for c in scenario.configs}
    regions = {r.name: r for r in scenario.regions}
    counts, options = {}, []
    for model in scenario.models:
        rates = _single_node_rates(model, scenario, profile)
        for (name, region, config), n in result.replicas.items():
            if name != model.name:
                continue
            rate = float(rates[[c.name for c in scenario.configs].index(config)])
            template = _single_node_template(model, config, rate)
            price = scenario.price(regions[region], configs[config])
            options.append(Option(region, template, price))
            counts[(region, template.key)] = n
    capacity = dict.fromkeys(scenario.demand, 0.0)
    for option in options:
        capacity[option.template.model] += counts[_key(option)] * option.template.throughput
    allocation = Allocation(
        counts, options, result.served, capacity, result.cost, 0.0,
        "min_cost" if all(result.served[m] >= d - 1e-9 for m, d in scenario.demand.items())
        else "max_goodput",
    )  # fmt: skip
    return to_plan(scenario, allocation, len(options), 0.0, time.perf_counter() - start)


def _key(option: Option) -> tuple[str, str]:
    return (option.region, option.template.key)


def _library(scenario: Scenario, profile: ProfileTable | None) -> Library:
    library = build_library(scenario, profile=profile)
    check_servable(scenario, library)
    return library


def _joint(scenario, templates, previous) -> Plan:
    start = time.perf_counter()
    allocation = allocate(scenario, templates, previous=previous)
    return to_plan(scenario, allocation, len(templates), 0.0, time.perf_counter() - start)


def _sequential(scenario: Scenario, templates: list[Template], previous) -> Plan:
    """Allocate model by model (in scenario order), each taking what the earlier ones left."""
    start = time.perf_counter()
    left = {r.name: dict(r.availability) for r in scenario.regions}
    merged = Allocation({}, [], {}, {}, 0.0, 0.0, "min_cost")
    for model in scenario.models:
        regions = [r.model_copy(update={"availability": left[r.name]}) for r in scenario.regions]
        sub = scenario.model_copy(
            update={"models": [model], "demand": {model.name: scenario.demand[model.name]},
                    "regions": regions}
        )  # fmt: skip
        mine = [t for t in templates if t.model == model.name]
        part = allocate(sub, mine, previous=previous)
        for option in part.options:
            n = part.counts.get(_key(option), 0)
            if n:
                merged.options.append(option)
                merged.counts[_key(option)] = n
                for config, used in option.template.nodes.items():
                    left[option.region][config] -= n * used
        merged.served.update(part.served)
        merged.capacity.update(part.capacity)
        merged.cost += part.cost
        merged.churn += part.churn
        if part.mode != "min_cost":
            merged.mode = part.mode
            merged.notes.append(f"{model.name}: demand not met within what earlier models left")
    return to_plan(scenario, merged, len(templates), 0.0, time.perf_counter() - start)


# Every planner takes ``profile`` (measured per-layer times replacing the roofline) too.
Previous = dict[tuple[str, str], int] | None


def coral_planner(
    scenario: Scenario, previous: Previous = None, profile: ProfileTable | None = None
) -> Plan:
    """Coral: every template, one joint allocation ILP."""
    return _joint(scenario, _library(scenario, profile).all(), previous)


def homogeneous_planner(
    scenario: Scenario, previous: Previous = None, profile: ProfileTable | None = None
) -> Plan:
    """Ablation: Coral restricted to templates whose nodes are all of one config."""
    templates = [t for t in _library(scenario, profile).all() if len(t.nodes) == 1]
    return _joint(scenario, templates, previous)


def per_model_planner(
    scenario: Scenario, previous: Previous = None, profile: ProfileTable | None = None
) -> Plan:
    """Ablation: Coral's templates, but each model allocated on its own (no joint ILP)."""
    return _sequential(scenario, _library(scenario, profile).all(), previous)


def melange_planner(
    scenario: Scenario, previous: Previous = None, profile: ProfileTable | None = None
) -> Plan:
    """Mélange-style: per model, an ILP over single-node replicas of any GPU type."""
    templates = []
    for model in scenario.models:
        rates = _single_node_rates(model, scenario, profile)
        templates += [
            _single_node_template(model, c.name, float(r))
            for c, r in zip(scenario.configs, rates, strict=True)
            if r > 0
        ]
    return _sequential(scenario, templates, previous)


def homo_one_type_planner(
    scenario: Scenario, previous: Previous = None, profile: ProfileTable | None = None
) -> Plan:
    """Homo with one node config for every model (the paper's "one GPU type" reading)."""
    return homo_planner(scenario, previous, profile, one_type=True)


PLANNERS = {
    "coral": coral_planner,
    "homo": homo_planner,
    "homo-one-type": homo_one_type_planner,
    "melange": melange_planner,
    "cauchy": cauchy_planner,
    "coral-homogeneous": homogeneous_planner,
    "coral-per-model": per_model_planner,
    "helix": helix_planner,
}
SINGLE_MODEL = ("helix",)  # planners that serve one model only
