"""The two-stage optimum (templates + allocation ILP) equals the monolithic joint MILP's."""

import numpy as np
import pytest
from conftest import toy_spec
from test_coral_allocation import _brute_force

from redundancy.coral.planner.allocation import allocate
from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.joint import joint_optimum
from redundancy.coral.planner.templates import build_library


def _small_spec(seed: int) -> dict:
    rng = np.random.default_rng(1000 + seed)
    availability = {
        "L4x1": int(rng.integers(0, 4)),
        "L4x2": int(rng.integers(0, 2)),
        "L40Sx1": int(rng.integers(0, 3)),
        "L40Sx2": int(rng.integers(0, 2)),
    }
    # Two per-stage step budgets per stage count: the joint MILP has a slot group per budget.
    return toy_spec(float(rng.uniform(1, 20)), float(rng.uniform(1, 20)), availability=availability,
                    perf={"pipeline_points": 2})  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_two_stage_equals_joint_milp_and_brute_force(seed):
    scenario = load_scenario(_small_spec(seed))
    two_stage = allocate(scenario, build_library(scenario, use_cache=False).all())
    brute, _ = _brute_force(scenario, build_library(scenario, use_cache=False, pruned=False).all())
    joint = joint_optimum(scenario)
    assert joint.optimal
    if brute is None:
        assert joint.cost is None and two_stage.mode == "max_goodput"
    else:
        assert two_stage.mode == "min_cost"
        assert joint.cost == pytest.approx(brute, rel=1e-6)
        assert two_stage.cost == pytest.approx(brute, rel=1e-9)
        for model, demand in scenario.demand.items():
            assert joint.capacity[model] >= demand * (1 - 1e-6)
