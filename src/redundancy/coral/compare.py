"""Every planner on the same scenario and trace through the simulator: cost, goodput, solve time.

Scenarios: ``core`` and ``extended`` (the paper's setups), ``scarce-*`` (availability scaled so
the nodes on offer hold only ``1 + headroom`` times the GPU memory Coral's unconstrained plan uses:
25% for core, 75% for extended, as in the paper), and ``large-heavy`` / ``small-heavy`` (extended
with 4x the demand on the three large or the three small models), and ``helix-cluster`` (Helix's
pool of 4 A100, 6 V100, 16 L4 and 38 T4 single-GPU nodes, Llama3-70B at 4 req/s; by default only
Coral and Helix run on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from redundancy.coral.baselines.planners import PLANNERS, SINGLE_MODEL, coral_planner
from redundancy.coral.planner.allocation import SCARCE_OBJECTIVES
from redundancy.coral.planner.catalog import Scenario, load_scenario
from redundancy.coral.planner.perf import ProfileTable, load_profile
from redundancy.coral.sim.availability import fluctuating_availability
from redundancy.coral.sim.simulator import SimConfig, SimResult, simulate
from redundancy.coral.sim.workload import synthetic_trace
from redundancy.errors import ConfigError, ParameterError

SCENARIOS = (
    "core", "extended", "scarce-core", "scarce-extended", "large-heavy", "small-heavy",
    "helix-cluster",
)  # fmt: skip
SCARCE_HEADROOM = {"core": 0.25, "extended": 0.75}
LARGE = ("Llama3-70B", "GPT-OSS-120B", "Qwen3-235B")


def scarce(scenario: Scenario, headroom: float) -> Scenario:
    """Scale availability so the offered GPU memory is (1 + headroom) x what Coral's plan uses."""
    configs = {c.name: c for c in scenario.configs}

    def memory(nodes: dict[str, int]) -> float:
        return sum(n * configs[c].count * configs[c].gpu.memory_gb for c, n in nodes.items())

    def scaled(factor: float) -> list[dict[str, int]]:
        return [{c: int(np.rint(n * factor)) for c, n in r.availability.items() if c in configs}
                for r in scenario.regions]  # fmt: skip

    plan = coral_planner(scenario)
    target = (1 + headroom) * sum(memory(s.nodes) for inst in plan.instances for s in inst.stages)
    lo, hi = 0.0, 1.0  # smallest factor whose rounded counts offer the target memory
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if sum(memory(a) for a in scaled(mid)) >= target else (mid, hi)
    regions = [
        r.model_copy(update={"availability": a})
        for r, a in zip(scenario.regions, scaled(hi), strict=True)
    ]
    return scenario.model_copy(update={"regions": regions, "name": f"scarce-{scenario.name}"})


def comparison_scenario(
    name: str,
    max_nodes: int | None = None,
    scarce_objective: str | None = None,
    allocation_time_s: float | None = None,
) -> Scenario:
    """Resolve one of SCENARIOS (or a scenario YAML path), optionally capping Nmax.

    ``scarce_objective`` ("fair" or "goodput") sets what the allocation ILP optimises when demand
    cannot be met (for every planner that uses it); None keeps the scenario's.
    ``allocation_time_s`` caps each allocation solve (best incumbent, not proven optimal, after).
    """
    if allocation_time_s is not None and allocation_time_s <= 0:
        raise ParameterError(f"allocation time limit {allocation_time_s} is out of range "
                             "(allowed: > 0 s)")  # fmt: skip
    scenario = _comparison_scenario(name, max_nodes)
    if allocation_time_s is not None:
        scenario = scenario.model_copy(update={"allocation_time_s": allocation_time_s})
    if scarce_objective is None:
        return scenario
    if scarce_objective not in SCARCE_OBJECTIVES:
        raise ParameterError(f"scarce objective {scarce_objective!r} is unknown (allowed: "
                             f"{', '.join(SCARCE_OBJECTIVES)})")  # fmt: skip
    return scenario.model_copy(update={"scarce_objective": scarce_objective})


def _comparison_scenario(name: str, max_nodes: int | None) -> Scenario:
    if name == "helix-cluster":
        text = resources.files("redundancy.coral").joinpath("data", "helix-cluster.yaml")
        scenario = load_scenario(yaml.safe_load(text.read_text()))
        return scenario.model_copy(update={"max_nodes": max_nodes or scenario.max_nodes})
    base = name.removeprefix("scarce-")
    if name in ("large-heavy", "small-heavy"):
        base = "extended"
    if base not in ("core", "extended") and not Path(name).is_file():
        raise ParameterError(f"scenario {name!r} is unknown (allowed: {', '.join(SCENARIOS)} or a "
                             "YAML path)")  # fmt: skip
    scenario = load_scenario(base if base in ("core", "extended") else name)
    if max_nodes is not None:
        scenario = scenario.model_copy(update={"max_nodes": max_nodes})
    if name in ("large-heavy", "small-heavy"):
        heavy = (lambda m: m in LARGE) if name == "large-heavy" else (lambda m: m not in LARGE)
        demand = {m: d * (4 if heavy(m) else 1) for m, d in scenario.demand.items()}
        scenario = scenario.model_copy(update={"demand": demand, "name": name})
    if name.startswith("scarce-"):
        scenario = scarce(scenario, SCARCE_HEADROOM[base])
    return scenario


def scenario_profile(path: Path, scenario: Scenario) -> ProfileTable:
    """Load a profile CSV (``perf.load_profile``) and check it names the scenario's models and
    node configs (a typo would otherwise silently leave the roofline in place)."""
    table = load_profile(path)
    models = {m.name for m in scenario.models}
    configs = {c.name for c in scenario.configs}
    for model, node in table.entries:
        if model not in models:
            raise ConfigError(f"{path}: model {model!r} is not in the scenario ({sorted(models)})")
        if node not in configs:
            raise ConfigError(f"{path}: node {node!r} is not a config of the scenario "
                              f"({sorted(configs)})")  # fmt: skip
    return table


@dataclass
class Outcome:
    """One planner's run: headline numbers and the full simulation result."""

    planner: str
    cost_per_hour: float
    goodput_tps: float
    attainment: float
    solve_s: float
    result: SimResult


def compare(
    scenario: Scenario,
    planners: list[str] | None = None,
    duration_s: float = 1800.0,
    seed: int = 0,
    fluctuate: bool = False,
    config: SimConfig | None = None,
    profile: ProfileTable | None = None,
) -> list[Outcome]:
    """Simulate each named planner on the same trace (and availability) of ``scenario``.

    Parameters
    ----------
    scenario : Scenario
        What is served on what (``comparison_scenario``).
    planners : list of str, optional
        Names in ``baselines.planners.PLANNERS`` (default: all that apply).
    duration_s : float, default 1800
        Simulated time.
    seed : int, default 0
        Seed of the synthetic trace (and availability).
    fluctuate : bool, default False
        Availability follows ``fluctuating_availability`` instead of staying constant.
    config : SimConfig, optional
        Simulator knobs.
    profile : ProfileTable, optional
        Measured per-layer times replacing the performance model in every planner and engine.

    Returns
    -------
    list of Outcome
        Per planner: $/h, goodput tok/s, SLO attainment, mean planning seconds, the SimResult.

    Raises
    ------
    ParameterError
        An unknown planner name.

    Examples
    --------
    >>> scenario = comparison_scenario("core", max_nodes=3)
    >>> coral, homo = compare(scenario, ["coral", "homo"], duration_s=300)
    >>> round(coral.cost_per_hour, 2), round(homo.cost_per_hour, 2)
    (23.52, 30.29)
    """
    single = sum(1 for d in scenario.demand.values() if d > 0) == 1
    names = planners or [n for n in PLANNERS if single == (n in SINGLE_MODEL) or n == "coral"]
    for name in names:
        if name not in PLANNERS:
            raise ParameterError(f"planner {name!r} is unknown (allowed: {', '.join(PLANNERS)})")
    trace = synthetic_trace(scenario.demand, duration_s, seed=seed)
    availability = None
    if fluctuate:
        availability = fluctuating_availability(scenario, duration_s, seed=seed)
    outcomes = []
    for name in names:
        planner = partial(PLANNERS[name], profile=profile) if profile else PLANNERS[name]
        result = simulate(scenario, trace, planner, availability, config, duration_s, profile)
        outcomes.append(
            Outcome(
                name, result.cost_per_hour, result.goodput(), result.attainment(),
                float(np.mean(result.plan_seconds)), result,
            )
        )  # fmt: skip
    return outcomes


def plot(outcomes: list[Outcome], path: Path, title: str = "") -> None:
    """Cost ($/h) and goodput (tokens/s) over time, one line per planner (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    for outcome in outcomes:
        line = outcome.result.timeline()
        minutes = line["t"] / 60
        goodput = sum(v for k, v in line.items() if k.startswith("goodput:"))
        top.step(minutes, line["cost_per_hour"], where="post", label=outcome.planner)
        bottom.plot(minutes, goodput, label=outcome.planner)
    top.set_ylabel("$ / hour")
    bottom.set_ylabel("goodput (tokens/s)")
    bottom.set_xlabel("minute")
    top.set_title(title)
    top.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
