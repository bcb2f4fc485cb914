"""Coral simulator speed and the simulated comparison (core and scarce-core, Nmax=3).

Prints a Markdown table: simulated seconds per wall second for a 30-minute, 3-model, 10 req/s-per-
model run, and the paper's cost/goodput ratios next to ours with the ratio of the two.
Run: ``python benchmarks/coral_sim_bench.py [--duration 1800] [--max-nodes 3]``.
"""

from __future__ import annotations

import argparse
import time

from redundancy.coral.baselines.planners import PLANNERS
from redundancy.coral.compare import compare, comparison_scenario
from redundancy.coral.sim.simulator import simulate
from redundancy.coral.sim.workload import synthetic_trace


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=1800.0)
    parser.add_argument("--max-nodes", type=int, default=3)
    args = parser.parse_args()
    core = comparison_scenario("core", args.max_nodes)
    trace = synthetic_trace(core.demand, args.duration, seed=0)
    PLANNERS["coral"](core, {})  # build (and cache) the template library outside the timing
    print(f"| run ({len(trace)} requests, {args.duration:.0f} s simulated) | wall s | "
          "simulated s / wall s | target |")  # fmt: skip
    print("|---|---|---|---|")
    for name in ("coral", "homo"):
        start = time.perf_counter()
        simulate(core, trace, PLANNERS[name], duration_s=args.duration)
        wall = time.perf_counter() - start
        print(f"| core, {name} | {wall:.2f} | {args.duration / wall:.0f} | 30 min in < 60 s |")
    print()
    print("| scenario | metric | paper | ours | ours / paper |")
    print("|---|---|---|---|---|")
    for name, paper in (("core", 1.62), ("scarce-core", 1.24)):
        scenario = comparison_scenario(name, args.max_nodes)
        out = {o.planner: o for o in compare(scenario, ["coral", "homo"], args.duration)}
        if name == "core":
            metric = "Homo $/h / Coral $/h"
            ours = out["homo"].cost_per_hour / out["coral"].cost_per_hour
        else:
            metric = "Coral goodput / Homo goodput"
            ours = out["coral"].goodput_tps / out["homo"].goodput_tps
        print(f"| {name} | {metric} | {paper:.2f}x | {ours:.2f}x | {ours / paper:.2f} |")


if __name__ == "__main__":
    main()
