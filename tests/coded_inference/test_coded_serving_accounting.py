"""No query is ever silently lost: every query sent is answered or failed with a reason.

The reference in each test is independent of the frontend: the deployed model run directly on
each query (linear models, so decoding is exact), the query ids that were sent, and the
coding groups as the order of arrival defines them.
"""

import random
from concurrent.futures import Future

import pytest
import torch
from test_coded_serving_frontend import QUIET, linear_models, own_outputs, queries

from redundancy.coded_inference.serving import realtime
from redundancy.coded_inference.serving.config import (
    STRATEGIES,
    Crash,
    FaultConfig,
    LatencyConfig,
    ServingConfig,
    Slowdown,
)
from redundancy.coded_inference.serving.frontend import Frontend, make_layout
from redundancy.coded_inference.serving.realtime import serve_realtime
from redundancy.coded_inference.serving.simulation import simulate

torch.set_num_threads(1)
# the load of the issue: ~700 qps, 10% slow requests, slow periods, least-outstanding routing
UNDER_LOAD = LatencyConfig(slow_prob=0.1, hog_factor=5, hog_ms=100, hog_gap_ms=500)


def _check_every_query_answered_once_and_right(result, models, sent: int) -> None:
    ids = sorted(a.query_id for a in (*result.answers, *result.failed))
    assert ids == list(range(sent)), "a query was lost or answered twice"
    counts = result.accounting()
    assert counts["exact"] + counts["approximate"] + counts["failed"] == sent
    assert counts["unaccounted"] == 0
    truth = own_outputs(models, result.inputs)
    with torch.no_grad():
        backup = models.cheap(result.inputs)
    for a in result.answers:  # linear models: decoded outputs are exact too
        expected = backup if a.source == "backup" else truth
        torch.testing.assert_close(a.output, expected[a.query_id], atol=1e-4, rtol=1e-4)


def test_the_issues_crash_under_load_loses_no_query():
    models, x = linear_models(), queries()
    crash = FaultConfig(crashes=(Crash(instance=7, at_ms=278.06),))
    config = ServingConfig(rate_qps=700, queries=400, seed=1002, latency=UNDER_LOAD, faults=crash)
    result = simulate(config, models, x)
    _check_every_query_answered_once_and_right(result, models, 400)
    assert not result.failed and result.lost_tasks > 0


def test_sweep_of_seeded_crashes_under_load_loses_no_query_for_any_strategy():
    """100 seeded runs: one or two crashes (some restarting) at random times under load (a
    longer sweep: ``benchmarks/parm_serving_bench.py --loss-sweep N``)."""
    models, x = linear_models(), queries()
    for run in range(100):
        rng = random.Random(run)
        strategy = STRATEGIES[run % len(STRATEGIES)]
        crashes = []
        for instance in rng.sample(range(12), rng.choice((1, 1, 2))):
            at = rng.uniform(0.0, 200.0)
            back = at + rng.uniform(20.0, 200.0) if rng.random() < 0.3 else None
            crashes.append(Crash(instance=instance, at_ms=at, restart_ms=back))
        config = ServingConfig(
            strategy=strategy,
            rate_qps=700,
            queries=160,
            seed=run,
            latency=UNDER_LOAD,
            faults=FaultConfig(crashes=tuple(crashes)),
        )
        result = simulate(config, models, x)
        _check_every_query_answered_once_and_right(result, models, 160)
        # with 11 or 10 healthy instances left, every query is answered, none fails
        assert not result.failed, (run, strategy, [a.reason for a in result.failed])


def test_members_of_a_coding_group_go_to_distinct_instances_even_when_one_is_idlest():
    models = linear_models()
    frontend = Frontend("parm", make_layout("parm", 8, 2), k=2, code=models.code)
    x = torch.zeros(1, 4, 4)
    # 16 queries: two tasks on each of the 8 deployed instances; then instance 5 finishes both
    sent = [task for _ in range(16) for task in frontend.submit(x, 0.0)[1]]
    deployed = [t for t in sent if t.role == "deployed"]
    assert sorted(t.instance for t in deployed) == sorted(list(range(8)) * 2)
    for task in deployed:
        if task.instance == 5:
            frontend.complete(task.task_id, torch.zeros(5), 0.01)
    # instance 5 is the idlest by two tasks; the next group's two queries arrive together
    group = [t for _ in range(2) for t in frontend.submit(x, 0.02)[1]]
    placed = [t.instance for t in group if t.role == "deployed"]
    assert placed[0] == 5 and placed[1] != 5
    assert [t.role for t in group].count("parity") == 1


def test_a_query_no_instance_can_run_is_failed_at_once_with_the_reason():
    models, x = linear_models(), queries(6)
    every = tuple(Crash(instance=i, at_ms=0.0) for i in range(3))
    config = ServingConfig(
        strategy="none",
        data_instances=2,
        queries=6,
        latency=QUIET,
        faults=FaultConfig(crashes=every),
    )
    result = simulate(config, models, x)
    assert result.answers == [] and len(result.failed) == 6
    for failure in result.failed:
        assert failure.output is None and failure.latency == 0.0
        assert "every deployed instance" in failure.reason and "0, 1, 2" in failure.reason


def test_a_query_past_its_deadline_is_failed_with_the_reason():
    models, x = linear_models(), queries(8)
    # instance 1 runs 100x slower (1 s per query): its queries miss the 50 ms deadline
    slow = FaultConfig(slowdowns=(Slowdown(instance=1, start_ms=0, end_ms=1e6, factor=100),))
    config = ServingConfig(
        strategy="none",
        data_instances=2,
        queries=8,
        rate_qps=50,
        latency=QUIET,
        faults=slow,
        routing="round-robin",
        deadline_ms=50.0,
    )
    result = simulate(config, models, x)
    _check_every_query_answered_once_and_right(result, models, 8)
    # round robin over 3 instances: queries 1, 4, 7 land on instance 1
    assert sorted(a.query_id for a in result.failed) == [1, 4, 7]
    for failure in result.failed:
        assert failure.latency == pytest.approx(0.05) and "0.05 s" in failure.reason


class _HangingExecutor(realtime.ThreadExecutor):
    """Instance 1 is unreachable: its calls never complete (as a stuck Ray actor's did)."""

    def submit(self, task, delay):
        if task.instance == 1:
            return Future()
        return super().submit(task, delay)


def test_real_time_queries_on_an_unreachable_instance_are_failed_by_their_deadline(monkeypatch):
    monkeypatch.setattr(realtime, "ThreadExecutor", _HangingExecutor)
    models, x = linear_models(), queries(12)
    config = ServingConfig(
        strategy="none",
        data_instances=2,
        queries=12,
        rate_qps=100,
        latency=QUIET,
        routing="round-robin",
        deadline_ms=300.0,
    )
    result = serve_realtime(config, models, x, max_seconds=5)
    _check_every_query_answered_once_and_right(result, models, 12)
    assert sorted(a.query_id for a in result.failed) == [1, 4, 7, 10]
    assert all("no answer within 0.3 s" in a.reason for a in result.failed), result.failed
    assert all(a.latency == pytest.approx(0.3, abs=0.1) for a in result.failed)


def test_real_time_crash_under_hedging_and_cancellation_accounts_for_every_query():
    models, x = linear_models(), queries(40)
    crash = FaultConfig(crashes=(Crash(instance=1, at_ms=0.0),))
    config = ServingConfig(
        strategy="equal-resources",
        data_instances=2,
        queries=40,
        rate_qps=200,
        latency=QUIET.model_copy(update={"service_ms": 2.0}),
        faults=crash,
        routing="round-robin",
        hedge_after_ms=1.0,
    )
    result = serve_realtime(config, models, x, max_seconds=5)
    _check_every_query_answered_once_and_right(result, models, 40)
    assert not result.failed and result.lost_tasks > 0
