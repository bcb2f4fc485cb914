"""The monolithic joint MILP: placement and allocation in one model (small instances only).

Used to show the two-stage decomposition (templates, then allocation) loses nothing. A replica
slot (model m, region r, stage count S, copy k) is either off or a pipeline of exactly S stages:

  u in {0,1}                    slot used;  T >= 0 its throughput (req/s)
  x[s,j] in {0,1}               stage s holds j layers;   sum_j x[s,j] = u,  sum_s,j j x = L u
  n[s,c] in Z>=0                nodes of config c in stage s;  sum_c n[s,c] >= u
  w[s,j,c] in [0, N_c]          = x[s,j] n[s,c] (only bounded above: w <= n, w <= N_c x)
  T <= sum_j,c R_j(c, S, g) w[s,j,c]   for every stage s
  sum_s,c n[s,c] <= Nmax u,  weights u <= memory(n) <= rho weights u   (the template window)

where R is ``perf.operating_tables`` at the slot's per-stage step budget g (slots exist per
budget of the grid, so the MILP size grows with ``perf.pipeline_points``: keep it small here);
with availability per region and config, demand per model, and the node prices as the cost (as
for a fresh deployment: price x (1 + churn factor)). Identical slots are ordered (u_k >= u_k+1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from redundancy.coral.planner.catalog import ModelSpec, Region, Scenario
from redundancy.coral.planner.perf import operating_tables


@dataclass(frozen=True)
class JointResult:
    """Optimal cost ($/h, without churn) and capacity per model; None fields when infeasible."""

    cost: float | None
    capacity: dict[str, float]
    replicas: int
    optimal: bool


class _Builder:
    """Accumulates variables, bounds and sparse rows."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[int] = []
        self.cost: list[float] = []
        self.entries: list[tuple[int, int, float]] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []

    def var(self, upper: float, integer: bool, cost: float = 0.0) -> int:
        self.lower.append(0.0)
        self.upper.append(upper)
        self.integer.append(int(integer))
        self.cost.append(cost)
        return len(self.cost) - 1

    def row(self, coefs: dict[int, float], lo: float, hi: float) -> None:
        r = len(self.row_lower)
        self.entries.extend((r, v, a) for v, a in coefs.items())
        self.row_lower.append(lo)
        self.row_upper.append(hi)


def _slot(
    b: _Builder,
    model: ModelSpec,
    table: np.ndarray,
    configs: list[int],
    stages: int,
    scenario: Scenario,
    region: Region,
    used: dict[int, dict[int, float]],
) -> tuple[int, int]:
    """Add one replica slot; returns its (u, T) variables and records its node variables."""
    layers = model.layers
    avail = {c: region.availability.get(scenario.configs[c].name, 0) for c in configs}
    factor = 1 + scenario.churn_factor
    u = b.var(1, True)
    t = b.var(np.inf, False)
    memory, count, layer_sum = {}, {}, {}
    bound = {c: min(avail[c], scenario.max_nodes) for c in configs}
    previous: dict[int, float] = {}
    for _ in range(stages):
        xs = [b.var(1, True) for _ in range(layers)]
        ns = {
            c: b.var(bound[c], True, scenario.price(region, scenario.configs[c]) * factor)
            for c in configs
        }
        b.row({**dict.fromkeys(xs, 1.0), u: -1.0}, 0, 0)
        b.row({**dict.fromkeys(ns.values(), 1.0), u: -1.0}, 0, np.inf)
        here = {xj: float(j) for j, xj in enumerate(xs, start=1)}
        if previous:  # stages are interchangeable: order them by layer count
            b.row({**previous, **{v: -a for v, a in here.items()}}, 0, np.inf)
        previous = here
        layer_sum.update(here)
        rate = {t: 1.0}
        for j, xj in enumerate(xs, start=1):
            for c, nc in ns.items():
                if table[c, j] <= 0:
                    continue
                w = b.var(bound[c], False)
                b.row({w: 1.0, nc: -1.0}, -np.inf, 0)
                b.row({w: 1.0, xj: -float(bound[c])}, -np.inf, 0)
                rate[w] = -table[c, j]
        b.row(rate, -np.inf, 0)
        for c, nc in ns.items():
            config = scenario.configs[c]
            memory[nc] = config.count * config.gpu.memory_gb * 1e9
            count[nc] = 1.0
            used.setdefault(c, {})[nc] = 1.0
    b.row({**layer_sum, u: -float(layers)}, 0, 0)
    b.row({**count, u: -float(scenario.max_nodes)}, -np.inf, 0)
    b.row({**memory, u: -model.weight_bytes}, 0, np.inf)
    b.row({**memory, u: -scenario.memory_factor * model.weight_bytes}, -np.inf, 0)
    return u, t


@dataclass(frozen=True)
class _SlotGroup:
    """Identical replica slots: a model in a region with a stage count and step budget (``table``
    = its rates per config and layer count), ``copies`` of them."""

    model: ModelSpec
    table: np.ndarray
    configs: list[int]
    region: int
    stages: int
    copies: int


def _groups(scenario: Scenario) -> list[_SlotGroup]:
    """Replica slots: at most as many copies as the region's nodes and memory allow."""
    out = []
    for model in scenario.models:
        tables = operating_tables(model, scenario.configs, scenario.perf, scenario.max_nodes)
        useful = [c for c in range(len(scenario.configs)) if tables[1:, :, c, 1].max() > 0]
        for ri, region in enumerate(scenario.regions):
            have = {
                c: region.availability.get(scenario.configs[c].name, 0)
                for c in useful
                if scenario.offered(region, scenario.configs[c])
            }
            configs = [c for c, n in have.items() if n > 0]
            nodes = sum(have[c] for c in configs)
            memory = sum(
                have[c] * scenario.configs[c].count * scenario.configs[c].gpu.memory_gb * 1e9
                for c in configs
            )
            for stages in range(1, min(scenario.max_nodes, model.layers) + 1):
                copies = min(nodes // stages, int(memory // model.weight_bytes))
                for point in range(tables.shape[1] if copies else 0):
                    table = tables[stages, point]
                    if table[configs, 1:].max(initial=0.0) > 0:
                        out.append(_SlotGroup(model, table, configs, ri, stages, copies))
    return out


def joint_size(scenario: Scenario) -> int:
    """Number of variables of the joint MILP (to decide whether to attempt it)."""
    total = 0
    for g in _groups(scenario):
        pairs = int((g.table[g.configs, 1:] > 0).sum())
        total += g.copies * (2 + g.stages * (g.model.layers + len(g.configs) + pairs))
    return total


def joint_optimum(scenario: Scenario, time_limit: float | None = None) -> JointResult:
    """Solve the joint MILP for ``scenario``: the cheapest plan meeting every demand.

    Small instances only (the model has a slot group per model, region, stage count and step
    budget; ``joint_size`` counts its variables).

    Parameters
    ----------
    scenario : Scenario
        Demand, node configs, prices, availability, ``max_nodes``.
    time_limit : float, optional
        Seconds for HiGHS (default: none, solve exactly).

    Returns
    -------
    JointResult
        Cost ($/h, without churn), capacity per model, replicas, whether proven optimal; cost
        None when infeasible.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> scenario = load_scenario({"models": {"Phi4-14B": 3.0}, "gpus": ["L40S"],
    ...                           "gpus_per_node": [1], "regions": ["aws-us-east-2"],
    ...                           "max_nodes": 2, "perf": {"pipeline_points": 2}})
    >>> result = joint_optimum(scenario)
    >>> round(result.cost, 3), result.optimal
    (3.722, True)
    """
    b = _Builder()
    demand_rows: dict[str, dict[int, float]] = {m.name: {} for m in scenario.models}
    through: list[tuple[str, int, int]] = []
    available: dict[tuple[int, int], dict[int, float]] = {}  # (region, config) -> node variables
    for g in _groups(scenario):
        region = scenario.regions[g.region]
        used: dict[int, dict[int, float]] = {}
        previous_u = None
        for _ in range(g.copies):
            u, t = _slot(b, g.model, g.table, g.configs, g.stages, scenario, region, used)
            demand_rows[g.model.name][t] = 1.0
            through.append((g.model.name, u, t))
            if previous_u is not None:
                b.row({previous_u: 1.0, u: -1.0}, 0, np.inf)
            previous_u = u
        for c, coefs in used.items():
            available.setdefault((g.region, c), {}).update(coefs)
    for (ri, c), coefs in available.items():
        limit = scenario.regions[ri].availability[scenario.configs[c].name]
        b.row(coefs, -np.inf, float(limit))
    for model in scenario.models:
        b.row(demand_rows[model.name], scenario.demand[model.name], np.inf)
    rows, cols, vals = zip(*b.entries, strict=True) if b.entries else ((), (), ())
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(b.row_lower), len(b.cost))).tocsr()
    options = {"time_limit": time_limit} if time_limit else {}
    result = milp(
        np.array(b.cost),
        constraints=LinearConstraint(matrix, b.row_lower, b.row_upper),
        integrality=np.array(b.integer),
        bounds=Bounds(b.lower, b.upper),
        options=options,
    )
    if result.x is None:  # status 2: proven infeasible; otherwise stopped (time limit)
        return JointResult(None, {}, 0, result.status == 2)
    x = result.x
    capacity = {m.name: 0.0 for m in scenario.models}
    for name, _, t in through:
        capacity[name] += x[t]
    replicas = sum(round(x[u]) for _, u, _ in through)
    return JointResult(
        float(result.fun) / (1 + scenario.churn_factor), capacity, replicas, result.status == 0
    )
