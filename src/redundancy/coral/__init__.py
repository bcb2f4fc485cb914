"""Coral: a two-stage planner for serving several LLMs on heterogeneous GPUs.

Layers: ``planner/`` (``catalog`` typed catalogs and scenarios -> ``perf`` + ``calibration``
T_hat tables -> ``templates`` Stage 1, ``placement`` per multiset -> ``allocation`` Stage 2 ILP
-> ``plan`` the driver), ``schema`` (the JSON plan), ``sim/`` (traces, engine, simulator),
``baselines/`` (Homo, Mélange, Cauchy, Helix, ablations), ``deploy`` (SkyPilot + vLLM),
``compare``/``analysis``/``reproduce``. Entry point: ``plan(load_scenario("core"))``.

The names below load on first use, so ``redundancy coral`` can build its command line without
importing numpy or scipy (``redundancy.coral.cli`` imports the library inside its commands).
The comparison of all planners is ``redundancy.coral.compare.compare`` (not listed here: the name
``redundancy.coral.compare`` is its module).
"""

from __future__ import annotations

from redundancy._lazy import lazy_exports

_WHERE = {
    "Scenario": "planner.catalog",
    "load_scenario": "planner.catalog",
    "load_profile": "planner.perf",
    "throughput_table": "planner.perf",
    "build_library": "planner.templates",
    "allocate": "planner.allocation",
    "plan": "planner.plan",
    "joint_optimum": "planner.joint",
    "Plan": "schema",
    "homo_plan": "baselines.planners",
    "synthetic_trace": "sim.workload",
    "load_trace": "sim.workload",
    "constant_availability": "sim.availability",
    "fluctuating_availability": "sim.availability",
    "SimConfig": "sim.simulator",
    "simulate": "sim.simulator",
    "deploy_files": "deploy",
    "explain": "deploy",
    "cost_floor": "analysis",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _WHERE)
