"""The coded-serving frontend on the deterministic simulated backend: exact and fast."""

import copy

import numpy as np
import pytest
import torch

from redundancy.coded_inference.codes import AdditionEncoder, ParityCode
from redundancy.coded_inference.models import build_cheap_model, build_model
from redundancy.coded_inference.serving.config import (
    STRATEGIES,
    Crash,
    FaultConfig,
    LatencyConfig,
    ServingConfig,
    Slowdown,
)
from redundancy.coded_inference.serving.frontend import Frontend, make_layout
from redundancy.coded_inference.serving.metrics import markdown, summarize
from redundancy.coded_inference.serving.models import ServingModels
from redundancy.coded_inference.serving.simulation import simulate
from redundancy.errors import ConfigError, ParameterError

torch.set_num_threads(1)
SHAPE = (1, 4, 4)
QUIET = LatencyConfig(jitter=0.0, slow_prob=0.0)


def linear_models(k: int = 2) -> ServingModels:
    """A random linear deployed model and its exact parity model: F_P(sum x) = sum F(x)."""
    torch.manual_seed(0)
    deployed = build_model("linear", SHAPE, 5).eval()
    parity = copy.deepcopy(deployed)
    with torch.no_grad():
        parity.net[-1].bias.mul_(k)
    code = ParityCode(deployed, parity, AdditionEncoder(k, SHAPE))
    return ServingModels(code, build_cheap_model(SHAPE, 5, k).eval())


def queries(n: int = 64) -> torch.Tensor:
    return torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(1))


def own_outputs(models: ServingModels, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return models.code.deployed(x)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_slowdowns_every_answer_is_the_deployed_models_own(strategy):
    models, x = linear_models(), queries()
    config = ServingConfig(strategy=strategy, queries=64, rate_qps=100, latency=QUIET)
    result = simulate(config, models, x)
    assert sorted(a.query_id for a in result.answers) == list(range(64))
    assert not any(a.approximate for a in result.answers)
    got = torch.stack([a.output for a in sorted(result.answers, key=lambda a: a.query_id)])
    torch.testing.assert_close(got, own_outputs(models, x), atol=1e-6, rtol=1e-6)


def test_stopped_instance_queries_are_decoded_exactly_once_with_the_right_value():
    models, x = linear_models(), queries()
    faults = FaultConfig(crashes=(Crash(instance=3, at_ms=0.0),))
    config = ServingConfig(
        strategy="parm",
        queries=64,
        rate_qps=100,
        latency=QUIET,
        faults=faults,
        routing="round-robin",
    )
    result = simulate(config, models, x)
    ids = [a.query_id for a in result.answers]
    assert sorted(ids) == list(range(64)) and len(set(ids)) == len(ids)
    decoded = [a for a in result.answers if a.source == "decoded"]
    # round robin over 8 deployed instances: instance 3 gets queries 3, 11, 19, ...
    assert sorted(a.query_id for a in decoded) == list(range(3, 64, 8))
    truth = own_outputs(models, x)
    for a in decoded:
        torch.testing.assert_close(a.output, truth[a.query_id], atol=1e-5, rtol=1e-5)
    assert result.lost_tasks == 8


def test_a_straggler_is_answered_by_decoding_before_its_own_output():
    models, x = linear_models(), queries(16)
    slow = FaultConfig(slowdowns=(Slowdown(instance=0, start_ms=0, end_ms=1e6, factor=50),))
    config = ServingConfig(
        strategy="parm", queries=16, rate_qps=50, latency=QUIET, faults=slow, routing="round-robin"
    )
    result = simulate(config, models, x)
    by_id = {a.query_id: a for a in result.answers}
    assert len(by_id) == len(result.answers) == 16
    truth = own_outputs(models, x)
    for q in (0, 8):
        assert by_id[q].source == "decoded" and by_id[q].latency < 0.5
        torch.testing.assert_close(by_id[q].output, truth[q], atol=1e-5, rtol=1e-5)
    assert all(by_id[q].source == "own" for q in by_id if q % 8)


def test_without_redundancy_a_stopped_instance_s_queries_are_re_sent_elsewhere():
    models, x = linear_models(), queries()
    faults = FaultConfig(crashes=(Crash(instance=3, at_ms=0.0),))
    base = dict(queries=64, rate_qps=100, latency=QUIET, faults=faults, routing="round-robin")
    truth = own_outputs(models, x)
    for strategy in ("none", "equal-resources"):
        result = simulate(ServingConfig(strategy=strategy, **base), models, x)
        assert sorted(a.query_id for a in result.answers) == list(range(64))
        # round robin over 12 instances: instance 3 gets queries 3, 15, 27, ...
        retried = sorted(a.query_id for a in result.answers if a.source == "retry")
        assert retried == list(range(3, 64, 12)) and result.lost_tasks == len(retried)
        for a in result.answers:
            assert not a.approximate
            torch.testing.assert_close(a.output, truth[a.query_id], atol=1e-6, rtol=1e-6)
        for a in result.answers:
            if a.source == "retry":  # re-sent when the instance refused it: no hedge wait
                assert a.latency == pytest.approx(0.010)


def test_crash_and_restart_re_sends_only_the_work_in_the_window():
    models, x = linear_models(), queries()
    faults = FaultConfig(crashes=(Crash(instance=0, at_ms=100.0, restart_ms=300.0),))
    config = ServingConfig(
        strategy="none",
        queries=64,
        rate_qps=100,
        latency=QUIET,
        faults=faults,
        routing="round-robin",
    )
    result = simulate(config, models, x)
    arrivals = {a.query_id: a.arrival for a in result.answers}
    assert sorted(arrivals) == list(range(64))
    retried = {a.query_id for a in result.answers if a.source == "retry"}
    assert retried and all(q % 12 == 0 and 0.1 <= arrivals[q] < 0.3 for q in retried)
    assert any(q % 12 == 0 and arrivals[q] > 0.3 for q in set(arrivals) - retried)


def test_cheap_backup_answers_are_marked_approximate():
    models, x = linear_models(), queries()
    slow = FaultConfig(slowdowns=(Slowdown(instance=1, start_ms=0, end_ms=1e6, factor=20),))
    config = ServingConfig(
        strategy="cheap-backup", queries=64, rate_qps=100, latency=QUIET, faults=slow
    )
    result = simulate(config, models, x)
    assert len(result.answers) == 64
    backups = [a for a in result.answers if a.source == "backup"]
    assert backups and all(a.approximate for a in backups)
    with torch.no_grad():
        cheap = models.cheap(x)
    for a in backups:
        torch.testing.assert_close(a.output, cheap[a.query_id])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_uses_the_same_total_instance_count(strategy):
    for k, m in ((2, 8), (4, 8), (3, 9)):
        assert len(make_layout(strategy, m, k)) == m + m // k


def test_heavy_tailed_load_is_deterministic_and_parm_cuts_the_tail():
    models, x = linear_models(), queries()
    latency = LatencyConfig(slow_prob=0.03, slow_scale_ms=40.0)
    reports = {}
    for strategy in ("none", "parm"):
        config = ServingConfig(strategy=strategy, queries=3000, rate_qps=300, latency=latency)
        first, again = simulate(config, models, x), simulate(config, models, x)
        assert np.array_equal(first.latencies(), again.latencies())
        reports[strategy] = summarize(first, models.code.deployed)
    assert reports["parm"].answered == 3000
    assert reports["parm"].p999_ms < reports["none"].p999_ms
    assert 0 < reports["parm"].reconstructed < 0.3
    assert reports["parm"].approx_agreement == 1.0  # linear model: decoding is exact
    assert "| parm |" in markdown(list(reports.values()))


def test_bad_settings_raise_redundancy_errors():
    models = linear_models()
    with pytest.raises(ParameterError):
        make_layout("parm", 7, 2)
    with pytest.raises(ParameterError):
        Frontend("parm", make_layout("parm", 8, 2), k=2, code=None)
    with pytest.raises(ParameterError):
        Frontend("parm", make_layout("parm", 8, 4), k=4, code=models.code)
    from redundancy.coded_inference.config import parse_config

    with pytest.raises(ConfigError):
        parse_config({"data_instances": 7}, ServingConfig)
    with pytest.raises(ConfigError):
        parse_config({"faults": {"crashes": [{"instance": 99}]}}, ServingConfig)


def test_a_partial_group_is_padded_after_its_timeout_and_still_decodes_exactly():
    models, x = linear_models(), queries(1)
    faults = FaultConfig(crashes=(Crash(instance=0, at_ms=0.0),))
    config = ServingConfig(
        queries=1, latency=QUIET, faults=faults, group_timeout_ms=3.0, approx_after_ms=0.0
    )
    (answer,) = simulate(config, models, x).answers
    assert answer.source == "decoded"
    assert answer.latency == pytest.approx(0.003 + 0.010)  # group timeout, then parity service
    torch.testing.assert_close(answer.output, own_outputs(models, x)[0], atol=1e-5, rtol=1e-5)


def test_hedged_requests_occupy_instances_and_queue_like_any_request():
    models, x = linear_models(), queries()
    # 12 instances x 100 qps each = 1200 qps capacity; hedging every query doubles 900 qps
    base = dict(queries=2000, rate_qps=900, latency=QUIET)
    none = summarize(simulate(ServingConfig(strategy="none", **base), models, x), models.cheap)
    every = ServingConfig(strategy="equal-resources", hedge_after_ms=0.001, **base)
    hedged = summarize(simulate(every, models, x), models.cheap)
    assert none.median_ms < 15.0 and hedged.median_ms > 10 * none.median_ms


def test_slow_periods_are_seeded_and_cover_the_configured_share_of_time():
    from redundancy.coded_inference.serving.faults import LatencyModel

    latency = QUIET.model_copy(update={"hog_factor": 4.0, "hog_ms": 100.0, "hog_gap_ms": 900.0})
    times = np.arange(0.0, 200.0, 0.01)

    def share(seed: int) -> list[float]:
        model = LatencyModel(latency, 2, seed=seed)
        return [np.mean([model.hogged(i, t) for t in times]) for i in range(2)]

    assert share(0) == share(0) != share(1)
    assert all(0.05 < s < 0.15 for s in share(0))
    model = LatencyModel(latency, 1, seed=0)
    hog = next(t for t in times if model.hogged(0, t))
    assert model.service(0, "deployed", hog) == pytest.approx(0.04)
    assert model.service(0, "deployed", 0.0) == pytest.approx(0.01)
