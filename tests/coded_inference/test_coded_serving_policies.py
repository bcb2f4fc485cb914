"""Primary routing, cancellation of useless queued work, and real CPU-hog processes."""

import os
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_coded_serving_frontend import QUIET, SHAPE, linear_models, own_outputs, queries

from redundancy.coded_inference.serving.config import (
    STRATEGIES,
    Crash,
    FaultConfig,
    LatencyConfig,
    ServingConfig,
    Slowdown,
)
from redundancy.coded_inference.serving.frontend import Frontend, make_layout
from redundancy.coded_inference.serving.metrics import summarize
from redundancy.coded_inference.serving.realtime import make_driver
from redundancy.coded_inference.serving.simulation import simulate
from redundancy.errors import ParameterError

torch.set_num_threads(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_least_outstanding_routing_stops_sending_primaries_to_a_busy_instance():
    layout = make_layout("none", 8, 2)
    x = torch.zeros(*SHAPE)
    for routing, expect_busy_again in (("round-robin", True), ("least-outstanding", False)):
        frontend = Frontend("none", layout, routing=routing)
        first = [frontend.submit(x, 0.0)[1][0] for _ in range(12)]
        assert sorted(t.instance for t in first) == list(range(12))  # ties: round-robin order
        for task in first[1:]:  # every instance but 0 finishes its task
            frontend.complete(task.task_id, torch.zeros(5), 0.01)
        later = [frontend.submit(x, 0.02)[1][0].instance for _ in range(11)]
        assert (0 in later) == expect_busy_again
    with pytest.raises(ParameterError):
        Frontend("none", layout, routing="random")  # type: ignore[arg-type]


def test_least_outstanding_routing_shrinks_the_tail_of_plain_replicas_under_a_slow_instance():
    models, x = linear_models(), queries()
    slow = FaultConfig(slowdowns=(Slowdown(instance=2, start_ms=0, end_ms=1e6, factor=8),))
    p99 = {}
    for routing in ("round-robin", "least-outstanding"):
        config = ServingConfig(
            strategy="none", queries=1500, rate_qps=400, latency=QUIET, faults=slow, routing=routing
        )
        p99[routing] = summarize(simulate(config, models, x), models.code.deployed).p99_ms
    assert p99["round-robin"] > 5 * p99["least-outstanding"]


@settings(max_examples=8, deadline=None)
@given(
    strategy=st.sampled_from(STRATEGIES),
    routing=st.sampled_from(["round-robin", "least-outstanding"]),
    rate=st.sampled_from([200.0, 600.0]),
    seed=st.integers(0, 50),
)
def test_cancellation_never_loses_or_duplicates_an_answer(strategy, routing, rate, seed):
    models, x = linear_models(), queries()
    latency = LatencyConfig(slow_prob=0.05, hog_factor=5.0, hog_ms=100.0, hog_gap_ms=500.0)
    base = dict(
        strategy=strategy, queries=300, rate_qps=rate, latency=latency, seed=seed, routing=routing
    )
    plain = simulate(ServingConfig(cancel=False, **base), models, x)
    cancelled = simulate(ServingConfig(cancel=True, **base), models, x)
    for result in (plain, cancelled):
        ids = [a.query_id for a in result.answers]
        assert sorted(ids) == list(range(300))
        exact = [a for a in result.answers if not a.approximate]
        truth = own_outputs(models, result.inputs)
        for a in exact:
            torch.testing.assert_close(a.output, truth[a.query_id], atol=1e-5, rtol=1e-5)
    assert plain.cancelled_tasks == 0
    if strategy == "none":
        assert cancelled.cancelled_tasks == 0  # nothing redundant to cancel


def test_cancelling_queued_duplicates_cuts_but_does_not_remove_the_cost_of_early_hedges():
    models, x = linear_models(), queries()
    # hedging after 2 ms (below the 10 ms service time) duplicates nearly every query; at
    # 800 qps on 12 instances that overloads the cluster whether or not queued copies are dropped
    latency = LatencyConfig(jitter=0.3, slow_prob=0.0)
    base = dict(queries=2000, rate_qps=800, latency=latency, strategy="equal-resources")
    early = dict(hedge_after_ms=2.0, **base)
    none = summarize(
        simulate(ServingConfig(**{**base, "strategy": "none"}), models, x), models.cheap
    )
    kept = summarize(simulate(ServingConfig(cancel=False, **early), models, x), models.cheap)
    result = simulate(ServingConfig(cancel=True, **early), models, x)
    dropped = summarize(result, models.cheap)
    assert result.cancelled_tasks > 300
    assert none.median_ms * 5 < dropped.median_ms < kept.median_ms / 1.5


def test_work_per_query_counts_parity_and_hedges():
    """Plain replicas spend one service time per query, ParM about 1 + 1/k, early hedges about 2."""
    models, x = linear_models(), queries()
    base = dict(queries=1000, rate_qps=300, latency=QUIET)
    work = {
        strategy: summarize(
            simulate(ServingConfig(strategy=strategy, hedge_after_ms=3.0, **base), models, x),
            models.cheap,
        ).work_ms
        for strategy in ("none", "parm", "equal-resources")
    }
    assert work["none"] == pytest.approx(10.0)  # no jitter: exactly the 10 ms service time
    assert 14.5 <= work["parm"] <= 16.0  # + one parity query per group of 2 (padded ones too)
    assert work["equal-resources"] >= 19.0  # nearly every query re-sent after 3 ms


def test_parm_cancels_parity_queries_of_groups_already_answered():
    models, x = linear_models(), queries()
    # parity instances (8..11) 30x slower: their queue grows, groups finish without them
    slow = tuple(Slowdown(instance=i, start_ms=0, end_ms=1e6, factor=30) for i in range(8, 12))
    base = dict(queries=600, rate_qps=300, latency=QUIET, faults=FaultConfig(slowdowns=slow))
    kept = simulate(ServingConfig(cancel=False, **base), models, x)
    dropped = simulate(ServingConfig(cancel=True, **base), models, x)
    assert kept.cancelled_tasks == 0 and dropped.cancelled_tasks > 200
    for result in (kept, dropped):
        assert sorted(a.query_id for a in result.answers) == list(range(600))
        assert all(a.source == "own" for a in result.answers)


def test_a_stopped_instance_is_decoded_around_and_least_outstanding_then_skips_it():
    models, x = linear_models(), queries()
    faults = FaultConfig(crashes=(Crash(instance=3, at_ms=0.0),))
    base = dict(queries=64, rate_qps=100, latency=QUIET, faults=faults, cancel=True)
    decoded = {}
    for routing in ("round-robin", "least-outstanding"):
        result = simulate(ServingConfig(routing=routing, **base), models, x)
        assert sorted(a.query_id for a in result.answers) == list(range(64))
        truth = own_outputs(models, result.inputs)
        for a in result.answers:
            torch.testing.assert_close(a.output, truth[a.query_id], atol=1e-5, rtol=1e-5)
        decoded[routing] = sorted(a.query_id for a in result.answers if a.source == "decoded")
    assert decoded["round-robin"] == list(range(3, 64, 8))  # every 8th query lands on it
    assert decoded["least-outstanding"] == [3]  # one loss, then the instance is ejected


def test_real_cpu_hogs_run_during_their_window_and_none_is_left_behind():
    models, x = linear_models(), queries(30)
    window = Slowdown(instance=0, start_ms=0.0, end_ms=60_000.0, factor=2)
    config = ServingConfig(
        data_instances=2,
        latency=QUIET.model_copy(update={"service_ms": 2.0}),
        faults=FaultConfig(slowdowns=(window,)),
        background="cpu-hog",
    )
    driver = make_driver(config, models)
    try:
        answers = [driver.submit(x[j]) for j in range(30)]
        assert all(a.result(timeout=20).query_id == j for j, a in enumerate(answers))
        deadline = time.monotonic() + 10
        while not driver.hog_pids and time.monotonic() < deadline:
            time.sleep(0.01)
        pids = driver.hog_pids
        assert len(pids) == 1 and _alive(pids[0])
    finally:
        driver.close()
    assert driver.hog_pids == [] and not _alive(pids[0])


def test_cpu_hogs_need_a_real_time_backend():
    config = ServingConfig(background="cpu-hog", queries=10)
    with pytest.raises(ParameterError, match="real-time backend"):
        simulate(config, linear_models(), queries())


def test_a_hog_left_running_is_killed_when_the_interpreter_exits():
    import subprocess
    import sys

    script = (
        "from redundancy.coded_inference.serving.hogs import CpuHogs\n"
        "hogs = CpuHogs()\nhogs.start(0)\nprint(hogs.pids[0], flush=True)\n"
        "raise SystemExit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert not _alive(int(done.stdout.split()[0]))


def test_a_hog_exits_by_itself_when_its_parent_is_killed():
    import signal
    import subprocess
    import sys

    script = (
        "import time\nfrom redundancy.coded_inference.serving.hogs import CpuHogs\n"
        "hogs = CpuHogs()\nhogs.start(0)\nprint(hogs.pids[0], flush=True)\ntime.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    hog = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(hog) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(hog)
