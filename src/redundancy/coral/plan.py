"""The planner's output: a JSON-serialisable plan (instances -> stages -> nodes + layer ranges).

The plan is plain pydantic data so a simulator or a launcher can consume it without the planner.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, Field

from redundancy.coral.allocation import Allocation, ScarceObjective, allocate
from redundancy.coral.catalog import Scenario
from redundancy.coral.solver import Solver
from redundancy.coral.templates import Library, Template, build_library
from redundancy.errors import ConfigError, ParameterError
from redundancy.storage_io import atomic_write_bytes


class PlannedStage(BaseModel):
    """One stage: data-parallel nodes (config -> count) serving layers [layer_start, layer_end)."""

    nodes: dict[str, int]
    layer_start: int
    layer_end: int


class Instance(BaseModel):
    """One replica (a pipeline) of a model in a region.

    ``prefill_nodes`` non-empty means prefill/decode disaggregation: those nodes (each holding the
    whole model) run prefills, ``stages`` decode, and each prompt's KV cache crosses a link of
    ``kv_link_gbps`` Gbit/s before decoding starts.
    """

    model: str
    region: str
    template: str
    stages: list[PlannedStage]
    throughput_rps: float
    price_per_hour: float
    prefill_nodes: dict[str, int] = Field(default_factory=dict)
    kv_link_gbps: float = 0.0


class ModelOutcome(BaseModel):
    """Per model: demand, planned capacity, served and unmet demand (req/s), cost ($/h)."""

    model: str
    demand_rps: float
    capacity_rps: float
    served_rps: float
    unmet_rps: float
    replicas: int
    cost_per_hour: float


class Plan(BaseModel):
    """A complete plan: the instances to run and what they achieve."""

    scenario: str
    mode: str
    instances: list[Instance]
    models: list[ModelOutcome]
    cost_per_hour: float
    churn_cost: float
    templates: int
    stage1_seconds: float
    stage2_seconds: float
    notes: list[str]

    def save(self, path: Path) -> None:
        """Write the plan as JSON (atomically)."""
        atomic_write_bytes(Path(path), self.model_dump_json(indent=2).encode())

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a plan written by ``save``."""
        try:
            return cls.model_validate_json(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read plan {path}: {exc}") from None


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
) -> Plan:
    """Both stages: the (cached) template library, then the allocation ILP.

    ``scarce_objective`` overrides the scenario's order when demand cannot be met ("fair" or
    "goodput"; see ``allocation``).
    """
    start = time.perf_counter()
    library = build_library(scenario, workers=workers, cache_dir=cache_dir, use_cache=use_cache)
    check_servable(scenario, library)
    t1 = time.perf_counter() - start
    start = time.perf_counter()
    allocation = allocate(
        scenario, library.all(), previous=previous, solver=solver, scarce_objective=scarce_objective
    )
    t2 = time.perf_counter() - start
    return to_plan(scenario, allocation, len(library.all()), t1, t2)


def print_plan(result: Plan) -> None:
    """Rich tables: instances grouped by template, then per-model outcome."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
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
