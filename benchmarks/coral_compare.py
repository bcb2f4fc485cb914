"""Coral's comparison table: every planner through the simulator, the paper's ratios beside ours.

For each scenario: $/h, goodput, SLO attainment, mean planning time and simulator wall time per
planner, then the paper's headline ratios next to ours (best baseline by cost where demand is met,
by goodput in the scarce scenarios).
Run: ``python benchmarks/coral_compare.py [--scenarios core extended scarce-extended helix-cluster]
[--duration 1800] [--max-nodes 3] [--planners coral homo cauchy melange]
[--scarce-objective fair|goodput]``.
"""

from __future__ import annotations

import argparse
import time

from redundancy.coral.compare import compare, comparison_scenario

PAPER = {  # (baseline, metric, paper ratio)
    "core": [("homo", "cost", 1.62), ("cauchy", "cost", 1.60)],
    "extended": [("homo", "cost", 3.14), ("cauchy", "cost", 2.66)],
    "scarce-core": [("homo", "goodput", 1.24)],
    "scarce-extended": [("homo", "goodput", 7.64), ("cauchy", "goodput", 2.39)],
    "helix-cluster": [("helix", "cost", 1 / 0.79), ("helix", "goodput", 1.26)],
}


def main() -> None:
    """Run and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", nargs="+", default=["core", "extended", "scarce-extended"])
    parser.add_argument("--duration", type=float, default=1800.0)
    parser.add_argument("--max-nodes", type=int, default=3)
    extra = "also run these (Coral and the paper's baselines always run)"
    parser.add_argument("--planners", nargs="+", default=[], help=extra)
    parser.add_argument(
        "--scarce-objective",
        choices=["fair", "goodput"],
        default=None,
        help="allocation order when demand cannot be met (default: the scenario's, fair)",
    )
    args = parser.parse_args()
    ratios = []
    print("| scenario | planner | $/h | goodput tok/s | SLO att. | plan s (mean) | wall s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.scenarios:
        nodes = None if name == "helix-cluster" else args.max_nodes
        scenario = comparison_scenario(name, nodes, args.scarce_objective)
        out = {}
        names = [p for p, _, _ in PAPER.get(name, [])]
        for planner in dict.fromkeys(["coral", *names, *args.planners]):
            start = time.perf_counter()
            o = compare(scenario, [planner], args.duration)[0]
            wall = time.perf_counter() - start
            out[planner] = o
            print(f"| {name} | {planner} | {o.cost_per_hour:.2f} | {o.goodput_tps:.0f} | "
                  f"{o.attainment:.3f} | {o.solve_s:.2f} | {wall:.1f} |", flush=True)  # fmt: skip
        for other, metric, paper in PAPER.get(name, []):
            if metric == "cost":
                ours = out[other].cost_per_hour / out["coral"].cost_per_hour
            else:
                ours = out["coral"].goodput_tps / max(out[other].goodput_tps, 1e-9)
            ratios.append((name, f"{metric}: Coral vs {other}", paper, ours))
    print()
    print("| scenario | ratio | paper | ours | ours / paper |")
    print("|---|---|---|---|---|")
    for name, metric, paper, ours in ratios:
        print(f"| {name} | {metric} | {paper:.2f}x | {ours:.2f}x | {ours / paper:.2f} |")


if __name__ == "__main__":
    main()
