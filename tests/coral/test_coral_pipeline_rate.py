"""A pipeline is planned at the rate the simulator's engine sustains: its slowest stage's step at
the microbatch its tightest stage's KV memory holds (issue #21, pipeline rating)."""

import numpy as np
import pytest

from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.perf import ProfileTable, pipeline_rate
from redundancy.coral.planner.templates import build_library
from redundancy.coral.schema import Instance, PlannedStage
from redundancy.coral.sim.engine import DONE, engine_model, run_engine

# Measured per-layer times, flat in the batch: an A100-80 steps a layer in 4 ms, an L40S in 1 ms
# (made-up: what matters is that the stage with more free memory is the slower one).
DECODE_MS = {"A100-80x1": 4.0, "L40Sx1": 1.0}
PREFILL_MS = 0.01  # per layer: small, so decode sets the rate in the planner and the engine
KV_PER_REQUEST = 990 * 2 * 64 * 128 * 2  # (750 + 240) tokens x K+V x 64 heads x 128 x BF16


def _duo():
    """2 layers of 40 GB: an L40S (43.2 GB usable) holds one with 3.2 GB free for KV, an A100-80
    (72 GB) one with 32 GB free; no node holds both."""
    spec = {
        "name": "duo",
        "models": {"Duo": 1.0},
        "gpus": ["A100-80", "L40S"],
        "gpus_per_node": [1],
        "regions": ["pool"],
        "max_nodes": 2,
        "catalog": {
            "models": [
                {"name": "Duo", "layers": 2, "hidden": 1024, "kv_heads": 64, "head_dim": 128,
                 "params_b": 40, "active_params_b": 40, "weight_gb": 80,
                 "slo": {"prefill_ms": 10000, "decode_ms": 100}},
            ],
            "instances": [
                {"cloud": "pool", "type": gpu, "gpu": gpu, "gpus": 1, "interconnect": "-",
                 "network_gbps": 100, "prices": {"pool": price}, "source": "test"}
                for gpu, price in (("A100-80", 5.0), ("L40S", 2.2))
            ],
            "regions": [{"name": "pool", "availability": {"A100-80x1": 1, "L40Sx1": 1}}],
        },
    }  # fmt: skip
    table = ProfileTable()
    for node, ms in DECODE_MS.items():
        table.entries[("Duo", node)] = (np.array([1.0, 256.0]), np.full(2, ms), PREFILL_MS)
    return load_scenario(spec), table


def _hand_pipeline_rate() -> float:
    """A100-80 [layer 0] -> L40S [layer 1], 2 microbatches in flight: the L40S holds KV for
    3.2 GB / (2 x 32.4 MB) = 49 requests per microbatch; every iteration steps at the slower
    stage, 4 ms; a request needs 240 iterations: 49 / (240 x 4 ms) = 51.04 req/s (less the
    0.01 ms prefill per layer the planner charges each stage)."""
    micro = int(3.2e9 // (2 * KV_PER_REQUEST))
    assert micro == 49
    return 1e3 / (PREFILL_MS + 240 * DECODE_MS["A100-80x1"] / micro)


def test_mixed_pipeline_is_planned_at_its_slowest_stage_and_tightest_microbatch():
    scenario, table = _duo()
    expected = _hand_pipeline_rate()
    assert expected == pytest.approx(51.02, abs=0.01)
    library = build_library(scenario, use_cache=False, pruned=False, profile=table)
    (mixed,) = [t for t in library.all() if t.nodes == {"A100-80x1": 1, "L40Sx1": 1}]
    assert len(mixed.stages) == 2
    # Node-local rating planned 204 req/s here: each node at its own step and batch (the L40S
    # at 49 requests / 1 ms, the A100 at 256 / 4 ms). Grid ratio: (50 ms / 1 ms) ** (1 / 127).
    assert expected / 1.0313 <= mixed.throughput <= expected * (1 + 1e-9)
    layout = [(s.nodes, s.layers) for s in mixed.stages]
    rate, _ = pipeline_rate(scenario.models[0], scenario.configs, scenario.perf, layout, table)
    assert rate == pytest.approx(mixed.throughput, rel=1e-12)


def _instance(template) -> Instance:
    """The template as one planned replica (stages in order, consecutive layer ranges)."""
    stages, start = [], 0
    for stage in template.stages:
        stages.append(
            PlannedStage(nodes=stage.nodes, layer_start=start, layer_end=start + stage.layers)
        )
        start += stage.layers
    return Instance(
        model=template.model,
        region="pool",
        template=template.key,
        stages=stages,
        throughput_rps=template.throughput,
        price_per_hour=1.0,
    )


def _serve(instance: Instance, scenario, table, rate: float, n: int = 3000):
    model = engine_model(instance, scenario, table)
    arrival = np.arange(n) / rate
    return run_engine(model, arrival, np.full(n, 750), np.full(n, 240))


def test_engine_sustains_the_planned_rate_and_not_more():
    scenario, table = _duo()
    library = build_library(scenario, use_cache=False, pruned=False, profile=table)
    (mixed,) = [t for t in library.all() if t.nodes == {"A100-80x1": 1, "L40Sx1": 1}]
    instance = _instance(mixed)
    ttft, tpot, _, status = _serve(instance, scenario, table, mixed.throughput)
    assert (status == DONE).all()
    assert np.nanmax(ttft) < 1.0 and np.nanmax(tpot) <= 0.1  # no queue at the planned rate
    # 10% above the hand-computed bound the queue grows without end (first tokens wait seconds).
    ttft, _, _, _ = _serve(instance, scenario, table, 1.1 * _hand_pipeline_rate())
    assert np.nanmax(ttft) > 3.0


@pytest.mark.parametrize("name", ["core", "extended"])
def test_planned_rate_never_exceeds_the_engines_slowest_stage_bound(name):
    """Every multi-stage template of the real catalogs (Nmax 3) against the engine's own timing:
    with R requests in flight the engine emits R / period(R) tokens/s, R bounded by the KV cache
    its nodes hold, so no pipeline serves more than max_R R / (240 period(R)) req/s."""
    scenario = load_scenario(name).model_copy(update={"max_nodes": 3})
    templates = [t for t in build_library(scenario, use_cache=False).all() if len(t.stages) > 1]
    assert templates
    need = scenario.perf.input_tokens + scenario.perf.output_tokens
    for template in templates:
        model = engine_model(_instance(template), scenario)
        running = np.arange(1, min(model.max_running, int(model.kv_tokens // need)) + 1)
        bound = (running / (scenario.perf.output_tokens * model.period_s[running])).max()
        assert template.throughput <= bound * (1 + 1e-9), template.key
