"""Simulator invariants: hand-computable engine cases, conservation, monotonicity, baselines."""

import numpy as np
import pytest
from conftest import toy_spec
from typer.testing import CliRunner

from redundancy.coral.baselines.planners import PLANNERS, homo_planner
from redundancy.coral.cli import app
from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.sim.engine import DONE, TIMED_OUT, engine_model, run_engine
from redundancy.coral.sim.simulator import SimConfig, simulate
from redundancy.coral.sim.workload import Trace, synthetic_trace
from redundancy.errors import ParameterError


@pytest.fixture(scope="module")
def core():
    return load_scenario("core").model_copy(update={"max_nodes": 2})


@pytest.fixture(scope="module")
def homo(core):
    return homo_planner(core)


def _fixed(plan):
    return lambda scenario, previous: plan


def test_lone_request_latency_equals_the_model(core, homo):
    inst = homo.instances[0]
    model = engine_model(inst, core)
    arrival = np.array([1.0, 500.0])
    inp, out = np.array([750, 300]), np.array([240, 10])
    ttft, tpot, finish, status = run_engine(model, arrival, inp, out)
    latency, _ = model.prefill_s(inp.astype(float))
    assert np.all(status == DONE)
    assert np.allclose(ttft, latency)
    assert np.allclose(tpot, model.period_s[1])
    assert np.allclose(finish, arrival + latency + (out - 1) * model.period_s[1])
    spec = next(m for m in core.models if m.name == inst.model)
    assert ttft[0] <= spec.slo.prefill_ms / 1e3 and tpot[0] <= spec.slo.decode_ms / 1e3


def test_overload_queues_and_drops_but_conserves(core, homo):
    model = engine_model(homo.instances[0], core)
    n = 3000
    arrival = np.linspace(0, 30, n)  # 100 req/s on one instance
    inp, out = np.full(n, 750), np.full(n, 240)
    ttft, _, finish, status = run_engine(model, arrival, inp, out, max_queue_s=5.0)
    done = status == DONE
    assert np.all(done | (status == TIMED_OUT))
    assert (~done).sum() > 0
    assert np.all(np.isfinite(finish[done])) and np.all(np.isnan(finish[~done]))
    assert np.nanmax(ttft) > 1.0  # queueing


def test_simulation_conserves_requests_and_bounds_goodput(core):
    trace = synthetic_trace(core.demand, 900, seed=4)
    result = simulate(core, trace, homo_planner, config=SimConfig(epoch_s=300))
    rows = result.per_model()
    assert sum(r["requests"] for r in rows.values()) == len(trace)
    for row in rows.values():
        assert row["completed"] + row["dropped"] == row["requests"]
        assert row["goodput_tps"] <= row["throughput_tps"] + 1e-9
        assert 0 <= row["attainment"] <= 1
    assert np.all(result.status[result.met] == DONE)
    line = result.timeline()
    assert len(line["t"]) == 15  # 900 s in 60 s windows
    assert line["cost_per_hour"].mean() == pytest.approx(result.cost_per_hour, rel=1e-6)


def test_no_instance_means_dropped(core, homo):
    trace = synthetic_trace(core.demand, 120, seed=1)
    empty = homo.model_copy(update={"instances": []})
    result = simulate(core, trace, _fixed(empty))
    assert result.attainment() == 0 and result.cost == 0
    assert all(r["dropped"] == r["requests"] for r in result.per_model().values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_more_capacity_never_lowers_attainment(core, homo, seed):
    trace = synthetic_trace(core.demand, 600, seed=seed)
    previous = -1.0
    for copies in (1, 2, 3):
        bigger = homo.model_copy(update={"instances": homo.instances * copies})
        result = simulate(core, trace, _fixed(bigger))
        assert result.attainment() >= previous - 1e-12
        previous = result.attainment()
    assert previous > 0.9


def test_replanning_drains_and_delays(core, homo):
    trace = synthetic_trace(core.demand, 720, seed=5)
    plans = iter([homo, homo.model_copy(update={"instances": homo.instances * 2})])
    result = simulate(core, trace, lambda s, p: next(plans), config=SimConfig(epoch_s=360))
    late = [r for r in result.fleet if r.launch == 360]
    assert len(late) == len(homo.instances)
    assert all(r.ready == 360 + SimConfig().init_delay_s for r in late)


def test_coral_is_never_costlier_than_a_baseline_at_equal_demand_met():
    rng = np.random.default_rng(7)
    for _ in range(5):
        limits = {"L4x1": 4, "L40Sx1": 3, "L4x2": 3, "L40Sx2": 2}
        availability = {c: int(rng.integers(0, n)) for c, n in limits.items()}
        spec = toy_spec(float(rng.uniform(0.5, 3)), float(rng.uniform(0.5, 2)), availability)
        scenario = load_scenario(spec)
        try:
            coral = PLANNERS["coral"](scenario, {})
        except ParameterError:
            continue
        for name, planner in PLANNERS.items():
            if name in ("cauchy", "helix"):  # other deployment forms: not a Coral subproblem
                continue
            other = planner(scenario, {})
            if other.mode == "min_cost" and coral.mode == "min_cost":
                assert coral.cost_per_hour <= other.cost_per_hour + 1e-6, name


def test_simulate_rejects_unknown_models(core):
    trace = Trace(["nope"], np.zeros(1), np.zeros(1, dtype=np.int64), np.ones(1), np.ones(1))
    with pytest.raises(ParameterError, match="nope"):
        simulate(core, trace, homo_planner)


def test_cli_compare_and_simulate(tmp_path):
    runner = CliRunner()
    args = ["compare", "--max-nodes", "2", "--duration", "120", "--planners", "homo,melange"]
    out = runner.invoke(app, [*args, "--plot", str(tmp_path / "c.png")])
    assert out.exit_code == 0, out.output
    assert "melange" in out.output and (tmp_path / "c.png").stat().st_size > 0
    out = runner.invoke(app, ["simulate", "--planner", "homo", "--duration", "60"])
    assert out.exit_code == 0 and "attainment" in out.output
    bad = runner.invoke(app, ["compare", "--planners", "nope", "--duration", "60"])
    assert isinstance(bad.exception, ParameterError)
    shed = ["simulate", "--planner", "homo", "--duration", "60", "--admission", "0.5"]
    out = runner.invoke(app, shed)
    assert out.exit_code == 0
    dropped = [int(line.split(",")[1].split()[0]) for line in out.output.splitlines()[1:]]
    assert len(dropped) == 3 and max(dropped) > 0  # half the planned rate sheds requests
    bad = runner.invoke(app, [*shed[:-1], "0"])
    assert isinstance(bad.exception, ParameterError) and "--admission" in str(bad.exception)
    bad = runner.invoke(app, [*args, "--time-limit", "0"])
    assert isinstance(bad.exception, ParameterError) and "time limit" in str(bad.exception)


def test_admission_control_sheds_the_excess_and_keeps_the_rest_within_slo(core, homo):
    """Twice the planned demand: admitting at the planned rate rejects the excess, nearly every
    admitted request meets the SLO, and the most overloaded model's goodput rises."""
    doubled = core.model_copy(update={"demand": {m: 2 * d for m, d in core.demand.items()}})
    trace = synthetic_trace(doubled.demand, 600, seed=5)
    plain = simulate(doubled, trace, _fixed(homo), duration_s=600)
    shed = simulate(doubled, trace, _fixed(homo), config=SimConfig(admission=1.0), duration_s=600)
    before, after = plain.per_model(), shed.per_model()
    for name, row in after.items():
        capacity = sum(i.throughput_rps for i in homo.instances if i.model == name)
        admitted = row["requests"] - row["dropped"]
        assert admitted <= capacity * (600 + 10) + 1  # rate x time + the 10 s burst
        assert row["attainment"] * row["requests"] >= 0.95 * admitted
    worst = min(before, key=lambda m: before[m]["attainment"])
    assert after[worst]["goodput_tps"] > 1.3 * before[worst]["goodput_tps"]
    assert shed.goodput() > plain.goodput()
    assert len(shed.met) == len(trace)
