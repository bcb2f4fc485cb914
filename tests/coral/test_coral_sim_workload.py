"""Workload generators, trace CSV loaders and availability-over-time (generator and CSV)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.sim.availability import (
    constant_availability,
    fluctuating_availability,
    load_availability,
    save_availability,
)
from redundancy.coral.sim.workload import load_trace, synthetic_trace
from redundancy.errors import ConfigError, ParameterError


def test_conversation_shape_matches_published_means():
    trace = synthetic_trace({"a": 20.0, "b": 10.0}, 1800, seed=3)
    assert abs(trace.input_tokens.mean() - 750) / 750 < 0.08
    assert abs(trace.output_tokens.mean() - 240) / 240 < 0.08
    rates = trace.rates()
    assert abs(rates["a"] - 20) / 20 < 0.1 and abs(rates["b"] - 10) / 10 < 0.15
    assert np.all(np.diff(trace.arrival) >= 0)


def test_bursty_arrivals_are_burstier_than_poisson():
    bursty = synthetic_trace({"a": 10.0}, 3600, seed=1)
    poisson = synthetic_trace({"a": 10.0}, 3600, "poisson", seed=1)
    cv = [np.std(np.diff(t.arrival)) / np.mean(np.diff(t.arrival)) for t in (bursty, poisson)]
    assert cv[0] > 1.5
    assert 0.9 < cv[1] < 1.1


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), rate=st.floats(0.5, 5.0))
def test_generator_is_seeded_and_in_range(seed, rate):
    one = synthetic_trace({"m": rate}, 300, seed=seed)
    two = synthetic_trace({"m": rate}, 300, seed=seed)
    assert np.array_equal(one.arrival, two.arrival)
    assert np.all((one.arrival >= 0) & (one.arrival <= 300))
    assert one.input_tokens.min() >= 1 and one.output_tokens.min() >= 1


def test_generator_rejects_bad_input():
    with pytest.raises(ParameterError, match="demand of m"):
        synthetic_trace({"m": -1.0})
    with pytest.raises(ParameterError, match="shape"):
        synthetic_trace({"m": 1.0}, shape="nope")


def test_azure_csv(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.1805900,396,109\n"
        "2023-11-16 18:15:48.6805900,879,1\n"
    )
    trace = load_trace(path, ["Phi4-14B"])
    assert trace.models == ["Phi4-14B"]
    assert np.allclose(trace.arrival, [0.0, 2.0, 3.5])
    assert trace.input_tokens.tolist() == [374, 879, 396]
    assert load_trace(path, rate_scale=2.0).arrival[-1] == pytest.approx(1.75)


def test_burstgpt_csv_maps_models_and_skips_failures(tmp_path):
    path = tmp_path / "burst.csv"
    path.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,472,18,490,Conversation log\n"
        "45,GPT-4,1087,0,1087,Conversation log\n"
        "118,GPT-4,417,276,693,API log\n"
    )
    trace = load_trace(path, ["small", "large"])
    assert len(trace) == 2
    assert trace.model.tolist() == [0, 1]
    assert np.allclose(trace.arrival, [0, 113])


def test_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46.1,10,5\n"
                    "2023-11-16 18:15:47.1,ten,5\n")  # fmt: skip
    with pytest.raises(ConfigError, match="line 3"):
        load_trace(path)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="neither Azure"):
        load_trace(tmp_path / "other.csv")


def test_fluctuating_availability_stays_in_band_and_round_trips(tmp_path):
    scenario = load_scenario("core")
    trace = fluctuating_availability(scenario, 1800, 360, low=0.5, seed=2)
    base = constant_availability(scenario).counts[0]
    assert trace.counts.shape == (5, len(base))
    assert np.all(trace.counts <= base) and np.all(trace.counts >= np.floor(0.5 * base))
    assert not np.all(trace.counts == trace.counts[0])
    save_availability(trace, tmp_path / "avail.csv")
    again = load_availability(tmp_path / "avail.csv", scenario)
    assert again.keys == sorted(trace.keys)
    assert again.at(400) == trace.at(400)
    applied = trace.apply(scenario, 800)
    region = applied.regions[0]
    assert region.availability["L4x1"] == trace.at(800)[(region.name, "L4x1")]


def test_availability_csv_errors_name_the_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("time_s,region,config,available\n0,r,L4x1,3\n60,r,L4x1,-1\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_availability(path)
    path.write_text("time_s,region,config,available\n0,r,L4x1,3\n360,r,L4x1,1\n")
    trace = load_availability(path)
    assert trace.at(10) == {("r", "L4x1"): 3} and trace.at(400) == {("r", "L4x1"): 1}
