"""Benchmark: coded serving vs hedged and plain replicas at equal resources, on the same rules.

12 instances (8 deployed-model + 4 redundant for k = 2, or 12 replicas), two load levels, three
fault modes, 20k queries per run on the deterministic simulated backend (real model outputs from
a Base-MLP on 8x8 digits). Every cell runs under four policy variants applied to all strategies
alike: primary routing round-robin or least-outstanding, and cancellation of queued useless work
off or on. Fault modes: ``iid`` (2% of requests delayed by 20 ms x Pareto(1.5)), ``hog`` (slow
periods: each instance runs 5x slower for exponential(200 ms) stretches every exponential(4 s))
and ``hog-rare`` (the same slow periods every exponential(20 s): a sensitivity point). Swept
tunables: equal-resources' hedge timeout (5 ms, below the 10 ms service time, is allowed and its
load is charged) and ParM's hold time for decoded answers and partial-group timeout. Hedges,
parity and backup queries occupy instance queues. Per cell and variant the script prints every
setting, then hedged vs ParM and plain replicas (``none``, the paper's equal-resources baseline)
vs ParM at a matched median (settings with median <= 1.05 x the larger of the two strategies'
lowest medians).

``--regime`` instead maps where ParM fares best against hedging: iid faults at several slow-request
probabilities and rates, least-outstanding routing with cancellation, a finer sweep of both
strategies' timeouts, and a grid of hedged / ParM gap ratios at matched medians.

    .venv/bin/python benchmarks/parm_serving_bench.py
    .venv/bin/python benchmarks/parm_serving_bench.py --queries 5000 --realtime ray
    .venv/bin/python benchmarks/parm_serving_bench.py --regime --queries 10000
    .venv/bin/python benchmarks/parm_serving_bench.py --regime --slow 0.005 --rates 250 300 350
    .venv/bin/python benchmarks/parm_serving_bench.py --loss-sweep 2000

``--loss-sweep N`` instead runs N seeded simulated runs per strategy under the load of issue 19
(700 qps, 10% slow requests, slow periods, least-outstanding routing) with one to three crashes
(some restarting) at random times, and prints how every query ended: exact, approximate, failed,
unaccounted (must be 0). The test suite runs 100 such runs; this is the longer sweep.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from contextlib import nullcontext

import torch

from redundancy.coded_inference.serving import (
    STRATEGIES,
    FaultConfig,
    LatencyConfig,
    ServingConfig,
    ServingReport,
    Slowdown,
    markdown,
    quick_models,
    simulate,
    summarize,
)
from redundancy.coded_inference.serving.ray_backend import ray_session
from redundancy.coded_inference.serving.realtime import serve_realtime

_HOG = dict(slow_prob=0.0, hog_factor=5.0, hog_ms=200.0)
MODES = {
    "iid": LatencyConfig(),
    "hog": LatencyConfig(**_HOG, hog_gap_ms=4_000.0),
    "hog-rare": LatencyConfig(**_HOG, hog_gap_ms=20_000.0),
}
VARIANTS = list(itertools.product(("round-robin", "least-outstanding"), (False, True)))
HEDGE_MS = (5.0, 10.0, 12.0, 15.0, 20.0, 30.0)
APPROX_MS = (0.0, 12.0)
GROUP_MS = (5.0, 20.0)

Run = tuple[str, ServingReport]


def _settings() -> list[tuple[str, str, dict]]:
    """(strategy, setting label, config update) for every run of one cell and variant."""
    out = [("none", "-", {}), ("cheap-backup", "approx 12", {})]
    out += [("equal-resources", f"hedge {h:g}", {"hedge_after_ms": h}) for h in HEDGE_MS]
    out += [
        ("parm", f"approx {a:g} group {g:g}", {"approx_after_ms": a, "group_timeout_ms": g})
        for g in GROUP_MS
        for a in APPROX_MS
    ]
    return out


def _variant(routing: str, cancel: bool) -> str:
    return f"{'LO' if routing == 'least-outstanding' else 'RR'}{'+cancel' if cancel else ''}"


def _row(cell: str, strategy: str, setting: str, r: ServingReport) -> str:
    acc = "-" if r.reconstructed == 0 else f"{100 * r.approx_accuracy:.1f}%"
    return (
        f"| {cell} | {strategy} | {setting} | {r.median_ms:.2f} | {r.p99_ms:.1f} "
        f"| {r.p999_ms:.1f} | {r.tail_gap_ms:.1f} | {100 * r.reconstructed:.1f}% | {acc} |"
    )


def _best(runs: list[Run], cap: float = float("inf")) -> Run:
    """The setting with the smallest p99.9 - median gap among those with median <= cap."""
    return min((run for run in runs if run[1].median_ms <= cap), key=lambda run: run[1].tail_gap_ms)


def matched(baseline: list[Run], parm: list[Run]) -> tuple[Run, Run, float]:
    """Baseline and ParM at their smallest gaps among settings with a matched median, and the
    ratio baseline gap / ParM gap (> 1: ParM's tail is tighter)."""
    cap = 1.05 * max(min(r.median_ms for _, r in runs) for runs in (baseline, parm))
    b, p = _best(baseline, cap), _best(parm, cap)
    return b, p, b[1].tail_gap_ms / p[1].tail_gap_ms


def summary_row(cell: str, runs: dict[str, list[Run]]) -> str:
    """One line of the summary table: hedged and plain replicas vs ParM at matched medians."""
    (hs, h), (ps, p), ratio = matched(runs["equal-resources"], runs["parm"])
    (_, n), (ps2, p2), ratio_none = matched(runs["none"], runs["parm"])
    approx = f"{100 * p.reconstructed:.0f}% approx."
    return (
        f"| {cell} | {h.tail_gap_ms:.1f} ({hs}, med {h.median_ms:.2f}) "
        f"| {p.tail_gap_ms:.1f} ({ps}, med {p.median_ms:.2f}, {approx}) | **{ratio:.2f}x** "
        f"| {n.tail_gap_ms:.1f} (med {n.median_ms:.2f}) | {p2.tail_gap_ms:.1f} ({ps2}) "
        f"| **{ratio_none:.2f}x** |"
    )


def run_one(base: ServingConfig, strategy: str, changes: dict, models, data) -> ServingReport:
    """Simulate ``base`` with ``strategy`` and ``changes`` applied; its report on the test set."""
    config = base.model_copy(update={"strategy": strategy, **changes})
    return summarize(simulate(config, models, data.x_test), models.code.deployed, data.y_test)


REGIME_SLOW = (0.005, 0.01, 0.02)
REGIME_RATES = (200.0, 300.0, 400.0, 500.0)
REGIME_HEDGE_MS = (3.0, 5.0, 8.0, 10.0, 12.0, 15.0)
REGIME_GROUP_MS = (2.0, 3.0, 5.0)


def regime(args: argparse.Namespace, models, data) -> None:
    """The hedged / ParM gap ratio over slow-request probability x rate (iid faults)."""
    base = ServingConfig(queries=args.queries, seed=args.seed)
    settings = [("equal-resources", {"hedge_after_ms": h}) for h in REGIME_HEDGE_MS]
    settings += [("parm", {"group_timeout_ms": g}) for g in REGIME_GROUP_MS]
    grid: dict[tuple[float, float], str] = {}
    within_work: dict[tuple[float, float], str] = {}
    slows, rates = args.slow or REGIME_SLOW, args.rates or REGIME_RATES
    for slow, rate in itertools.product(slows, rates):
        runs: dict[str, list[Run]] = {"equal-resources": [], "parm": []}
        for strategy, update in settings:
            changes = {"rate_qps": rate, "latency": LatencyConfig(slow_prob=slow), **update}
            report = run_one(base, strategy, changes, models, data)
            runs[strategy].append((", ".join(f"{v:g}" for v in update.values()), report))
        (hs, h), (ps, p), ratio = matched(runs["equal-resources"], runs["parm"])
        grid[slow, rate] = f"{ratio:.2f}x ({h.tail_gap_ms:.1f} / {p.tail_gap_ms:.1f})"
        line = (
            f"slow {slow:g}, {rate:g} qps: hedge {hs} ms, ParM group {ps} ms: {grid[slow, rate]}; "
            f"work per query {h.work_ms:.1f} / {p.work_ms:.1f} ms"
        )
        # the same comparison with hedging held to ParM's extra work (no more instance time)
        frugal = [r for r in runs["equal-resources"] if r[1].work_ms <= p.work_ms]
        within_work[slow, rate] = "no hedge setting"
        if frugal:
            (fs, f), (_, fp), fratio = matched(frugal, runs["parm"])
            within_work[slow, rate] = (
                f"{fratio:.2f}x ({f.tail_gap_ms:.1f} / {fp.tail_gap_ms:.1f}, hedge {fs})"
            )
            line += f"; hedging within ParM's work: {within_work[slow, rate]}"
        print(line, flush=True)

    title = (
        f"iid faults, {base.total_instances} instances, {args.queries} queries, seed {args.seed} "
        "(gaps in ms)"
    )
    for name, cells in (
        ("hedged / ParM (p99.9 - median) at matched medians", grid),
        ("the same, hedging held to no more instance time per query than ParM", within_work),
    ):
        print(f"\n## {name}, {title}\n")
        print("| slow requests | " + " | ".join(f"{r:g} qps" for r in rates) + " |")
        print("|---" * (len(rates) + 1) + "|")
        for slow in slows:
            print(f"| {100 * slow:g}% | " + " | ".join(cells[slow, r] for r in rates) + " |")


def realtime_run(args: argparse.Namespace, models, data) -> None:
    """A short real-time run of every strategy (threads or Ray actors) with the policies on."""
    config = ServingConfig(
        queries=args.realtime_queries,
        rate_qps=args.realtime_rate,
        seed=args.seed,
        routing="least-outstanding",
        cancel=True,
        latency=MODES["hog"],
    )
    reports = []
    with ray_session() if args.realtime == "ray" else nullcontext():
        for strategy in STRATEGIES:
            run = serve_realtime(
                config.model_copy(update={"strategy": strategy}),
                models,
                data.x_test,
                backend=args.realtime,
                max_seconds=60,
            )
            reports.append(summarize(run, models.code.deployed, data.y_test))
    title = (
        f"## real time ({args.realtime}), {config.total_instances} instances, hog faults, "
        f"least-outstanding + cancel, {config.rate_qps:g} qps, {config.queries} queries"
    )
    print(markdown(reports, title))
    if args.cpu_hog:
        hogged = config.model_copy(
            update={
                "strategy": "none",
                "rate_qps": 40.0,
                "queries": 400,
                "latency": LatencyConfig(slow_prob=0.0),
                "background": "cpu-hog",
                "faults": FaultConfig(
                    slowdowns=(Slowdown(instance=0, start_ms=0.0, end_ms=60_000.0, factor=2),)
                ),
            }
        )
        quiet = hogged.model_copy(update={"background": "modelled", "faults": FaultConfig()})
        rows = []
        with ray_session() if args.realtime == "ray" else nullcontext():
            for label, cfg in (("no hog", quiet), ("busy-loop hog on instance 0", hogged)):
                run = serve_realtime(cfg, models, data.x_test, backend=args.realtime)
                report = summarize(run, models.code.deployed, data.y_test)
                rows.append(dataclasses.replace(report, strategy=label))
        print(markdown(rows, "## real CPU hog (service time burnt as CPU work), none strategy"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument(
        "--rates", type=float, nargs="+", help="qps (default 300 500; --regime: 200 300 400 500)"
    )
    parser.add_argument(
        "--slow", type=float, nargs="+", help="--regime: slow-request probabilities"
    )
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--realtime", choices=["none", "threads", "ray"], default="none")
    parser.add_argument("--realtime-queries", type=int, default=1_000)
    parser.add_argument("--realtime-rate", type=float, default=300.0)
    parser.add_argument("--cpu-hog", action="store_true", help="Also a real busy-loop hog run.")
    parser.add_argument("--skip-sim", action="store_true", help="Only the real-time run.")
    parser.add_argument("--regime", action="store_true", help="Only the hedged/ParM ratio grid.")
    parser.add_argument(
        "--loss-sweep", type=int, default=0, metavar="N", help="Only N crash runs per strategy."
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    models, data = quick_models(k=2)
    if args.loss_sweep:
        loss_sweep(args.loss_sweep, models, data)
        return
    if args.regime:
        regime(args, models, data)
        return
    if not args.skip_sim:
        simulated(args, models, data)
    if args.realtime != "none":
        realtime_run(args, models, data)


def loss_sweep(runs: int, models, data) -> None:
    """Seeded crash runs under load; every query must be answered or failed, none lost."""
    import random

    from redundancy.coded_inference.serving import Crash

    load = LatencyConfig(slow_prob=0.1, hog_factor=5, hog_ms=100, hog_gap_ms=500)
    print(f"# Loss sweep: {runs} runs per strategy, 400 queries at 700 qps, 1-3 crashes\n")
    print("| strategy | runs | sent | exact | approximate | failed | unaccounted | lost tasks |")
    print("|---|---|---|---|---|---|---|---|")
    for strategy in STRATEGIES:
        totals = dict.fromkeys(("sent", "exact", "approximate", "failed", "unaccounted"), 0)
        lost = 0
        for run in range(runs):
            rng = random.Random(run)
            crashes = []
            for instance in rng.sample(range(12), rng.randint(1, 3)):
                at = rng.uniform(0.0, 500.0)
                back = at + rng.uniform(20.0, 300.0) if rng.random() < 0.3 else None
                crashes.append(Crash(instance=instance, at_ms=at, restart_ms=back))
            config = ServingConfig(
                strategy=strategy,
                rate_qps=700,
                queries=400,
                seed=run,
                latency=load,
                faults=FaultConfig(crashes=tuple(crashes)),
            )
            result = simulate(config, models, data.x_test)
            for key, value in result.accounting().items():
                totals[key] += value
            lost += result.lost_tasks
        cells = " | ".join(str(totals[key]) for key in totals)
        print(f"| {strategy} | {runs} | {cells} | {lost} |")
    print()


def simulated(args: argparse.Namespace, models, data) -> None:
    """The simulated sweep: every setting's row, then the matched-median summary table."""
    base = ServingConfig(queries=args.queries, seed=args.seed)
    print(f"# Coded serving, {base.total_instances} instances, k=2, {args.queries} queries\n")
    print("| cell | strategy | setting | median | p99 | p99.9 | gap | approx. | approx. acc |")
    print("|---|---|---|---|---|---|---|---|---|")
    summaries = []
    rates = args.rates or (300.0, 500.0)
    for mode, rate, (routing, cancel) in itertools.product(args.modes, rates, VARIANTS):
        cell = f"{mode}, {rate:g}, {_variant(routing, cancel)}"
        runs: dict[str, list[Run]] = {s: [] for s in STRATEGIES}
        for strategy, setting, update in _settings():
            changes = {"rate_qps": rate, "latency": MODES[mode], "routing": routing, **update}
            report = run_one(base, strategy, {"cancel": cancel, **changes}, models, data)
            runs[strategy].append((setting, report))
            print(_row(cell, strategy, setting, report), flush=True)
        summaries.append(summary_row(cell, runs))
    print(
        "\n| fault, qps, policy | hedged gap (setting) | ParM gap (setting) "
        "| hedged / ParM | none gap | ParM gap | none / ParM |\n|---|---|---|---|---|---|---|"
    )
    print("\n".join(summaries))


if __name__ == "__main__":
    main()
