"""A Helix path is rated at its own pipeline depth (hand-computed tiny pipeline)."""

import numpy as np
import pytest

from redundancy.coral.baselines.helix import helix_planner
from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.perf import ProfileTable
from redundancy.coral.sim.engine import DONE, engine_model, run_engine

DECODE_MS, PREFILL_MS = 2.0, 1.0  # measured per layer, flat in the batch


def _tiny_pool():
    """4 layers of 16 GB: an L4 (21.6 GB usable) holds 1 layer, an L40S (43.2 GB) 2; with one
    L40S and two L4 every path from layer 0 to 4 has P = 3 stages."""
    spec = {
        "name": "tiny-pool",
        "models": {"Tiny": 1000.0},  # flooded: the plan is the pool's max flow
        "gpus": ["L4", "L40S"],
        "gpus_per_node": [1],
        "regions": ["pool"],
        "max_nodes": 3,
        "catalog": {
            "models": [
                {"name": "Tiny", "layers": 4, "hidden": 1024, "kv_heads": 64, "head_dim": 128,
                 "params_b": 32, "active_params_b": 32, "weight_gb": 64,
                 "slo": {"prefill_ms": 10000, "decode_ms": 1000}},
            ],
            "instances": [
                {"cloud": "pool", "type": gpu, "gpu": gpu, "gpus": 1, "interconnect": "-",
                 "network_gbps": 100, "prices": {"pool": price}, "source": "test"}
                for gpu, price in (("L4", 0.8), ("L40S", 2.2))
            ],
            "regions": [{"name": "pool", "availability": {"L4x1": 2, "L40Sx1": 1}}],
        },
    }  # fmt: skip
    scenario = load_scenario(spec)
    table = ProfileTable()
    for node in ("L4x1", "L40Sx1"):
        table.entries[("Tiny", node)] = (np.array([1.0, 256.0]), np.full(2, DECODE_MS), PREFILL_MS)
    return scenario, table


def _hand_rate(free_gb: float, layers: int, stages: int) -> float:
    """req/s of a node holding ``layers`` layers in a full ``stages``-stage pipeline: the largest
    batch B whose KV cache (``stages`` microbatches of B requests of 750 + 240 tokens, 2 x 64 x 128
    x 2 bytes per token per layer) fits, then 1 / (prefill + 240 tokens x step / B)."""
    per_request = layers * 990 * 2 * 64 * 128 * 2
    batch = min(256, int(free_gb * 1e9 // (stages * per_request)))
    return 1e3 / (layers * PREFILL_MS + 240 * layers * DECODE_MS / batch)


def test_helix_path_is_rated_at_its_own_depth_and_the_engine_serves_it():
    scenario, table = _tiny_pool()
    plan = helix_planner(scenario, profile=table)
    (inst,) = plan.instances
    assert len(inst.stages) == 3
    # L40S: 43.2 - 2 x 16 = 11.2 GB free, B = 57 at depth 3 (86 at the flow's ceil(4/2) = 2:
    # 75.9 req/s, which the path cannot carry); L4: 5.6 GB free, 1 layer, B = 57 at depth 3.
    expected = min(_hand_rate(11.2, 2, 3), _hand_rate(5.6, 1, 3))
    assert expected == pytest.approx(53.07, abs=0.01)
    # Rated at one shared per-stage step budget on a grid whose ratio here is (1000 / 3 / 4 ms) **
    # (1 / 127) = 1.0354 (perf.step_budgets): at most one grid step below the exact 53.07.
    assert expected / 1.0355 <= inst.throughput_rps <= expected * (1 + 1e-9)
    assert plan.models[0].capacity_rps == pytest.approx(inst.throughput_rps, rel=1e-12)

    # The simulator's engine carries the planned rate: steady arrivals at it all meet the SLO.
    model = engine_model(inst, scenario, table)
    n = 4000
    arrival = np.arange(n) / inst.throughput_rps
    ttft, tpot, _, status = run_engine(model, arrival, np.full(n, 750), np.full(n, 240))
    assert (status == DONE).all()
    assert np.nanmax(ttft) < 1.0 and np.nanmax(tpot) < 1.0  # no queue builds up
