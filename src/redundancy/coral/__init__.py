"""Coral: a two-stage planner for serving several LLMs on heterogeneous GPUs.

``catalog`` (typed YAML catalogs, scenarios) -> ``perf`` (T_hat tables) -> ``templates`` (Stage 1,
``placement`` per multiset) -> ``allocation`` (Stage 2 ILP) -> ``plan`` (JSON plan) -> ``deploy``.
Entry point: ``redundancy.coral.plan.plan(load_scenario("core"))``.
"""
