"""The planning driver: both stages (template library, allocation ILP) into a ``schema.Plan``."""

from __future__ import annotations

import time
from pathlib import Path

from redundancy.coral.planner.allocation import Allocation, ScarceObjective, allocate
from redundancy.coral.planner.catalog import Scenario
from redundancy.coral.planner.solver import Solver
from redundancy.coral.planner.templates import Library, Template, build_library
from redundancy.coral.schema import Instance, ModelOutcome, Plan, PlannedStage
from redundancy.errors import ParameterError


def _instance(template: Template, region: str, price: float) -> Instance:
    stages, start = [], 0
    for stage in template.stages:
        stages.append(
            PlannedStage(nodes=stage.nodes, layer_start=start, layer_end=start + stage.layers)
        )
        start += stage.layers
    return Instance(
        model=template.model,
        region=region,
        template=template.key,
        stages=stages,
        throughput_rps=template.throughput,
        price_per_hour=price,
    )


def to_plan(
    scenario: Scenario, allocation: Allocation, templates: int, t1: float, t2: float
) -> Plan:
    """Expand the allocation's counts into one Instance per replica."""
    instances = []
    for option in allocation.options:
        n = allocation.counts.get((option.region, option.template.key), 0)
        instances += [_instance(option.template, option.region, option.price) for _ in range(n)]
    outcomes = []
    for model in scenario.models:
        mine = [i for i in instances if i.model == model.name]
        demand = scenario.demand[model.name]
        served = allocation.served[model.name]
        outcomes.append(
            ModelOutcome(
                model=model.name,
                demand_rps=demand,
                capacity_rps=allocation.capacity[model.name],
                served_rps=served,
                unmet_rps=max(0.0, demand - served),
                replicas=len(mine),
                cost_per_hour=sum(i.price_per_hour for i in mine),
            )
        )
    return Plan(
        scenario=scenario.name,
        mode=allocation.mode,
        instances=instances,
        models=outcomes,
        cost_per_hour=allocation.cost,
        churn_cost=allocation.churn,
        templates=templates,
        stage1_seconds=t1,
        stage2_seconds=t2,
        notes=allocation.notes,
    )


def check_servable(scenario: Scenario, library: Library) -> None:
    """Raise naming the model (and its SLO) when no node multiset can serve it within its SLO."""
    for model in scenario.models:
        if scenario.demand[model.name] > 0 and not library.templates.get(model.name):
            raise ParameterError(
                f"SLO of {model.name} (prefill {model.slo.prefill_ms} ms, decode "
                f"{model.slo.decode_ms} ms/token) is tighter than any node combination of "
                f"{[c.name for c in scenario.configs]} with at most {scenario.max_nodes} nodes "
                "can meet"
            )


def plan(
    scenario: Scenario,
    *,
    previous: dict[tuple[str, str], int] | None = None,
    solver: Solver | None = None,
    workers: int = 1,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    scarce_objective: ScarceObjective | None = None,
    vllm_only: bool = False,
) -> Plan:
    """Both stages: the (cached) template library, then the allocation ILP.

    Parameters
    ----------
    scenario : Scenario
        What to serve on what (``load_scenario``).
    previous : dict, optional
        Running counts per (region, template key), for the churn term.
    solver : Solver, optional
        The allocation MILP solver (default scipy/HiGHS).
    workers : int, default 1
        Threads for building the template library.
    cache_dir : Path, optional
        Template cache folder.
    use_cache : bool, default True
        Use the template cache.
    scarce_objective : {"fair", "goodput"}, optional
        Overrides the scenario's order when demand cannot be met (see ``allocate``).
    vllm_only : bool, default False
        Keep only templates one ``vllm serve`` can run (one node per stage, one GPU count for
        all stages): every replica deploys, at a cost >= the unrestricted optimum (a template
        whose best layout is not runnable is dropped, not re-placed).

    Returns
    -------
    Plan
        Instances (stages, nodes, layer ranges), per-model capacity and cost, timings, notes.

    Raises
    ------
    ParameterError
        A model with demand that no node multiset can serve within its SLO, or a bad objective.

    Examples
    --------
    >>> from redundancy.coral.planner.catalog import load_scenario
    >>> result = plan(load_scenario("core").model_copy(update={"max_nodes": 3}))
    >>> result.mode, round(result.cost_per_hour, 2), len(result.instances)
    ('min_cost', 23.52, 6)
    >>> all(m.unmet_rps == 0 for m in result.models)
    True
    """
    start = time.perf_counter()
    library = build_library(scenario, workers=workers, cache_dir=cache_dir, use_cache=use_cache)
    templates = library.all()
    if vllm_only:
        templates = [t for t in templates if vllm_runnable(t)]
        library = Library(key=library.key, templates={
            m.name: [t for t in templates if t.model == m.name] for m in scenario.models
        })  # fmt: skip
    check_servable(scenario, library)
    t1 = time.perf_counter() - start
    start = time.perf_counter()
    allocation = allocate(
        scenario, templates, previous=previous, solver=solver, scarce_objective=scarce_objective
    )
    t2 = time.perf_counter() - start
    result = to_plan(scenario, allocation, len(templates), t1, t2)
    result.notes.extend(performance_notes(scenario, result))
    return result


def vllm_runnable(template: Template) -> bool:
    """Whether one ``vllm serve`` runs ``template``: one node per stage, one GPU count for all."""
    if any(sum(stage.nodes.values()) != 1 for stage in template.stages):
        return False
    return len({name.rsplit("x", 1)[1] for stage in template.stages for name in stage.nodes}) == 1


def performance_notes(scenario: Scenario, result: Plan) -> list[str]:
    """Flag the node configs in ``result`` whose timing is the uncalibrated roofline."""
    from redundancy.coral.planner.perf import NodeRates

    configs = {c.name: c for c in scenario.configs}
    used = sorted({n for inst in result.instances for s in inst.stages for n in s.nodes})
    rough = [n for n in used if NodeRates.of(configs[n], scenario.perf).source == "roofline"]
    if not rough:
        return []
    return [f"performance of {', '.join(rough)} is the uncalibrated roofline (no measurements "
            "of these GPUs); the others are calibrated on measured vLLM times"]  # fmt: skip


def print_plan(result: Plan) -> None:
    """Rich tables: instances grouped by template, then per-model outcome."""
    from rich.table import Table

    from redundancy import ui

    console = ui.out()
    table = Table(title=f"Coral plan ({result.scenario}, {result.mode})")
    for column in (
        "model",
        "region",
        "replicas",
        "stages (nodes: layers)",
        "req/s each",
        "$/h each",
    ):
        table.add_column(column, overflow="fold")
    groups: dict[tuple[str, str], list[Instance]] = {}
    for inst in result.instances:
        groups.setdefault((inst.template, inst.region), []).append(inst)
    for (_, region), items in groups.items():
        first = items[0]
        layout = " | ".join(
            "+".join(f"{n}x{c}" for c, n in s.nodes.items())
            + f": {s.layer_start}-{s.layer_end - 1}"
            for s in first.stages
        )
        table.add_row(
            first.model, region, str(len(items)), layout,
            f"{first.throughput_rps:.2f}", f"{first.price_per_hour:.2f}",
        )  # fmt: skip
    console.print(table)
    summary = Table(title="per model")
    for column in ("model", "demand req/s", "capacity", "unmet", "replicas", "$/h"):
        summary.add_column(column)
    for m in result.models:
        summary.add_row(
            m.model, f"{m.demand_rps:g}", f"{m.capacity_rps:.2f}", f"{m.unmet_rps:.2f}",
            str(m.replicas), f"{m.cost_per_hour:.2f}",
        )  # fmt: skip
    console.print(summary)
    console.print(
        f"total ${result.cost_per_hour:.2f}/h (churn {result.churn_cost:.2f}); "
        f"{result.templates} templates; stage 1 {result.stage1_seconds:.2f} s, "
        f"allocation ILP {result.stage2_seconds:.2f} s"
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
