"""Benchmark: coded serving vs hedged replicas, each at its tuned setting, at equal resources.

12 instances (8 deployed-model + 4 redundant for k = 2), two load levels, two fault modes, 20k
queries per run on the deterministic simulated backend (real model outputs from a Base-MLP on 8x8
digits). Fault modes: ``iid`` (2% of requests delayed by 20 ms x Pareto(1.5)) and ``hog`` (slow
periods: each instance runs 5x slower for exponential(200 ms) stretches every exponential(4 s)).
Both tunables are swept on the same seeds: equal-resources' hedge timeout, and ParM's hold time
for decoded answers (``approx_after_ms``) and partial-group timeout. Hedges and parity queries
occupy instances (FIFO queues), so their load is paid for. Per cell the script prints every
setting, then each strategy at its best setting and at a matched median (both restricted to
settings with median <= 1.05 x the larger of the two strategies' lowest medians).

    .venv/bin/python benchmarks/parm_serving_bench.py
    .venv/bin/python benchmarks/parm_serving_bench.py --queries 5000 --realtime ray
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

import torch

from redundancy.coded_inference.serving import (
    STRATEGIES,
    LatencyConfig,
    ServingConfig,
    ServingReport,
    markdown,
    quick_models,
    simulate,
    summarize,
)
from redundancy.coded_inference.serving.ray_backend import ray_session
from redundancy.coded_inference.serving.realtime import serve_realtime

MODES = {
    "iid": LatencyConfig(),
    "hog": LatencyConfig(slow_prob=0.0, hog_factor=5.0, hog_ms=200.0, hog_gap_ms=4_000.0),
}
HEDGE_MS = (10.0, 12.0, 15.0, 20.0, 30.0)
APPROX_MS = (0.0, 10.0, 12.0, 15.0)
GROUP_MS = (5.0, 20.0)

Run = tuple[str, ServingReport]


def _settings() -> list[tuple[str, str, dict]]:
    """(strategy, setting label, config update) for every run of one cell."""
    out = [("none", "-", {}), ("cheap-backup", "approx 12", {})]
    out += [("equal-resources", f"hedge {h:g}", {"hedge_after_ms": h}) for h in HEDGE_MS]
    out += [
        ("parm", f"approx {a:g} group {g:g}", {"approx_after_ms": a, "group_timeout_ms": g})
        for g in GROUP_MS
        for a in APPROX_MS
    ]
    return out


def _row(mode: str, rate: float, strategy: str, setting: str, r: ServingReport) -> str:
    acc = "-" if r.reconstructed == 0 else f"{100 * r.approx_accuracy:.1f}%"
    return (
        f"| {mode} | {rate:g} | {strategy} | {setting} | {r.median_ms:.2f} | {r.p99_ms:.1f} "
        f"| {r.p999_ms:.1f} | {r.tail_gap_ms:.1f} | {100 * r.reconstructed:.1f}% | {acc} |"
    )


def _best(runs: list[Run], cap: float = float("inf")) -> Run:
    """The setting with the smallest p99.9 - median gap among those with median <= cap."""
    return min((run for run in runs if run[1].median_ms <= cap), key=lambda run: run[1].tail_gap_ms)


def compare(hedged: list[Run], parm: list[Run]) -> str:
    """Hedged vs ParM at each one's best setting and at a matched median."""
    lines = []
    cap = 1.05 * max(min(r.median_ms for _, r in runs) for runs in (hedged, parm))
    for label, limit in (("best setting", float("inf")), (f"median <= {cap:.2f} ms", cap)):
        (hs, h), (ps, p) = _best(hedged, limit), _best(parm, limit)
        lines.append(
            f"- {label}: hedged ({hs}) gap {h.tail_gap_ms:.1f} ms, median {h.median_ms:.2f}; "
            f"ParM ({ps}) gap {p.tail_gap_ms:.1f} ms, median {p.median_ms:.2f}; "
            f"hedged / ParM = {h.tail_gap_ms / p.tail_gap_ms:.2f}x (paper: up to 3.5x)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--rates", type=float, nargs="+", default=[300.0, 500.0])
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=sorted(MODES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--realtime", choices=["none", "threads", "ray"], default="none")
    parser.add_argument("--realtime-queries", type=int, default=1_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    models, data = quick_models(k=2)
    base = ServingConfig(queries=args.queries, seed=args.seed)
    print(f"# Coded serving, {base.total_instances} instances, k=2, {args.queries} queries\n")
    print(
        "| fault | qps | strategy | setting | median | p99 | p99.9 | gap | approx. | approx. acc |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    summaries = []
    for mode in args.modes:
        for rate in args.rates:
            runs: dict[str, list[Run]] = {s: [] for s in STRATEGIES}
            for strategy, setting, update in _settings():
                config = base.model_copy(
                    update={
                        "strategy": strategy,
                        "rate_qps": rate,
                        "latency": MODES[mode],
                        **update,
                    }
                )
                report = summarize(
                    simulate(config, models, data.x_test), models.code.deployed, data.y_test
                )
                runs[strategy].append((setting, report))
                print(_row(mode, rate, strategy, setting, report), flush=True)
            summaries.append(
                f"{mode}, {rate:g} qps:\n" + compare(runs["equal-resources"], runs["parm"])
            )
    print("\n" + "\n".join(summaries))
    if args.realtime != "none":
        config = base.model_copy(
            update={"queries": args.realtime_queries, "rate_qps": min(args.rates)}
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
        title = f"## real time ({args.realtime}), {config.rate_qps:g} qps, {config.queries} queries"
        print(markdown(reports, title))


if __name__ == "__main__":
    main()
