"""Coral: a two-stage planner for serving several LLMs on heterogeneous GPUs.

Layers: ``planner/`` (``catalog`` typed catalogs and scenarios -> ``perf`` + ``calibration``
T_hat tables -> ``templates`` Stage 1, ``placement`` per multiset -> ``allocation`` Stage 2 ILP
-> ``plan`` the driver), ``schema`` (the JSON plan), ``sim/`` (traces, engine, simulator),
``baselines/`` (Homo, Mélange, Cauchy, Helix, ablations), ``deploy`` (SkyPilot + vLLM),
``compare``/``analysis``/``reproduce``. Entry point:
``redundancy.coral.planner.plan.plan(load_scenario("core"))``.
"""
