"""Coral solve times next to the paper's: template library build (uncached, cached), allocation
ILP, and the monolithic joint MILP (tried up to --joint-max-vars variables, --joint-limit s).

Usage: python benchmarks/coral_bench.py [--core-nodes 6] [--extended-nodes 3] [--workers 1]
       [--joint-limit 600] [--joint-max-vars 1000000]
Prints a Markdown table; the paper's figures are the anchor (Gurobi, large CPU servers).
The issue's extended target (the paper's Nmax = 6, a few minutes on 2 cores):
       python benchmarks/coral_bench.py --core-nodes 4 --extended-nodes 6 --workers 2 \
           --joint-max-vars 0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from redundancy.coral.baselines.planners import homo_plan
from redundancy.coral.planner.allocation import allocate
from redundancy.coral.planner.catalog import load_scenario
from redundancy.coral.planner.joint import joint_optimum, joint_size
from redundancy.coral.planner.templates import build_library

PAPER = {
    "core": {"ilp": 0.24, "ratio": 1.62, "build": "hours (hundreds of cores)"},
    "extended": {"ilp": 9.68, "ratio": 3.14, "build": "hours (hundreds of cores)"},
}


def joint_row(tag: str, scenario, two_stage_cost: float, limit: float, max_vars: int) -> str:
    """The monolithic MILP's time, or why it did not finish."""
    size = joint_size(scenario)
    if size > max_vars:
        return f"| {tag} | monolithic MILP | - | not attempted ({size:,} variables) | - |"
    start = time.perf_counter()
    result = joint_optimum(scenario, time_limit=limit)
    took = time.perf_counter() - start
    if result.cost is None or not result.optimal:
        return (
            f"| {tag} | monolithic MILP | - | did not finish in {limit:.0f} s ({size:,} vars) | - |"
        )
    return (
        f"| {tag} | monolithic MILP | - | {took:.1f} s, cost {result.cost:.2f} "
        f"(two-stage {two_stage_cost:.2f}) | - |"
    )


def bench(
    name: str, max_nodes: int, workers: int, cache: Path, limit: float, max_vars: int
) -> list[str]:
    """Rows for one setup."""
    scenario = load_scenario(name).model_copy(update={"max_nodes": max_nodes})
    start = time.perf_counter()
    library = build_library(scenario, workers=workers, cache_dir=cache)
    uncached = time.perf_counter() - start
    start = time.perf_counter()
    build_library(scenario, cache_dir=cache)
    cached = time.perf_counter() - start
    start = time.perf_counter()
    allocation = allocate(scenario, library.all())
    ilp = time.perf_counter() - start
    homo = homo_plan(scenario).cost
    paper = PAPER[name]
    tag = f"{name} (Nmax={max_nodes}, {len(library.all())} templates)"
    return [
        f"| {tag} | template build, uncached | {paper['build']} | {uncached:.1f} s | - |",
        f"| {tag} | template build, cached | - | {cached:.3f} s | - |",
        f"| {tag} | allocation ILP | {paper['ilp']} s | {ilp:.2f} s | {ilp / paper['ilp']:.2f} |",
        f"| {tag} | Homo cost / Coral cost | {paper['ratio']}x "
        f"| {homo / allocation.cost:.2f}x ({allocation.mode}) | - |",
        joint_row(tag, scenario, allocation.cost, limit, max_vars),
    ]


def main() -> None:
    """Run both setups and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--core-nodes", type=int, default=6)
    parser.add_argument("--extended-nodes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--joint-limit", type=float, default=600.0)
    parser.add_argument("--joint-max-vars", type=int, default=1_000_000)
    args = parser.parse_args()
    joint = (args.joint_limit, args.joint_max_vars)
    rows = ["| setup | metric | paper | ours | ours / paper |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as cache:
        rows += bench("core", args.core_nodes, args.workers, Path(cache), *joint)
        rows += bench("extended", args.extended_nodes, args.workers, Path(cache), *joint)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
