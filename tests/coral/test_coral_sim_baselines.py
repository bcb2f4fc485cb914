"""Cauchy (disaggregated) and Helix (max-flow) baselines, draining, profiled engine timing."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import toy_spec

from redundancy.coral.baselines.cauchy import cauchy_planner, combos
from redundancy.coral.baselines.helix import helix_planner
from redundancy.coral.baselines.planners import homo_planner
from redundancy.coral.compare import compare, comparison_scenario, scenario_profile
from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.perf import ProfileTable
from redundancy.coral.sim.engine import DONE, engine_model, run_engine
from redundancy.coral.sim.simulator import SimConfig, simulate
from redundancy.coral.sim.workload import Trace, synthetic_trace
from redundancy.errors import ParameterError

CLI = str(Path(sys.executable).with_name("redundancy"))


@pytest.fixture(scope="module")
def toy():
    return load_scenario(toy_spec(2.0, 1.0, {"L4x1": 6, "L40Sx1": 4, "L4x2": 3}))


def test_cauchy_plan_is_disaggregated_and_meets_demand(toy):
    plan = cauchy_planner(toy)
    assert plan.mode == "min_cost" and plan.instances
    for inst in plan.instances:
        assert inst.prefill_nodes and inst.kv_link_gbps > 0
    for outcome in plan.models:
        assert outcome.capacity_rps >= outcome.demand_rps - 1e-9
    spec = toy.models[0]
    assert all(c.throughput > 0 for c in combos(spec, toy, 25.0))


def test_disaggregated_lone_request_pays_the_kv_transfer(toy):
    inst = cauchy_planner(toy).instances[0]
    fast = engine_model(inst, toy)
    slow = engine_model(inst.model_copy(update={"kv_link_gbps": inst.kv_link_gbps / 10}), toy)
    arrival, inp, out = np.array([0.0]), np.array([1000]), np.array([50])
    a, tpot_a, _, status = run_engine(fast, arrival, inp, out)
    b, tpot_b, _, _ = run_engine(slow, arrival, inp, out)
    spec = next(m for m in toy.models if m.name == inst.model)
    kv = 1000 * spec.layers * 2 * spec.kv_heads * spec.head_dim * spec.bytes_per_param
    expected = kv * 8 / (inst.kv_link_gbps * 1e9 / 10) - kv * 8 / (inst.kv_link_gbps * 1e9)
    assert status[0] == DONE and b[0] - a[0] == pytest.approx(expected, rel=1e-6)
    assert tpot_a[0] == pytest.approx(tpot_b[0])


def test_helix_max_flow_uses_the_pool_and_chains_layers():
    # 2 req/s: with calibrated (measured) per-layer times the rounded flow paths of 4 req/s fall
    # short of 4 (see docs/coral.md); the structure checked here is the same.
    scenario = comparison_scenario("helix-cluster")
    scenario = scenario.model_copy(update={"demand": {"Llama2-70B": 2.0}})
    plan = helix_planner(scenario)
    assert plan.mode == "min_cost" and plan.models[0].capacity_rps >= 2 - 1e-9
    pool = scenario.regions[0].availability
    used: dict[str, int] = {}
    for inst in plan.instances:
        assert inst.stages[0].layer_start == 0 and inst.stages[-1].layer_end == 80
        for prev, nxt in zip(inst.stages, inst.stages[1:], strict=False):
            assert prev.layer_end == nxt.layer_start
        for stage in inst.stages:
            for c, n in stage.nodes.items():
                used[c] = used.get(c, 0) + n
    assert all(n <= pool[c] for c, n in used.items())
    with pytest.raises(ParameterError, match="one model"):
        helix_planner(load_scenario(toy_spec()))


def test_helix_cluster_comparison_runs():
    scenario = comparison_scenario("helix-cluster")
    out = {o.planner: o for o in compare(scenario, duration_s=240)}
    assert set(out) == {"coral", "helix"}
    per_token = {n: o.cost_per_hour / max(o.goodput_tps, 1e-9) for n, o in out.items()}
    assert per_token["coral"] <= per_token["helix"]  # $ per goodput token/s


def test_draining_instances_hold_nodes_in_the_next_plan(toy):
    base = homo_planner(toy)
    seen = []

    def planner(scenario, previous):
        seen.append(dict(scenario.regions[0].availability))
        return base if len(seen) % 2 else base.model_copy(update={"instances": []})

    n = 40  # long answers, so the first plan's instances are still decoding two epochs later
    arrival = np.linspace(0, 9, n)
    trace = Trace(list(toy.demand), arrival, np.arange(n) % 2, np.full(n, 500), np.full(n, 3000))
    config = SimConfig(epoch_s=10, max_queue_s=60)
    result = simulate(toy, trace, planner, config=config, duration_s=30)
    drained = [r for r in result.fleet if r.stop == 10 and r.end > 20]
    assert drained, "the first plan's instances should still drain at the third epoch"
    held = sum(sum(s.nodes.values()) for r in drained for s in r.instance.stages)
    assert sum(seen[2].values()) == sum(seen[0].values()) - held


def test_profiled_timing_replaces_the_roofline(toy):
    inst = homo_planner(toy).instances[0]
    table = ProfileTable()
    node = next(iter(inst.stages[0].nodes))
    table.entries[(inst.model, node)] = (np.array([1.0, 64.0]), np.array([2.0, 4.0]), 30.0)
    model = engine_model(inst, toy, table)
    layers = inst.stages[0].layer_end - inst.stages[0].layer_start
    assert model.period_s[1] == pytest.approx(layers * 2.0e-3)
    latency, _ = model.prefill_s(np.array([float(toy.perf.input_tokens)]))
    assert latency[0] == pytest.approx(layers * 30.0e-3)
    trace = synthetic_trace(toy.demand, 60, seed=2)
    result = simulate(toy, trace, lambda s, p: homo_planner(s), duration_s=60, profile=table)
    assert result.attainment() > 0


PROFILE_HEADER = "model,node,batch_size,decode_ms_per_layer,prefill_ms_per_layer\n"


def test_profile_steers_every_planner_and_the_cli(toy, tmp_path):
    """A measured table saying L4x1 is far too slow for Toy-A keeps Toy-A off L4x1 (the roofline
    plan uses it); the CLI takes the table with --profile and rejects names it cannot match."""
    plain = compare(toy, ["coral"], 60, seed=1)[0].result
    assert any(r.instance.template == "Toy-A:1*L4x1" for r in plain.fleet)
    slow = tmp_path / "slow.csv"
    slow.write_text(PROFILE_HEADER + "Toy-A,L4x1,1,50.0,40.0\nToy-A,L4x1,64,90.0,40.0\n")
    table = scenario_profile(slow, toy)
    for outcome in compare(toy, ["coral", "homo", "melange"], 60, seed=1, profile=table):
        used = [r.instance for r in outcome.result.fleet if r.instance.model == "Toy-A"]
        assert used, outcome.planner
        assert all("L4x1" not in s.nodes for i in used for s in i.stages), outcome.planner
        assert outcome.result.attainment() > 0.5
    yaml_path = tmp_path / "toy.yaml"
    yaml_path.write_text(yaml.safe_dump(toy_spec(2.0, 1.0, {"L4x1": 6, "L40Sx1": 4, "L4x2": 3})))
    args = [CLI, "coral", "simulate", str(yaml_path), "--planner", "coral", "--duration", "60"]
    run = subprocess.run([*args, "--profile", str(slow)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Toy-A" in run.stdout
    typo = tmp_path / "typo.csv"
    typo.write_text(PROFILE_HEADER + "Toy-C,L4x1,1,1.0,1.0\n")
    for command in (args, [CLI, "coral", "compare", str(yaml_path), "--duration", "60"]):
        run = subprocess.run([*command, "--profile", str(typo)], capture_output=True, text=True)
        assert run.returncode == 2
        assert "Toy-C" in run.stderr and "not in the scenario" in run.stderr
