"""Coral's comparison table: every planner through the simulator, the paper's ratios beside ours.

For each scenario: $/h, goodput, SLO attainment, mean planning time and simulator wall time per
planner, then the paper's headline ratios next to ours (best baseline by cost where demand is met,
by goodput in the scarce scenarios).
Run: ``python benchmarks/coral_compare.py [--scenarios core extended scarce-extended helix-cluster]
[--duration 1800] [--max-nodes 3] [--planners coral homo cauchy melange]
[--scarce-objective fair|goodput] [--time-limit S] [--admission F] [--explain]
[--helix-max-nodes N]``.

``--helix-max-nodes`` sets Coral's Nmax on the helix-cluster pool only (default: the scenario's 6,
the paper's Nmax; ``--max-nodes`` applies to the other scenarios). Below 10 no Coral template can
use the pool's T4s (nine 16 GB T4s do not hold LLaMA-2 70B), while Helix chains up to 16
single-block stages.

``--explain`` adds, per scenario, where the gap to the paper comes from: per model the cheapest
$/h per req/s of each class of templates (single node = Homo/Mélange, one config = the
coral-homogeneous ablation, Cauchy's combos, all of Coral's), the cost floors
sum_m D_m x that (no plan of the class meets demand for less), the first plan's cost and capacity
next to the simulated cost and goodput per planner, and the GPUs each first plan uses.
"""

from __future__ import annotations

import argparse
import time

from redundancy.coral.analysis import CLASSES, cost_floor, gpu_usage, model_runs, unit_costs
from redundancy.coral.compare import Outcome, compare, comparison_scenario
from redundancy.coral.planner.templates import build_library
from redundancy.coral.sim.simulator import SimConfig

PAPER = {  # (baseline, metric, paper ratio)
    "core": [("homo", "cost", 1.62), ("homo-one-type", "cost", 1.62), ("cauchy", "cost", 1.60)],
    "extended": [("homo", "cost", 3.14), ("homo-one-type", "cost", 3.14), ("cauchy", "cost", 2.66)],
    "scarce-core": [("homo", "goodput", 1.24), ("homo-one-type", "goodput", 1.24)],
    "scarce-extended": [
        ("homo", "goodput", 7.64),
        ("homo-one-type", "goodput", 7.64),
        ("cauchy", "goodput", 2.39),
    ],
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
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds per allocation solve (default: exact)")  # fmt: skip
    parser.add_argument("--explain", action="store_true", help="add the gap decomposition")
    parser.add_argument("--admission", type=float, default=None,
                        help="router admits at most this fraction of planned req/s")  # fmt: skip
    parser.add_argument("--helix-max-nodes", type=int, default=None,
                        help="Coral's Nmax on helix-cluster (default: 6)")  # fmt: skip
    args = parser.parse_args()
    ratios, explained = [], []
    config = SimConfig(admission=args.admission)
    print("| scenario | planner | $/h | goodput tok/s | SLO att. | plan s (mean) | wall s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.scenarios:
        nodes = args.helix_max_nodes if name == "helix-cluster" else args.max_nodes
        scenario = comparison_scenario(name, nodes, args.scarce_objective, args.time_limit)
        out = {}
        names = [p for p, _, _ in PAPER.get(name, [])]
        for planner in dict.fromkeys(["coral", *names, *args.planners]):
            start = time.perf_counter()
            o = compare(scenario, [planner], args.duration, config=config)[0]
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
        if args.explain:
            explained.append((name, scenario, out))
    print()
    print("| scenario | ratio | paper | ours | ours / paper |")
    print("|---|---|---|---|---|")
    for name, metric, paper, ours in ratios:
        print(f"| {name} | {metric} | {paper:.2f}x | {ours:.2f}x | {ours / paper:.2f} |")
    for name, scenario, out in explained:
        explain(name, scenario, out)


def explain(name: str, scenario, out: dict[str, Outcome]) -> None:
    """Print the gap decomposition of one scenario (see the module docstring)."""
    library = build_library(scenario)
    units = unit_costs(scenario, library.all())
    runs = {p: {r.model: r for r in model_runs(o.result)} for p, o in out.items()}
    print(f"\n### {name}: $/h per req/s, cheapest option per class (demand x that = floor)\n")
    cols = " | ".join(f"{k} $/h/rps" for k in CLASSES)
    planners = list(out)
    print(f"| model | demand | {cols} | coral template | "
          + " | ".join(f"{p} $/h" for p in planners) + " |")  # fmt: skip
    print("|---" * (4 + len(CLASSES) + len(planners) - 1) + "|")
    for model in scenario.models:
        row = [f"{units[(model.name, k)].dollars_per_rps:.3f}" for k in CLASSES]
        costs = [f"{runs[p][model.name].planned_cost:.1f}" for p in planners]
        print(f"| {model.name} | {scenario.demand[model.name]:g} | {' | '.join(row)} | "
              f"{units[(model.name, 'coral')].option} | {' | '.join(costs)} |")  # fmt: skip
    floors = {k: cost_floor(scenario, units, k) for k in CLASSES}
    print("| floor sum D u | | " + " | ".join(f"{floors[k]:.1f}" for k in CLASSES) + " | | "
          + " | ".join(f"{sum(r.planned_cost for r in runs[p].values()):.1f}" for p in planners)
          + " |")  # fmt: skip
    print(f"\n### {name}: first plan vs simulation per planner\n")
    print(
        "| planner | planned $/h | simulated $/h | planned req/s served | planned tok/s | "
        "simulated goodput tok/s | planned $/h / Coral floor |"
    )
    print("|---|---|---|---|---|---|---|")
    for p, o in out.items():
        rs = runs[p].values()
        planned = sum(r.planned_cost for r in rs)
        served = sum(min(r.planned_rps, r.demand_rps) for r in rs)
        print(f"| {p} | {planned:.2f} | {o.cost_per_hour:.2f} | {served:.1f} | "
              f"{sum(r.planned_tps for r in rs):.0f} | {o.goodput_tps:.0f} | "
              f"{planned / floors['coral']:.2f}x |")  # fmt: skip
    print(f"\n### {name}: per model per planner (first plan / simulation)\n")
    print(
        "| model | planner | demand | planned req/s | planned tok/s | goodput tok/s | "
        "SLO att. | $/h | instances |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model in scenario.models:
        for p in planners:
            r = runs[p][model.name]
            top = ", ".join(f"{n}x {k.split(':', 1)[1]}" for k, n in
                            sorted(r.templates.items(), key=lambda kv: -kv[1])[:3])  # fmt: skip
            print(f"| {model.name} | {p} | {r.demand_rps:g} | {r.planned_rps:.1f} | "
                  f"{r.planned_tps:.0f} | {r.goodput_tps:.0f} | {r.attainment:.3f} | "
                  f"{r.planned_cost:.1f} | {top} |")  # fmt: skip
    print(f"\n### {name}: GPUs used by the first plan / offered\n")
    usage = {p: gpu_usage(o.result) for p, o in out.items()}
    gpus = list(next(iter(usage.values())))
    print("| planner | " + " | ".join(gpus) + " |")
    print("|---" * (len(gpus) + 1) + "|")
    for p, used in usage.items():
        print(f"| {p} | " + " | ".join(f"{used[g][0]}/{used[g][1]}" for g in gpus) + " |")


if __name__ == "__main__":
    main()
