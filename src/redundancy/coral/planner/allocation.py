"""Stage 2: the allocation ILP — how many instances of each template in each region.

  minimise  sum nu_r(t) p_r(t) + I_r(t)
  s.t.      sum_t U_c(t) nu_r(t) <= A_r(c)           (availability, every region r and config c)
            sum_{r, t of m} T(t) nu_r(t) >= D_m       (demand, every model m)
            I_r(t) >= (nu_r(t) - prev_r(t)) p_r(t) K  (churn against the running deployment)

Solved exactly with reduced-cost fixing (``solver.solve_reduced``). When no allocation meets every
demand, the max-goodput mode is lexicographic and fair: first maximise the smallest served
fraction min_m s_m / D_m over the models that have any template, then the total served
sum_m s_m keeping that fraction, then the cheapest way to serve both (``scarce_objective``
"fair", the default). With "goodput" it maximises the served token throughput
sum_m s_m * output_tokens (the planner's own tokens per request, ``scenario.perf``) and then the
cost of serving that, both exactly; a model may be left unserved. Each model's unmet demand is
reported rather than failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.sparse import coo_matrix, vstack

from redundancy.coral.planner.catalog import Scenario
from redundancy.coral.planner.solver import (
    MilpProblem,
    MilpResult,
    ScipySolver,
    Solver,
    lp_relaxation,
    lp_solution,
    solve_reduced,
)
from redundancy.coral.planner.templates import Template
from redundancy.errors import ParameterError

KEEP = 1 - 1e-9  # how much of an earlier lexicographic optimum a later stage must keep
ScarceObjective = Literal["fair", "goodput"]
SCARCE_OBJECTIVES: tuple[str, ...] = ("fair", "goodput")


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


def _node_matrix(scenario: Scenario, templates: list[Template]) -> np.ndarray:
    """U[t, c]: nodes of config c in template t."""
    index = {c.name: i for i, c in enumerate(scenario.configs)}
    matrix = np.zeros((len(templates), len(scenario.configs)))
    for row, template in enumerate(templates):
        for name, n in template.nodes.items():
            matrix[row, index[name]] = n
    return matrix


def options_for(scenario: Scenario, templates: list[Template]) -> list[Option]:
    """Every (region, template) pair whose nodes the region sells and has enough of."""
    nodes = _node_matrix(scenario, templates)
    configs = scenario.configs
    out = []
    for region in scenario.regions:
        offered = np.array([scenario.offered(region, c) for c in scenario.configs])
        price = np.array(
            [scenario.price(region, c) if scenario.offered(region, c) else 0.0 for c in configs]
        )
        have = np.array([region.availability.get(c.name, 0) for c in scenario.configs])
        fits = np.all((nodes == 0) | (offered & (nodes <= have)), axis=1)
        cost = nodes @ price
        out.extend(Option(region.name, templates[t], float(cost[t])) for t in np.flatnonzero(fits))
    return out


def _key(option: Option) -> tuple[str, str]:
    return (option.region, option.template.key)


@dataclass(frozen=True)
class _Columns:
    """Per-option arrays, built once per allocation and sliced for the per-model problems."""

    nodes: np.ndarray  # U[option, config]
    region: np.ndarray  # region name per option
    model: np.ndarray  # model name per option
    rate: np.ndarray  # template throughput

    @classmethod
    def of(cls, scenario: Scenario, options: list[Option]) -> _Columns:
        return cls(
            _node_matrix(scenario, [o.template for o in options]),
            np.array([o.region for o in options], dtype=object),
            np.array([o.template.model for o in options], dtype=object),
            np.array([o.template.throughput for o in options]),
        )

    def take(self, rows: np.ndarray) -> _Columns:
        return _Columns(self.nodes[rows], self.region[rows], self.model[rows], self.rate[rows])


def _running(scenario: Scenario, options: list[Option], previous: dict) -> list[int]:
    """Options with instances running (they get an explicit churn variable)."""
    if scenario.churn_factor <= 0 or not previous:
        return []
    return [i for i, o in enumerate(options) if previous.get(_key(o), 0) > 0]


@dataclass(frozen=True)
class _Goal:
    """What one solve optimises: cost, total served or the smallest served fraction, with floors."""

    objective: str  # "cost", "served" or "fair"
    fraction: float | None = None  # every servable model serves at least this share of demand
    total: float | None = None  # total served at least this (in ``weight`` units)
    weight: float = 1.0  # per req/s served in the "served" objective and the total floor


def _problem(
    scenario: Scenario,
    options: list[Option],
    previous: dict[tuple[str, str], int],
    goal: _Goal,
    columns: _Columns | None = None,
) -> MilpProblem:
    """Variables: nu (one per option), I (churn, only where something runs), s (served), z.

    For an option with nothing running, I = nu p K exactly, so it is folded into nu's cost.
    """
    models = [m.name for m in scenario.models]
    n_opt, n_models = len(options), len(models)
    factor = scenario.churn_factor
    columns = columns or _Columns.of(scenario, options)
    running = _running(scenario, options, previous)
    served0 = n_opt + len(running)
    z = served0 + n_models
    n_vars = z + 1
    rows, cols, vals, lower, upper = [], [], [], [], []

    def add(columns, values, lo: float, hi: float) -> None:
        rows.extend([len(lower)] * len(columns))
        cols.extend(columns)
        vals.extend(values)
        lower.append(lo)
        upper.append(hi)

    nodes = columns.nodes
    for region in scenario.regions:
        here = columns.region == region.name
        for ci, config in enumerate(scenario.configs):
            used = np.flatnonzero(here & (nodes[:, ci] > 0))
            if len(used):
                add(used, nodes[used, ci], -np.inf, float(region.availability.get(config.name, 0)))
    rate = columns.rate
    demand = np.array([scenario.demand[m] for m in models])
    servable = np.zeros(n_models, dtype=bool)
    for mi in range(n_models):
        mine = np.flatnonzero(columns.model == models[mi])
        add([*mine, served0 + mi], [*rate[mine], -1.0], 0.0, np.inf)  # capacity_m >= s_m
        servable[mi] = len(mine) > 0 and demand[mi] > 0
        if goal.objective == "fair" and servable[mi]:
            add([served0 + mi, z], [1.0, -demand[mi]], 0.0, np.inf)  # s_m >= z D_m
    for k, i in enumerate(running):
        step = options[i].price * factor
        add([n_opt + k, i], [1.0, -step], -previous[_key(options[i])] * step, np.inf)
    if goal.total is not None:
        add(list(range(served0, z)), [goal.weight] * n_models, goal.total, np.inf)
    c = np.zeros(n_vars)
    if goal.objective == "cost":
        folded = np.ones(n_opt)
        folded[running] = 0
        c[:n_opt] = [o.price for o in options] * (1 + factor * folded)
        c[n_opt:served0] = 1.0
    elif goal.objective == "served":
        c[served0:z] = -goal.weight
    else:
        c[z] = -1.0
    var_lower = np.zeros(n_vars)
    var_upper = np.full(n_vars, np.inf)
    var_upper[served0:z] = demand
    var_upper[z] = 1.0 if goal.objective == "fair" else 0.0
    if goal.objective == "cost" and goal.fraction is None and goal.total is None:
        var_lower[served0:z] = demand
    elif goal.fraction is not None:
        var_lower[served0:z] = np.where(servable, goal.fraction * demand, 0.0)
    integer = np.zeros(n_vars)
    integer[:n_opt] = 1
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(lower), n_vars)).tocsr()
    return MilpProblem(c, matrix, np.array(lower), np.array(upper), var_lower, var_upper, integer)


def _scarce(
    scenario: Scenario,
    options: list[Option],
    previous: dict[tuple[str, str], int],
    solve: Callable[[MilpProblem], MilpResult],
    columns: _Columns,
) -> MilpResult:
    """Lexicographic max-goodput: fairest smallest served fraction, then total, then cost."""
    fair = solve(_problem(scenario, options, previous, _Goal("fair"), columns))
    fraction = max(0.0, -fair.objective * KEEP) if fair.x is not None else 0.0
    most = solve(_problem(scenario, options, previous, _Goal("served", fraction), columns))
    total = -most.objective * KEEP if most.x is not None else 0.0
    goal = _Goal("cost", fraction, total)
    cheapest = solve(_problem(scenario, options, previous, goal, columns))
    return cheapest if cheapest.x is not None else most  # numerical corner: keep the goodput


def _scarce_goodput(
    scenario: Scenario,
    options: list[Option],
    previous: dict[tuple[str, str], int],
    solve: Callable[[MilpProblem], MilpResult],
    columns: _Columns,
) -> MilpResult:
    """Lexicographic max-goodput: most served output tokens/s, then the cheapest way to serve it."""
    tokens = float(scenario.perf.output_tokens)
    most = solve(_problem(scenario, options, previous, _Goal("served", weight=tokens), columns))
    total = -most.objective * KEEP if most.x is not None else 0.0
    goal = _Goal("cost", total=total, weight=tokens)
    cheapest = solve(_problem(scenario, options, previous, goal, columns))
    return cheapest if cheapest.x is not None else most


def _with_model_cuts(
    problem: MilpProblem,
    scenario: Scenario,
    options: list[Option],
    previous: dict[tuple[str, str], int],
    parts: list[tuple[np.ndarray, float, np.ndarray]],
) -> MilpProblem:
    """Add, per model m, "cost of m's instances and churn >= OPT_m" (valid: that part alone is a
    feasible single-model allocation); it lifts the LP bound from the joint LP's to sum_m OPT_m."""
    running = _running(scenario, options, previous)
    churn = {i: len(options) + k for k, i in enumerate(running)}
    rows, cols, vals = [], [], []
    for row, (mine, _, _) in enumerate(parts):
        extra = [churn[i] for i in mine if i in churn]
        columns = np.concatenate([mine, np.array(extra, dtype=np.int64)])
        rows.extend([row] * len(columns))
        cols.extend(columns.tolist())
        vals.extend(problem.c[columns].tolist())
    cuts = coo_matrix((vals, (rows, cols)), shape=(len(parts), len(problem.c))).tocsr()
    return MilpProblem(
        problem.c,
        vstack([problem.A, cuts]).tocsr(),
        np.concatenate([problem.row_lower, [own for _, own, _ in parts]]),
        np.concatenate([problem.row_upper, np.full(len(parts), np.inf)]),
        problem.var_lower,
        problem.var_upper,
        problem.integer,
    )


def _min_cost(
    scenario: Scenario,
    options: list[Option],
    previous: dict[tuple[str, str], int],
    solver: Solver,
    columns: _Columns,
    limit: float | None = None,
) -> MilpResult:
    """The cheapest allocation meeting every demand (x=None when none does), exactly (or the best
    found within ``limit`` seconds per solve, then marked not optimal).

    Each model alone (its options, the whole availability) is a relaxation: its optimum OPT_m,
    and for an option j of model m the better of LP_m + d_j (LP bound and reduced cost) and the
    covering-knapsack floor, bound the cost of model m's part of any joint solution using j, so
    sum_{m' != m} OPT_m' + that is a floor on the whole; sum_m OPT_m bounds the optimum and the
    per-model optima seed the joint search. When those optima together exceed the availability
    (models compete for nodes), the joint LP (with the cuts) is solved too: its bound, reduced
    costs and support are stronger there, and its infeasibility proves the MILP's at once.
    """
    floors = np.zeros(len(options))
    together = np.zeros(len(options))
    seed: list[int] = []
    optimum, parts = 0.0, []
    for model in scenario.models:
        mine = np.flatnonzero(columns.model == model.name)
        alone = scenario.model_copy(
            update={"models": [model], "demand": {model.name: scenario.demand[model.name]}}
        )
        own = [options[i] for i in mine]
        problem = _problem(alone, own, previous, _Goal("cost"), columns.take(mine))
        relaxed = lp_relaxation(problem) if len(mine) else None
        if relaxed is None:
            return MilpResult(None, float("inf"), True, f"{model.name} alone is infeasible")
        best = solve_reduced(
            problem, solver, np.arange(len(mine)), relaxed=relaxed, time_limit=limit
        )
        if best.x is None:
            return best
        own = best.objective if best.optimal else relaxed[0]  # a valid floor on model m's part
        optimum += own
        floor = np.maximum(
            relaxed[0] + relaxed[1][: len(mine)],
            covering_floors(
                problem.c[: len(mine)], columns.rate[mine], scenario.demand[model.name]
            ),
        )
        parts.append((mine, own, floor))
        together[mine] = np.round(best.x[: len(mine)])
        seed.extend(mine[np.flatnonzero(together[mine])])
    for mine, own, floor in parts:
        floors[mine] = optimum - own + floor
    problem = _with_model_cuts(
        _problem(scenario, options, previous, _Goal("cost"), columns),
        scenario,
        options,
        previous,
        parts,
    )
    relaxed = (optimum, np.zeros(len(problem.c)))  # the joint LP is no stronger if they fit
    if not _fits(scenario, columns, together):
        joint = lp_solution(problem)
        if joint is None:
            return MilpResult(None, float("inf"), True, "the joint LP relaxation is infeasible")
        relaxed = joint[:2]
        seed.extend(np.flatnonzero(joint[2][: len(options)] > 1e-9).tolist())
    return solve_reduced(
        problem,
        solver,
        np.arange(len(options)),
        floors=floors,
        lower=optimum,
        seed=np.array(seed, dtype=np.int64),
        relaxed=relaxed,
        time_limit=limit,
    )


def _fits(scenario: Scenario, columns: _Columns, counts: np.ndarray) -> bool:
    """Whether ``counts`` instances per option fit every region's availability."""
    for region in scenario.regions:
        used = counts[columns.region == region.name] @ columns.nodes[columns.region == region.name]
        have = np.array([region.availability.get(c.name, 0) for c in scenario.configs])
        if np.any(used > have + 1e-9):
            return False
    return True


def covering_floors(
    cost: np.ndarray, rate: np.ndarray, demand: float, steps: int = 4096
) -> np.ndarray:
    """For each option j: a lower bound on the cheapest cover of ``demand`` that uses j once.

    Rates are rounded UP to units of demand/steps (a relaxation: every true cover stays a cover),
    h(k) = the cheapest cover of k units (unbounded covering knapsack over the cheapest option of
    each unit size, availability ignored) by a DP over k; j's floor is cost_j + h(units left).
    """
    if demand <= 0:
        return cost.copy()
    unit = demand / steps
    size = np.minimum(np.ceil(rate / unit), steps).astype(np.int64)
    cheapest = np.full(steps + 1, np.inf)
    np.minimum.at(cheapest, size, cost)
    sizes = np.flatnonzero(np.isfinite(cheapest))
    prices = cheapest[sizes]
    h = np.zeros(steps + 1)
    for k in range(1, steps + 1):
        h[k] = np.min(prices + h[np.maximum(k - sizes, 0)])
    left = np.clip(np.ceil((demand - rate) / unit - 1e-9), 0, steps).astype(np.int64)
    return cost + h[left]


def allocate(
    scenario: Scenario,
    templates: list[Template],
    previous: dict[tuple[str, str], int] | None = None,
    solver: Solver | None = None,
    scarce_objective: ScarceObjective | None = None,
) -> Allocation:
    """Cheapest allocation meeting every demand, or the max-goodput one when none does.

    Parameters
    ----------
    scenario : Scenario
        Demand, prices, availability and churn factor.
    templates : list of Template
        The candidate replicas (``build_library(scenario).all()``).
    previous : dict, optional
        Running counts per (region, template key): new instances pay the churn term.
    solver : Solver, optional
        The MILP solver (default scipy/HiGHS, with the scenario's ``allocation_time_s``).
    scarce_objective : {"fair", "goodput"}, optional
        Order when demand cannot be met (default: the scenario's, else "fair"): max-min served
        fraction, then total, then cost; or most served tokens/s, then cost.

    Returns
    -------
    Allocation
        Counts per (region, template), capacity and served req/s per model, cost, mode
        ("min_cost" or "max_goodput") and notes.

    Raises
    ------
    ParameterError
        An unknown ``scarce_objective``.
    RuntimeError
        The solver returned no solution at all.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> from redundancy.coral.planner.templates import build_library
    >>> scenario = load_scenario("core").model_copy(update={"max_nodes": 3})
    >>> result = allocate(scenario, build_library(scenario).all())
    >>> result.mode, round(result.cost, 2)
    ('min_cost', 23.52)
    >>> all(result.served[m] >= d for m, d in scenario.demand.items())
    True
    """
    objective = scarce_objective or scenario.scarce_objective or "fair"
    if objective not in SCARCE_OBJECTIVES:
        raise ParameterError(
            f"scarce objective {objective!r} is unknown (allowed: {', '.join(SCARCE_OBJECTIVES)})"
        )
    limit = scenario.allocation_time_s
    solver = solver or ScipySolver(time_limit=limit)
    previous = previous or {}
    options = options_for(scenario, templates)
    candidates = np.arange(len(options))

    def solve(problem: MilpProblem) -> MilpResult:
        return solve_reduced(problem, solver, candidates, time_limit=limit)

    columns = _Columns.of(scenario, options)
    result = _min_cost(scenario, options, previous, solver, columns, limit)
    mode, notes = "min_cost", []
    if result.x is None:
        mode = "max_goodput"
        if not result.optimal:
            notes.append(f"no allocation meeting demand found: {result.message}")
        if objective == "goodput":
            notes.append("demand cannot be met within availability: serving the most goodput")
            result = _scarce_goodput(scenario, options, previous, solve, columns)
        else:
            notes.append(
                "demand cannot be met within availability: serving the most goodput, fairly"
            )
            result = _scarce(scenario, options, previous, solve, columns)
    if result.x is None:
        raise RuntimeError(f"allocation solver failed: {result.message}")
    if not result.optimal:
        notes.append(f"solver stopped early: {result.message}")
    n = np.round(result.x[: len(options)]).astype(np.int64)
    counts = {_key(o): int(n[i]) for i, o in enumerate(options) if n[i]}
    capacity = {m.name: 0.0 for m in scenario.models}
    for i in np.flatnonzero(n):
        capacity[options[i].template.model] += float(n[i] * options[i].template.throughput)
    served = {m: float(min(capacity[m], scenario.demand[m])) for m in capacity}
    cost = float(sum(n[i] * options[i].price for i in np.flatnonzero(n)))
    churn = sum(
        max(0, n[i] - previous.get(_key(o), 0)) * o.price * scenario.churn_factor
        for i, o in enumerate(options)
        if n[i]
    )
    return Allocation(counts, options, served, capacity, cost, float(churn), mode, notes)
