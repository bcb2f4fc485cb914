"""Benchmark: coded serving under injected background load, every strategy at equal resources.

12 instances (8 deployed-model + 4 redundant for k = 2), two load levels, 20k queries each on the
deterministic simulated backend (seeded heavy-tailed background delays; real model outputs from a
Base-MLP trained on 8x8 digits). The anchor is equal-resources (replicas + hedged requests); the
table gives each strategy's latency percentiles and the ratio of equal-resources' p99.9 - median
gap to ParM's (paper: up to 3.5x smaller for ParM). ``--realtime threads|ray`` adds a short
real-time run of every strategy at the lower load.

    .venv/bin/python benchmarks/parm_serving_bench.py
    .venv/bin/python benchmarks/parm_serving_bench.py --queries 5000 --realtime ray
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from redundancy.coded_inference.serving import (
    STRATEGIES,
    ServingConfig,
    markdown,
    quick_models,
    simulate,
    summarize,
)
from redundancy.coded_inference.serving.ray_backend import ray_session
from redundancy.coded_inference.serving.realtime import serve_realtime


def _gap_ratio(reports: dict) -> str:
    """Gap ratios against the unhedged replicas (the paper's equal-resources) and hedged ones."""
    parm = reports["parm"]
    lines = []
    for name in ("none", "equal-resources"):
        anchor = reports[name]
        lines.append(
            f"- {name} gap / ParM gap = {anchor.tail_gap_ms:.1f} / {parm.tail_gap_ms:.1f} ms "
            f"= {anchor.tail_gap_ms / parm.tail_gap_ms:.2f}x (paper: up to 3.5x); medians "
            f"{anchor.median_ms:.1f} vs {parm.median_ms:.1f} ms"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--rates", type=float, nargs="+", default=[300.0, 500.0])
    parser.add_argument("--data-instances", type=int, default=8)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--realtime", choices=["none", "threads", "ray"], default="none")
    parser.add_argument("--realtime-queries", type=int, default=1_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    models, data = quick_models(k=args.k)
    base = ServingConfig(k=args.k, data_instances=args.data_instances, queries=args.queries)
    print(f"# Coded serving, {base.total_instances} instances, k={args.k}, simulated backend\n")
    for rate in args.rates:
        reports = {}
        start = time.perf_counter()
        for strategy in STRATEGIES:
            config = base.model_copy(update={"strategy": strategy, "rate_qps": rate})
            reports[strategy] = summarize(
                simulate(config, models, data.x_test), models.code.deployed, data.y_test
            )
        title = f"## {rate:g} qps, {args.queries} queries ({time.perf_counter() - start:.1f} s)"
        print(markdown(list(reports.values()), title))
        print(_gap_ratio(reports) + "\n")
    if args.realtime != "none":
        config = base.model_copy(
            update={"queries": args.realtime_queries, "rate_qps": min(args.rates)}
        )
        reports = {}
        with ray_session() if args.realtime == "ray" else nullcontext():
            for strategy in STRATEGIES:
                run = serve_realtime(
                    config.model_copy(update={"strategy": strategy}),
                    models,
                    data.x_test,
                    backend=args.realtime,
                    max_seconds=60,
                )
                reports[strategy] = summarize(run, models.code.deployed, data.y_test)
        title = f"## real time ({args.realtime}), {config.rate_qps:g} qps, {config.queries} queries"
        print(markdown(list(reports.values()), title))
        print(_gap_ratio(reports))


if __name__ == "__main__":
    main()
