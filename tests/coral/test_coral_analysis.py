"""The gap decomposition: unit costs bound every planner's cost; plans vs simulation per model."""

import pytest
from conftest import toy_spec

from redundancy.coral.analysis import CLASSES, cost_floor, gpu_usage, model_runs, unit_costs
from redundancy.coral.baselines.planners import PLANNERS
from redundancy.coral.compare import compare
from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.templates import build_library

CLASS_OF = {"coral": "coral", "homo": "single", "melange": "single", "cauchy": "cauchy",
            "coral-homogeneous": "homogeneous"}  # fmt: skip


@pytest.mark.parametrize("demand", [(2.0, 1.0), (6.0, 3.5), (0.5, 4.0)])
def test_unit_cost_floors_bound_every_planner_that_meets_demand(demand):
    scenario = load_scenario(toy_spec(*demand, {"L4x1": 8, "L40Sx1": 6, "L4x2": 4}))
    units = unit_costs(scenario, build_library(scenario).all())
    for model in scenario.models:  # a superset of templates is never dearer per req/s
        single, homog, coral = (units[(model.name, k)].dollars_per_rps for k in
                                ("single", "homogeneous", "coral"))  # fmt: skip
        assert coral <= homog <= single
    floors = {k: cost_floor(scenario, units, k) for k in CLASSES}
    for name, kind in CLASS_OF.items():
        plan = PLANNERS[name](scenario, {})
        if plan.mode == "min_cost":
            assert plan.cost_per_hour >= floors[kind] - 1e-9, name
            assert plan.cost_per_hour >= floors["coral"] - 1e-9, name


def test_model_runs_match_the_first_plan_and_the_simulation():
    scenario = load_scenario(toy_spec(2.0, 1.0, {"L4x1": 6, "L40Sx1": 4, "L4x2": 3}))
    outcome = compare(scenario, ["coral"], 120, seed=3)[0]
    runs = model_runs(outcome.result)
    plan = PLANNERS["coral"](scenario, {})
    assert sum(r.planned_cost for r in runs) == pytest.approx(plan.cost_per_hour)
    per_model = outcome.result.per_model()
    for r in runs:
        assert r.planned_tps == pytest.approx(
            min(r.planned_rps, r.demand_rps) * scenario.perf.output_tokens
        )
        assert r.goodput_tps == pytest.approx(per_model[r.model]["goodput_tps"])
        assert sum(r.templates.values()) >= 1
    for used, offered in gpu_usage(outcome.result).values():
        assert 0 <= used <= offered
