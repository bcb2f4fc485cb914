"""Where Coral's savings come from: per-model unit costs, planned vs simulated outcomes.

The unit cost of an option (a template in a region) is its $/h over its req/s: what one req/s of
that model costs when bought with it. Any plan meeting a model's demand D with templates of a
class costs at least D x the class's best unit cost (an LP relaxation: integrality ignored, and
availability apart from one instance fitting). So for every planner P restricted to a class,

    P's planned $/h / Coral's planned $/h  <=  P's planned $/h / sum_m D_m u_m(Coral),

whatever the allocation ILP does: with our catalog and roofline, the per-model unit costs bound
the ratio. Classes: ``single`` (one node: Homo's and Mélange's replicas), ``homogeneous`` (nodes
of one config: the coral-homogeneous ablation), ``cauchy`` (prefill/decode combos), ``coral``
(every template).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from redundancy.coral.baselines.cauchy import combo_templates
from redundancy.coral.planner.allocation import options_for
from redundancy.coral.planner.catalog import Scenario
from redundancy.coral.planner.templates import Template
from redundancy.coral.sim.simulator import SimResult

CLASSES = ("single", "homogeneous", "cauchy", "coral")


@dataclass(frozen=True)
class UnitCost:
    """The cheapest $/h per req/s of one model within one class of templates, and where."""

    model: str
    kind: str
    dollars_per_rps: float  # inf where the class has no option for the model
    option: str  # "region/template key"


def unit_costs(scenario: Scenario, templates: list[Template]) -> dict[tuple[str, str], UnitCost]:
    """(model, class) -> the best unit cost over ``templates`` (Coral's library) in every region.

    The ``cauchy`` class is built here from Cauchy's combos.
    """
    combos, _ = combo_templates(scenario)
    pools = {
        "single": [t for t in templates if sum(t.nodes.values()) == 1],
        "homogeneous": [t for t in templates if len(t.nodes) == 1],
        "cauchy": combos,
        "coral": templates,
    }
    out = {}
    for kind, pool in pools.items():
        best: dict[str, tuple[float, str]] = {}
        for option in options_for(scenario, pool):
            model = option.template.model
            value = option.price / option.template.throughput
            if value < best.get(model, (np.inf, ""))[0]:
                best[model] = (value, f"{option.region}/{option.template.key}")
        for model in scenario.models:
            value, where = best.get(model.name, (np.inf, "-"))
            out[(model.name, kind)] = UnitCost(model.name, kind, value, where)
    return out


def cost_floor(scenario: Scenario, units: dict[tuple[str, str], UnitCost], kind: str) -> float:
    """sum_m D_m u_m(kind): no plan with that class of templates meets demand for less.

    Parameters
    ----------
    scenario : Scenario
        Demand per model.
    units : dict
        ``unit_costs(scenario, templates)``.
    kind : {"single", "homogeneous", "cauchy", "coral"}
        The class of templates.

    Returns
    -------
    float
        The floor in $/h.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> from redundancy.coral.planner.templates import build_library
    >>> scenario = load_scenario("core").model_copy(update={"max_nodes": 3})
    >>> units = unit_costs(scenario, build_library(scenario).all())
    >>> [round(cost_floor(scenario, units, kind), 2) for kind in ("coral", "single")]
    [20.36, 22.11]
    """
    return float(sum(d * units[(m, kind)].dollars_per_rps for m, d in scenario.demand.items()))


@dataclass(frozen=True)
class ModelRun:
    """One model under one planner: the first plan's capacity and cost, and the simulation."""

    model: str
    demand_rps: float
    planned_rps: float  # capacity of the instances launched at t = 0
    planned_cost: float  # $/h of those instances
    planned_tps: float  # min(capacity, demand) x the planner's output tokens per request
    goodput_tps: float  # simulated SLO-meeting output tokens/s
    attainment: float
    templates: dict[str, int]  # "region/template key" -> instances at t = 0


def model_runs(result: SimResult) -> list[ModelRun]:
    """Per model: what the first plan promised next to what the simulation measured."""
    sim = result.per_model()
    tokens = result.scenario.perf.output_tokens
    out = []
    for model, demand in result.scenario.demand.items():
        first = [r.instance for r in result.fleet if r.launch == 0 and r.instance.model == model]
        capacity = sum(i.throughput_rps for i in first)
        counts: dict[str, int] = {}
        for i in first:
            name = f"{i.region}/{i.template}"
            counts[name] = counts.get(name, 0) + 1
        row = sim[model]
        out.append(
            ModelRun(
                model, demand, capacity, sum(i.price_per_hour for i in first),
                min(capacity, demand) * tokens, row["goodput_tps"], row["attainment"], counts,
            )
        )  # fmt: skip
    return out


def gpu_usage(result: SimResult) -> dict[str, tuple[int, int]]:
    """GPU type -> (GPUs in the first plan, GPUs the scenario offers), over every region."""
    configs = {c.name: c for c in result.scenario.configs}
    offered: dict[str, int] = {}
    for region in result.scenario.regions:
        for name, n in region.availability.items():
            if name in configs:
                gpu = configs[name].gpu.name
                offered[gpu] = offered.get(gpu, 0) + n * configs[name].count
    used = dict.fromkeys(offered, 0)
    for r in result.fleet:
        if r.launch != 0:
            continue
        groups = [s.nodes for s in r.instance.stages] + [r.instance.prefill_nodes]
        for nodes in groups:
            for name, n in nodes.items():
                used[configs[name].gpu.name] += n * configs[name].count
    return {gpu: (used[gpu], offered[gpu]) for gpu in offered}
