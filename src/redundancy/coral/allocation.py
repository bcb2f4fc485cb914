"""Stage 2: the allocation ILP — how many instances of each template in each region.

  minimise  sum nu_r(t) p_r(t) + I_r(t)
  s.t.      sum_t U_c(t) nu_r(t) <= A_r(c)           (availability, every region r and config c)
            sum_{r, t of m} T(t) nu_r(t) >= D_m       (demand, every model m)
            I_r(t) >= (nu_r(t) - prev_r(t)) p_r(t) K  (churn against the running deployment)

When no allocation meets every demand, the max-goodput mode maximises the served demand
sum_m min(D_m, capacity_m) instead, then the cheapest way to serve that much, and reports each
model's unmet demand rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix

from redundancy.coral.catalog import Scenario
from redundancy.coral.solver import MilpProblem, ScipySolver, Solver
from redundancy.coral.templates import Template


@dataclass(frozen=True)
class Option:
    """One template in one region: a candidate ILP variable."""

    region: str
    template: Template
    price: float  # $/h of one instance


@dataclass
class Allocation:
    """Chosen instance counts, served demand per model and the objective's parts."""

    counts: dict[tuple[str, str], int]  # (region, template key) -> instances
    options: list[Option]
    served: dict[str, float]
    capacity: dict[str, float]
    cost: float
    churn: float
    mode: str  # "min_cost" or "max_goodput"
    notes: list[str] = field(default_factory=list)


def options_for(scenario: Scenario, templates: list[Template]) -> list[Option]:
    """Every (region, template) pair whose nodes the region sells and has enough of."""
    configs = {c.name: c for c in scenario.configs}
    out = []
    for region in scenario.regions:
        for template in templates:
            if all(
                scenario.offered(region, configs[name]) and region.availability.get(name, 0) >= n
                for name, n in template.nodes.items()
            ):
                price = sum(
                    n * scenario.price(region, configs[name]) for name, n in template.nodes.items()
                )
                out.append(Option(region.name, template, price))
    return out


def _key(option: Option) -> tuple[str, str]:
    return (option.region, option.template.key)


def _problem(
    scenario: Scenario,
    options: list[Option],
    previous: dict[tuple[str, str], int],
    goodput_floor: float | None,
) -> MilpProblem:
    """Variables: nu (one per option), I (churn, only where something runs), s (served).

    For an option with nothing running, I = nu p K exactly, so it is folded into nu's cost.
    """
    models = [m.name for m in scenario.models]
    n_opt, n_models = len(options), len(models)
    factor = scenario.churn_factor
    running = [i for i, o in enumerate(options) if factor > 0 and previous.get(_key(o), 0) > 0]
    served0 = n_opt + len(running)
    n_vars = served0 + n_models
    rows: list[tuple[dict[int, float], float, float]] = []
    for region in scenario.regions:
        for config in scenario.configs:
            coefs = {
                i: float(o.template.nodes[config.name])
                for i, o in enumerate(options)
                if o.region == region.name and config.name in o.template.nodes
            }
            if coefs:
                rows.append((coefs, -np.inf, float(region.availability.get(config.name, 0))))
    for mi, model in enumerate(models):
        coefs = {
            i: o.template.throughput for i, o in enumerate(options) if o.template.model == model
        }
        coefs[served0 + mi] = -1.0
        rows.append((coefs, 0.0, np.inf))  # capacity_m >= s_m
    for k, i in enumerate(running):
        step = options[i].price * factor
        rows.append(({n_opt + k: 1.0, i: -step}, -previous[_key(options[i])] * step, np.inf))
    cost = np.zeros(n_vars)
    folded = set(range(n_opt)) - set(running)
    cost[:n_opt] = [o.price * (1 + (factor if i in folded else 0)) for i, o in enumerate(options)]
    cost[n_opt:served0] = 1.0
    c = cost
    if goodput_floor is not None:
        if goodput_floor > 0:
            rows.append(({served0 + mi: 1.0 for mi in range(n_models)}, goodput_floor, np.inf))
        else:
            c = np.zeros(n_vars)
            c[served0:] = -1.0
    demand = np.array([scenario.demand[m] for m in models])
    var_lower = np.zeros(n_vars)
    var_upper = np.full(n_vars, np.inf)
    if goodput_floor is None:
        var_lower[served0:] = demand
    var_upper[served0:] = demand
    integer = np.zeros(n_vars)
    integer[:n_opt] = 1
    data, indices, indptr = [], [], [0]
    for coefs, _, _ in rows:
        indices.extend(coefs)
        data.extend(coefs.values())
        indptr.append(len(indices))
    matrix = csr_matrix((data, indices, indptr), shape=(len(rows), n_vars))
    lower = np.array([lo for _, lo, _ in rows])
    upper = np.array([hi for _, _, hi in rows])
    return MilpProblem(c, matrix, lower, upper, var_lower, var_upper, integer)


def allocate(
    scenario: Scenario,
    templates: list[Template],
    previous: dict[tuple[str, str], int] | None = None,
    solver: Solver | None = None,
) -> Allocation:
    """Cheapest allocation meeting every demand, or the max-goodput one when none does."""
    solver = solver or ScipySolver()
    previous = previous or {}
    options = options_for(scenario, templates)
    result = solver.solve(_problem(scenario, options, previous, None))
    mode, notes = "min_cost", []
    if result.x is None:
        mode = "max_goodput"
        notes.append("demand cannot be met within availability: serving the most goodput")
        best = solver.solve(_problem(scenario, options, previous, 0.0))
        floor = -best.objective * (1 - 1e-9) if best.x is not None else 0.0
        problem = _problem(scenario, options, previous, floor)
        result = solver.solve(problem)
        if result.x is None:  # numerical corner: keep the goodput-optimal solution
            result = best
    if result.x is None:
        raise RuntimeError(f"allocation solver failed: {result.message}")
    if not result.optimal:
        notes.append(f"solver stopped early: {result.message}")
    x = result.x
    counts = {}
    for i, o in enumerate(options):
        n = round(x[i])
        if n:
            counts[(o.region, o.template.key)] = n
    capacity = {m.name: 0.0 for m in scenario.models}
    for i, o in enumerate(options):
        capacity[o.template.model] += round(x[i]) * o.template.throughput
    served = {m: min(capacity[m], scenario.demand[m]) for m in capacity}
    cost = sum(round(x[i]) * o.price for i, o in enumerate(options))
    churn = 0.0
    for i, o in enumerate(options):
        prev = previous.get(_key(o), 0)
        churn += max(0, round(x[i]) - prev) * o.price * scenario.churn_factor
    return Allocation(counts, options, served, capacity, cost, churn, mode, notes)
