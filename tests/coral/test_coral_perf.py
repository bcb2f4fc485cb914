"""The planner's performance model: a planned batch fits the memory a pipeline really needs."""

import pytest

from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.perf import LayerShape, NodeRates, batch_table
from redundancy.coral.planner.plan import plan

# Qwen3-32B (66 GB) fits only across two A100-40x1 nodes (GCP a2-highgpu-1g), whose KV room is
# then tight.
TIGHT = {
    "name": "tight",
    "models": {"Qwen3-32B": 1.0},
    "gpus": ["A100-40"],
    "gpus_per_node": [1],
    "regions": ["gcp-us-central1"],
    "max_nodes": 2,
}


@pytest.mark.parametrize("source", [TIGHT, "core"])
def test_planned_batch_fits_the_pipelines_in_flight_microbatches(source):
    """On every node of every planned instance, S microbatches of its batch fit beside it."""
    scenario = load_scenario(source).model_copy(update={"max_nodes": 2})
    result = plan(scenario, use_cache=False)
    perf, configs = scenario.perf, {c.name: c for c in scenario.configs}
    context = perf.input_tokens + perf.output_tokens
    assert any(len(inst.stages) > 1 for inst in result.instances)
    for inst in result.instances:
        model = next(m for m in scenario.models if m.name == inst.model)
        shape, stages = LayerShape.of(model, perf), len(inst.stages)
        for stage in inst.stages:
            j = stage.layer_end - stage.layer_start
            for name in stage.nodes:
                batch = batch_table(model, [configs[name]], perf, stages)[stages, 0, j]
                in_flight = stages * batch  # one microbatch per stage circulates
                need = j * (shape.weight_bytes + in_flight * context * shape.kv_bytes_per_token)
                assert batch >= 1 and need <= NodeRates.of(configs[name], perf).memory_bytes


def test_communication_switch_drops_exactly_the_tp_all_reduce():
    """A PCIe L4x4 node (calibrated) decoding a batch of 32 for Llama3-70B (hidden 8192) pays two
    ring all-reduces per layer: 2 x (92.19 us + 2 x 3/4 x 32 x 16384 B / 4.589 GB/s) = 0.5271 ms;
    ``communication: false`` removes exactly that and nothing else."""
    import numpy as np

    from redundancy.coral.planner.perf import roofline_decode_ms

    spec = {"name": "tp", "models": {"Llama3-70B": 1}, "gpus": ["L4"], "gpus_per_node": [4],
            "regions": ["gcp-us-central1"]}  # fmt: skip
    on = load_scenario(spec)
    off = load_scenario(spec | {"perf": {"communication": False}})
    (config,) = on.configs
    assert config.interconnect == "PCIe"
    shape = LayerShape.of(on.models[0], on.perf)
    with_tp = roofline_decode_ms(shape, NodeRates.of(config, on.perf), on.perf, np.array([32.0]))
    without = roofline_decode_ms(shape, NodeRates.of(config, off.perf), off.perf, np.array([32.0]))
    expected = 1e3 * 2 * (92.1901e-6 + 2 * 3 / 4 * 32 * 2 * 8192 / 4.589e9)
    assert expected == pytest.approx(0.5271, abs=1e-4)
    assert with_tp[0] - without[0] == pytest.approx(expected, rel=1e-9)
    assert on.template_key() != off.template_key()  # templates built without it are not reused
