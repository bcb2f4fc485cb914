"""Stage 2: the allocation ILP equals brute force; pruning is lossless; scarce -> max goodput."""

import numpy as np
import pytest
from conftest import toy_spec

from redundancy.coral.planner import allocation
from redundancy.coral.planner.allocation import _Goal, _problem, allocate, options_for
from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.solver import ScipySolver
from redundancy.coral.planner.templates import build_library, prune
from redundancy.errors import ParameterError


def _brute_force(scenario, templates):
    """(min cost meeting demand or None, best (smallest served fraction, total served)).

    The fraction is over the models that have an option (the fair max-goodput order)."""
    options = options_for(scenario, templates)
    region = scenario.regions[0]
    models = [m.name for m in scenario.models]
    servable = {o.template.model for o in options}
    best_cost, best_served = [np.inf], [(0.0, 0.0)]

    def walk(i, left, cap, cost):
        served = {m: min(cap[m], scenario.demand[m]) for m in models}
        fraction = min((served[m] / scenario.demand[m] for m in servable), default=0.0)
        key = (round(fraction, 9), round(sum(served.values()), 9))
        best_served[0] = max(best_served[0], key)
        if all(cap[m] >= scenario.demand[m] - 1e-9 for m in models):
            best_cost[0] = min(best_cost[0], cost)
        for k in range(i, len(options)):
            need = options[k].template.nodes
            if all(left.get(c, 0) >= n for c, n in need.items()):
                rest = {c: left.get(c, 0) - need.get(c, 0) for c in set(left) | set(need)}
                grown = dict(cap)
                grown[options[k].template.model] += options[k].template.throughput
                walk(k, rest, grown, cost + options[k].price)

    walk(0, dict(region.availability), dict.fromkeys(models, 0.0), 0.0)
    return (None if np.isinf(best_cost[0]) else best_cost[0]), best_served[0]


def _servable(scenario, templates):
    return {o.template.model for o in options_for(scenario, templates)}


def _random_spec(seed):
    rng = np.random.default_rng(seed)
    availability = {
        "L4x1": int(rng.integers(0, 3)),
        "L4x2": int(rng.integers(0, 2)),
        "L40Sx1": int(rng.integers(0, 3)),
        "L40Sx2": int(rng.integers(0, 2)),
    }
    return toy_spec(float(rng.uniform(1, 30)), float(rng.uniform(1, 25)), availability=availability)


@pytest.mark.parametrize("seed", range(12))
def test_two_stage_optimum_equals_brute_force(seed):
    scenario = load_scenario(_random_spec(seed))
    full = build_library(scenario, use_cache=False, pruned=False).all()
    pruned = build_library(scenario, use_cache=False).all()
    assert len(pruned) <= len(full)
    cost, served = _brute_force(scenario, full)
    result = allocate(scenario, pruned)
    if cost is None:
        assert result.mode == "max_goodput"
        fraction = min(
            result.served[m] / d
            for m, d in scenario.demand.items()
            if m in _servable(scenario, pruned)
        )
        assert fraction == pytest.approx(served[0], rel=1e-6, abs=1e-9)
        assert sum(result.served.values()) == pytest.approx(served[1], rel=1e-6)
    else:
        assert result.mode == "min_cost"
        assert result.cost == pytest.approx(cost, rel=1e-9)
        assert allocate(scenario, full).cost == pytest.approx(cost, rel=1e-9)  # pruning lossless


def test_dominance_pruning_keeps_pareto_front_and_running_templates():
    scenario = load_scenario(toy_spec())
    full = build_library(scenario, use_cache=False, pruned=False).all()
    names = [c.name for c in scenario.configs]
    kept = prune(full, names)
    assert {t.key for t in kept} < {t.key for t in full}
    dropped = next(t for t in full if t.key not in {k.key for k in kept})
    assert dropped.key in {t.key for t in prune(full, names, keep={dropped.key})}


def test_scarce_scenario_reports_unmet_demand():
    scenario = load_scenario(toy_spec(500.0, 400.0))
    result = allocate(scenario, build_library(scenario, use_cache=False).all())
    assert result.mode == "max_goodput" and result.notes
    for model, demand in scenario.demand.items():
        assert result.served[model] <= demand
    assert sum(result.served.values()) > 0


def test_churn_prefers_the_running_deployment():
    scenario = load_scenario(toy_spec(churn_factor=0.5))
    templates = build_library(scenario, use_cache=False).all()
    first = allocate(scenario, templates)
    assert first.churn > 0  # starting from nothing pays initialisation
    again = allocate(scenario, templates, previous=first.counts)
    assert again.churn == pytest.approx(0.0, abs=1e-9)
    assert again.cost == pytest.approx(first.cost)


@pytest.mark.parametrize(
    "availability", [{"L40Sx1": 2}, {"L40Sx1": 1, "L4x1": 1}, {"L40Sx2": 1, "L4x1": 1}]
)
def test_scarce_mode_starves_no_servable_model(availability):
    scenario = load_scenario(toy_spec(500.0, 400.0, availability=availability))
    templates = build_library(scenario, use_cache=False).all()
    options = options_for(scenario, templates)
    most = ScipySolver().solve(_problem(scenario, options, {}, _Goal("served")))
    greedy = {o.template.model for i, o in enumerate(options) if round(most.x[i])}
    assert greedy == {"Toy-A"}  # maximising the total alone starves Toy-B
    result = allocate(scenario, templates)
    assert result.mode == "max_goodput"
    assert all(served > 0 for served in result.served.values())


def test_scarce_mode_serves_the_rest_when_a_model_has_no_template():
    scenario = load_scenario(toy_spec(500.0, 400.0, availability={"L4x1": 2}))  # Toy-B: 24 GB
    result = allocate(scenario, build_library(scenario, use_cache=False).all())
    assert result.served["Toy-B"] == 0 and result.served["Toy-A"] > 0


def _brute_force_goodput(scenario, templates):
    """(most served output tokens/s, cheapest $/h serving that) over every allocation."""
    options = options_for(scenario, templates)
    models = [m.name for m in scenario.models]
    tokens = scenario.perf.output_tokens
    best = [(0.0, 0.0)]  # (served tokens/s, -cost): lexicographic maximum

    def walk(i, left, cap, cost):
        served = sum(min(cap[m], scenario.demand[m]) for m in models) * tokens
        best[0] = max(best[0], (round(served, 6), -round(cost, 9)))
        for k in range(i, len(options)):
            need = options[k].template.nodes
            if all(left.get(c, 0) >= n for c, n in need.items()):
                rest = {c: left.get(c, 0) - need.get(c, 0) for c in set(left) | set(need)}
                grown = dict(cap)
                grown[options[k].template.model] += options[k].template.throughput
                walk(k, rest, grown, cost + options[k].price)

    walk(0, dict(scenario.regions[0].availability), dict.fromkeys(models, 0.0), 0.0)
    return best[0][0], -best[0][1]


@pytest.mark.parametrize(
    "availability",
    [
        {"L40Sx1": 2},
        {"L40Sx1": 1, "L4x1": 1},
        {"L40Sx2": 1, "L4x1": 1},
        {"L4x1": 2, "L40Sx1": 1, "L4x2": 1},
        {"L4x1": 2, "L4x2": 1, "L40Sx1": 2, "L40Sx2": 1},
    ],
)
def test_goodput_scarce_objective_equals_brute_force_and_beats_fair(availability):
    spec = toy_spec(500.0, 400.0, availability=availability)
    scenario = load_scenario(spec | {"scarce_objective": "goodput"})
    assert scenario.scarce_objective == "goodput"
    full = build_library(scenario, use_cache=False, pruned=False).all()
    pruned = build_library(scenario, use_cache=False).all()
    tokens = scenario.perf.output_tokens
    most, cheapest = _brute_force_goodput(scenario, full)
    goodput = allocate(scenario, pruned)
    assert goodput.mode == "max_goodput"
    assert sum(goodput.served.values()) * tokens == pytest.approx(most, rel=1e-6)
    assert goodput.cost == pytest.approx(cheapest, rel=1e-6, abs=1e-9)
    fair = allocate(scenario, pruned, scarce_objective="fair")
    assert fair.mode == "max_goodput"
    assert sum(goodput.served.values()) >= sum(fair.served.values()) - 1e-6
    assert load_scenario(spec).scarce_objective is None  # default: fair, not asked for


def test_goodput_scarce_objective_through_plan_and_the_cli_option():
    from typer.testing import CliRunner

    from redundancy.coral.cli import app
    from redundancy.coral.planner.plan import plan

    spec = toy_spec(500.0, 400.0, availability={"L40Sx1": 2})
    scenario = load_scenario(spec)
    fair = plan(scenario, use_cache=False)
    goodput = plan(scenario, use_cache=False, scarce_objective="goodput")
    assert sum(m.served_rps for m in goodput.models) > sum(m.served_rps for m in fair.models)
    with pytest.raises(ParameterError):
        plan(scenario, use_cache=False, scarce_objective="most")
    result = CliRunner().invoke(app, ["plan", "core", "--scarce-objective", "most"])
    assert result.exit_code != 0


def test_contended_models_use_the_joint_lp_and_stay_exact(monkeypatch):
    """When the models' separate optima do not fit the availability together, the joint LP's
    bound and reduced costs drive the search, and the optimum still equals brute force; with
    a time limit the plan is still a valid allocation, never cheaper than the optimum."""
    calls = []
    real = allocation.lp_solution
    monkeypatch.setattr(allocation, "lp_solution", lambda p: calls.append(1) or real(p))
    checked = 0
    for seed in range(40):
        scenario = load_scenario(_random_spec(seed))
        templates = build_library(scenario, use_cache=False).all()
        before = len(calls)
        result = allocate(scenario, templates)
        if len(calls) == before or result.mode != "min_cost":
            continue
        cost, _ = _brute_force(scenario, templates)
        assert result.cost == pytest.approx(cost, rel=1e-9)
        timed = scenario.model_copy(update={"allocation_time_s": 5.0})
        assert allocate(timed, templates).cost >= cost - 1e-9
        checked += 1
    assert checked >= 2
