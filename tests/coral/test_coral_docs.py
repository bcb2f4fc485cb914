"""The Examples sections of Coral's user-facing API run as doctests, and every such function or
class has one."""

import doctest
import importlib

import pytest

PUBLIC = {
    "redundancy.coral.planner.catalog": ["load_scenario"],
    "redundancy.coral.planner.perf": [
        "throughput_table", "operating_tables", "pipeline_rate", "step_budgets", "load_profile",
    ],
    "redundancy.coral.planner.placement": ["place_dp", "place_ilp", "best_placement"],
    "redundancy.coral.planner.templates": ["build_library"],
    "redundancy.coral.planner.allocation": ["allocate"],
    "redundancy.coral.planner.plan": ["plan"],
    "redundancy.coral.planner.joint": ["joint_optimum"],
    "redundancy.coral.sim.workload": ["synthetic_trace"],
    "redundancy.coral.sim.availability": ["constant_availability", "fluctuating_availability"],
    "redundancy.coral.sim.simulator": ["simulate"],
    "redundancy.coral.compare": ["compare"],
    "redundancy.coral.baselines.planners": ["homo_plan"],
    "redundancy.coral.deploy": ["deploy_files"],
    "redundancy.coral.analysis": ["cost_floor"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_api_has_examples_that_run(module):
    mod = importlib.import_module(module)
    for name in PUBLIC[module]:
        doc = getattr(mod, name).__doc__ or ""
        assert "Examples\n" in doc and ">>> " in doc, f"{module}.{name} has no Examples section"
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failed, tried = doctest.testmod(mod, optionflags=flags, verbose=False)
    assert tried >= len(PUBLIC[module])
    assert failed == 0
