"""Helix-style baseline (ASPLOS'25, adapted): one model, a fixed node pool, max-flow placement.

Layers are cut at ``blocks`` evenly spaced boundaries; a node of config c may hold any range
[a, b) of whole blocks and then serves ``cap(c, b - a)`` req/s, where a node holding j of the L
layers gets j / L of the SLO (so every path from layer 0 to L meets it):
``cap = T_hat[ceil(L / j), c, j]`` from the planner's performance model. Requests flow from
layer 0 to layer L through ranges that meet end to start. The MILP over the pool, per region:

    n[c, a, b] in Z>=0 nodes holding [a, b), f[c, a, b] >= 0 their flow, f <= cap n,
    sum_{a, b} n[c, a, b] <= A(c),   flow in = flow out at every inner boundary,
    maximise F = flow out of layer 0 (capped at the demand), then the cheapest nodes keeping F.

For the simulator the flow is split into paths (pipelines); each range's nodes are shared among
its paths by largest remainder, a path left without a node somewhere is dropped (its nodes go to
the range's largest path), and each path becomes an Instance whose stages are its ranges.

The flow's capacities are node-local: a range of j layers is rated as a stage of a ceil(L / j)-stage
pipeline at its own best batch. A path of P stages keeps P microbatches on every node and runs in
lockstep at its slowest stage, so each Instance's req/s is re-rated as Coral's templates are,
``perf.pipeline_rate``: every stage at one shared per-stage step budget, with the microbatch its
tightest stage can hold (as the simulator's engine runs it). A long path mixing fast and slow
ranges is then slower than the flow claimed (see docs/coral.md, "The Helix numbers").
"""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from redundancy.coral.planner.catalog import ModelSpec, Region, Scenario
from redundancy.coral.planner.perf import ProfileTable, pipeline_rate, throughput_table
from redundancy.coral.schema import Instance, ModelOutcome, Plan, PlannedStage
from redundancy.errors import ParameterError

Range = tuple[int, int, int]  # (config index, first layer, end layer)
OPTIONS = {"time_limit": 10.0, "mip_rel_gap": 1e-3}  # per MILP solve (HiGHS)


def _ranges(model: ModelSpec, scenario: Scenario, blocks: int, profile) -> dict[Range, float]:
    """Every (config, layer range) a node can serve, with its req/s."""
    layers = model.layers
    cuts = sorted({round(k * layers / blocks) for k in range(blocks + 1)})
    stages = int(np.ceil(layers / min(b - a for a, b in pairwise(cuts))))
    table = throughput_table(model, scenario.configs, scenario.perf, stages, profile)
    out = {}
    for ci in range(len(scenario.configs)):
        for x, a in enumerate(cuts):
            for b in cuts[x + 1 :]:
                rate = table[int(np.ceil(layers / (b - a))), ci, b - a]
                if rate > 0:
                    out[(ci, a, b)] = float(rate)
    return out


def _solve(
    scenario: Scenario, region: Region, caps: dict[Range, float], layers: int, demand: float
):
    """(n, f) per range of the lexicographic max-flow-then-min-cost MILP in ``region``."""
    keys = [r for r in caps if scenario.offered(region, scenario.configs[r[0]])]
    keys = [r for r in keys if region.availability.get(scenario.configs[r[0]].name, 0) > 0]
    if not keys:
        return {}
    k = len(keys)
    inner = sorted(({a for _, a, _ in keys} | {b for _, _, b in keys}) - {0, layers})
    rows = lil_matrix((k + len(scenario.configs) + len(inner) + 1, 2 * k))
    lo, hi = [], []
    for i, key in enumerate(keys):
        rows[i, i], rows[i, k + i] = -caps[key], 1.0  # f <= cap n
        lo.append(-np.inf)
        hi.append(0.0)
    for ci, config in enumerate(scenario.configs):
        for i, r in enumerate(keys):
            if r[0] == ci:
                rows[k + ci, i] = 1.0
        lo.append(-np.inf)
        hi.append(float(region.availability.get(config.name, 0)))
    for q, point in enumerate(inner):
        for i, (_, a, b) in enumerate(keys):
            rows[k + len(scenario.configs) + q, k + i] = (b == point) - (a == point)
        lo.append(0.0)
        hi.append(0.0)
    source = np.array([float(a == 0) for _, a, _ in keys])
    rows[-1, k:] = source
    price = np.array([scenario.price(region, scenario.configs[ci]) for ci, _, _ in keys])
    integrality = np.r_[np.ones(k), np.zeros(k)]
    bounds = Bounds(np.zeros(2 * k), np.full(2 * k, np.inf))
    lo.append(0.0)
    hi.append(demand)
    flow = milp(np.r_[np.zeros(k), -source], constraints=LinearConstraint(rows.tocsr(), lo, hi),
                integrality=integrality, bounds=bounds, options=OPTIONS)  # fmt: skip
    if flow.x is None or -flow.fun <= 1e-9:
        return {}
    lo[-1] = -flow.fun * (1 - 1e-6)
    cheap = milp(np.r_[price, np.zeros(k)], constraints=LinearConstraint(rows.tocsr(), lo, hi),
                 integrality=integrality, bounds=bounds, options=OPTIONS)  # fmt: skip
    x = cheap.x if cheap.x is not None else flow.x
    return {r: (round(x[i]), float(x[k + i])) for i, r in enumerate(keys) if x[k + i] > 1e-9}


def _paths(solution: dict[Range, tuple[int, float]], layers: int) -> list[tuple[list, float]]:
    """Decompose the flow into paths from layer 0 to ``layers`` (largest flow first)."""
    left = {r: f for r, (_, f) in solution.items()}
    paths = []
    while sum(f for (_, a, _), f in left.items() if a == 0) > 1e-9:
        path, point = [], 0
        while point != layers:
            nxt = [r for r in left if r[1] == point and left[r] > 1e-9]
            if not nxt:
                return paths
            best = max(nxt, key=left.__getitem__)
            path.append(best)
            point = best[2]
        phi = min(left[r] for r in path)
        for r in path:
            left[r] -= phi
        paths.append((path, phi))
    return paths


def _share_nodes(solution, paths) -> list[dict[Range, int]]:
    """Integer nodes of each range per path, by flow; a path short of a node is dropped."""
    got = [dict.fromkeys(path, 0) for path, _ in paths]
    for r, (n, total) in solution.items():
        users = [p for p, (path, _) in enumerate(paths) if r in path]
        exact = np.array([n * paths[p][1] / total for p in users])
        counts = np.floor(exact).astype(int)
        for p in np.argsort(-(exact - counts))[: n - counts.sum()]:
            counts[p] += 1
        for p, c in zip(users, counts, strict=True):
            got[p][r] = int(c)
    alive = [all(c > 0 for c in g.values()) for g in got]
    for p, g in enumerate(got):
        for r, c in g.items():
            heirs = [q for q in range(len(got)) if alive[q] and r in got[q]]
            if not alive[p] and c and heirs:
                got[max(heirs, key=lambda q: got[q][r])][r] += c
    return [g for g, ok in zip(got, alive, strict=True) if ok]


def helix_planner(
    scenario: Scenario,
    previous: dict[tuple[str, str], int] | None = None,
    blocks: int = 16,
    profile: ProfileTable | None = None,
) -> Plan:
    """Max-flow placement of the scenario's single model on its node pool, as a Plan."""
    models = [m for m in scenario.models if scenario.demand[m.name] > 0]
    if len(models) != 1:
        raise ParameterError(f"the Helix planner serves one model; the scenario has {len(models)}")
    model, start = models[0], time.perf_counter()
    demand = scenario.demand[model.name]
    blocks = min(blocks, model.layers)
    caps = _ranges(model, scenario, blocks, profile)
    instances, capacity = [], 0.0
    for region in scenario.regions:
        solution = _solve(scenario, region, caps, model.layers, demand - capacity)
        for p, nodes in enumerate(_share_nodes(solution, _paths(solution, model.layers))):
            stages = [
                PlannedStage(nodes={scenario.configs[ci].name: n}, layer_start=a, layer_end=b)
                for (ci, a, b), n in sorted(nodes.items(), key=lambda item: item[0][1])
            ]
            ranges = [(stage.nodes, stage.layer_end - stage.layer_start) for stage in stages]
            rate, _ = pipeline_rate(model, scenario.configs, scenario.perf, ranges, profile)
            price = sum(
                n * scenario.price(region, scenario.configs[r[0]]) for r, n in nodes.items()
            )
            layout = "|".join(f"{s.layer_start}-{s.layer_end}:{s.nodes}" for s in stages)
            instances.append(
                Instance(model=model.name, region=region.name, template=f"helix{p}:{layout}",
                         stages=stages, throughput_rps=rate, price_per_hour=price)
            )  # fmt: skip
            capacity += rate
    cost = sum(i.price_per_hour for i in instances)
    served = min(capacity, demand)
    outcome = ModelOutcome(
        model=model.name, demand_rps=demand, capacity_rps=capacity, served_rps=served,
        unmet_rps=demand - served, replicas=len(instances), cost_per_hour=cost,
    )  # fmt: skip
    return Plan(
        scenario=scenario.name, mode="min_cost" if served >= demand - 1e-9 else "max_goodput",
        instances=instances, models=[outcome], cost_per_hour=cost, churn_cost=0.0, templates=0,
        stage1_seconds=0.0, stage2_seconds=time.perf_counter() - start, notes=[],
    )  # fmt: skip
