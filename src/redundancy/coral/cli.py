"""``redundancy coral``: plan multi-LLM serving on heterogeneous GPUs (thin layer over the API)."""

from __future__ import annotations

from pathlib import Path

import typer

from redundancy import ui

_JSON = typer.Option(False, "--json", help="Print the result as one JSON document on stdout.")
_FORCE = typer.Option(False, "--force", help="Replace existing output files.")

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "coral": "Coral: plan replicas and pipeline layouts of several LLMs on heterogeneous GPUs.",
}
NAME = "coral"
app = typer.Typer(
    help="Coral: plan replicas and pipeline layouts of several LLMs on heterogeneous GPUs.",
    no_args_is_help=True,
)
templates_app = typer.Typer(help="Stage 1: the serving-template library.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")

QUICK_NODES = 3
_SCENARIO = typer.Argument(None, help="Scenario YAML, or 'core'/'extended' (default: core).")
_MAX_NODES = typer.Option(
    None, "--max-nodes", help=f"Nmax per template (default: the scenario's; {QUICK_NODES} for the "
    "embedded default so it runs in seconds)."
)  # fmt: skip
_SCARCE = typer.Option(
    None, "--scarce-objective", help="When demand cannot be met: 'fair' (max-min served fraction, "
    "then total, then cost) or 'goodput' (most served tokens/s, then cost). Default: the "
    "scenario's (fair)."
)  # fmt: skip


_PROFILE = typer.Option(
    None, "--profile", help="CSV of measured per-layer times (model,node,batch_size,"
    "decode_ms_per_layer,prefill_ms_per_layer): replaces the roofline in planners and engines."
)  # fmt: skip


_ADMISSION = typer.Option(
    None, "--admission", help="Router admits each model's requests at most at this fraction of "
    "its planned req/s (token bucket); the rest are dropped. Default: admit all."
)  # fmt: skip


def _sim_config(admission: float | None):
    from redundancy.coral.sim.simulator import SimConfig
    from redundancy.errors import ParameterError

    if admission is not None and not 0 < admission <= 10:
        raise ParameterError(f"--admission={admission} is out of range (allowed: 0 < f <= 10)")
    return SimConfig(admission=admission)


def _objective(value: str | None) -> str | None:
    from redundancy.coral.planner.allocation import SCARCE_OBJECTIVES
    from redundancy.errors import ParameterError

    if value is not None and value not in SCARCE_OBJECTIVES:
        raise ParameterError(f"--scarce-objective {value!r} is unknown (allowed: "
                             f"{', '.join(SCARCE_OBJECTIVES)})")  # fmt: skip
    return value


def _scenario(source: str | None, max_nodes: int | None):
    from redundancy.coral.planner.catalog import load_scenario
    from redundancy.errors import check_range

    scenario = load_scenario(source or "core")
    if max_nodes is None and source is None:
        max_nodes = QUICK_NODES
    if max_nodes is not None:
        check_range("--max-nodes", max_nodes, 1, 8)
        scenario = scenario.model_copy(update={"max_nodes": max_nodes})
    return scenario


@app.command("plan")
def plan_cmd(
    scenario: str = _SCENARIO,
    max_nodes: int = _MAX_NODES,
    out: Path = typer.Option(None, "--out", help="Write the plan as JSON here."),
    deploy: Path = typer.Option(None, "--deploy", help="Write SkyPilot YAML per instance here."),
    workers: int = typer.Option(1, "--workers", help="Processes for building templates."),
    scarce_objective: str = _SCARCE,
    json_output: bool = _JSON,
    force: bool = _FORCE,
    vllm_only: bool = typer.Option(
        False,
        "--vllm-only",
        help="Use only pipelines one `vllm serve` can run (one node per "
        "stage, one GPU count for all stages), so every replica can be deployed.",
    ),
) -> None:
    """Plan the cheapest deployment meeting every model's demand (or the most goodput).

    With --json, stdout is the plan document (the same schema as the --out file).
    """
    from redundancy.coral.deploy import deploy_files, unsupported
    from redundancy.coral.planner.plan import plan, print_plan
    from redundancy.errors import check_range
    from redundancy.storage_io import atomic_write_bytes

    check_range("--workers", workers, 1, 256)
    objective = _objective(scarce_objective)
    if out:
        ui.check_output(out, force=force)
    chosen = _scenario(scenario, max_nodes)
    with ui.progress(f"planning {chosen.name}"):
        result = plan(chosen, workers=workers, scarce_objective=objective, vllm_only=vllm_only)
    if json_output:
        ui.print_json(result.model_dump(mode="json"))
    else:
        print_plan(result)
    if out:
        result.save(out)
    refused = []
    if deploy:
        files = {}
        for i, inst in enumerate(result.instances):
            name = f"{i:03d}-{inst.model.lower()}"
            if unsupported(inst):
                refused.append(f"{name} ({'; '.join(unsupported(inst))})")
                continue
            files |= {deploy / f: text for f, text in deploy_files(inst, name, chosen).items()}
        for path in files:
            ui.check_output(path, force=force)
        for path, text in files.items():
            atomic_write_bytes(path, text.encode())
    short = [m for m in result.models if m.unmet_rps > 1e-9]
    if short and objective is None and chosen.scarce_objective is None:
        gaps = ", ".join(f"{m.model} {m.served_rps:.2f}/{m.demand_rps:g} req/s" for m in short)
        ui.err().print(
            f"error: the plan serves less than the demand ({gaps}): availability is too small; "
            "pass --scarce-objective fair|goodput to accept the most goodput instead",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(1)
    if refused:
        ui.err().print(
            f"error: vLLM cannot run {len(refused)} replica(s), not written: {'; '.join(refused)}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(1)


@templates_app.command("build")
def templates_build(
    scenario: str = _SCENARIO,
    max_nodes: int = _MAX_NODES,
    workers: int = typer.Option(1, "--workers", help="Processes for placement."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Ignore and replace the cache."),
) -> None:
    """Build (or load) the template library and say where it is cached."""
    import time

    from redundancy.coral.planner.templates import build_library, cache_path

    chosen = _scenario(scenario, max_nodes)
    if rebuild:
        cache_path(chosen).unlink(missing_ok=True)
    start = time.perf_counter()
    library = build_library(chosen, workers=workers)
    counts = {m: len(t) for m, t in library.templates.items()}
    typer.echo(f"{counts} in {time.perf_counter() - start:.2f} s -> {cache_path(chosen)}")


@templates_app.command("show")
def templates_show(
    scenario: str = _SCENARIO,
    max_nodes: int = _MAX_NODES,
    top: int = typer.Option(5, "--top", help="Templates per model, best req/s first."),
) -> None:
    """Print the best templates of each model."""
    from redundancy.coral.planner.templates import build_library

    library = build_library(_scenario(scenario, max_nodes))
    for model, items in library.templates.items():
        typer.echo(f"{model}: {len(items)} templates")
        for t in sorted(items, key=lambda t: -t.throughput)[:top]:
            layout = " | ".join(f"{s.nodes}: {s.layers} layers" for s in t.stages)
            typer.echo(f"  {t.throughput:8.2f} req/s  {layout}")


@app.command("explain")
def explain_cmd(
    plan_path: Path = typer.Argument(..., help="A plan JSON written by --out."),
) -> None:
    """Say why each replica is in the plan and how to launch it."""
    from redundancy.coral.deploy import explain
    from redundancy.coral.schema import Plan

    for line in explain(Plan.load(plan_path)):
        typer.echo(line)


@app.command("compare")
def compare_cmd(
    scenario: str = typer.Argument(
        "core",
        help="core, extended, scarce-core, scarce-extended, "
        "large-heavy, small-heavy, or a scenario YAML.",
    ),
    max_nodes: int = typer.Option(3, "--max-nodes", help="Nmax per template."),
    duration: float = typer.Option(1800.0, "--duration", help="Simulated seconds."),
    planners: str = typer.Option("", "--planners", help="Comma-separated (default: all)."),
    seed: int = typer.Option(0, "--seed"),
    fluctuate: bool = typer.Option(False, "--fluctuate", help="Fluctuating availability."),
    plot: Path = typer.Option(None, "--plot", help="Write cost/goodput-over-time PNG here."),
    scarce_objective: str = _SCARCE,
    profile: Path = _PROFILE,
    admission: float = _ADMISSION,
    time_limit: float = typer.Option(
        None,
        "--time-limit",
        help="Cap each allocation solve (seconds): best plan found, not proven optimal "
        "(large-heavy needs it to finish in minutes).",
    ),
    json_output: bool = _JSON,
) -> None:
    """Run every planner on the same scenario and trace through the simulator.

    JSON schema (--json): {"scenario": str, "planners": [{"planner", "cost_per_hour",
    "goodput_tps", "attainment", "solve_s"}]}.
    """
    from redundancy.coral.compare import compare, comparison_scenario, scenario_profile
    from redundancy.coral.compare import plot as plot_outcomes
    from redundancy.errors import ParameterError, check_range

    check_range("--max-nodes", max_nodes, 1, 8)
    if not 1 <= duration <= 86400:
        raise ParameterError(f"--duration={duration} is out of range (allowed: 1..86400 s)")
    config = _sim_config(admission)
    chosen = comparison_scenario(scenario, max_nodes, _objective(scarce_objective), time_limit)
    names = [p.strip() for p in planners.split(",") if p.strip()] or None
    table = scenario_profile(profile, chosen) if profile else None
    if time_limit is not None and not 0 < time_limit <= 86400:
        raise ParameterError(f"--time-limit={time_limit} is out of range (allowed: 0 < s <= 86400)")
    with ui.progress(f"planning and simulating {chosen.name}"):
        outcomes = compare(chosen, names, duration, seed, fluctuate, config, table)
    fields = ("planner", "cost_per_hour", "goodput_tps", "attainment", "solve_s")
    if json_output:
        planners_out = [{f: getattr(o, f) for f in fields} for o in outcomes]
        ui.print_json({"scenario": chosen.name, "planners": planners_out})
    else:
        ui.print_table(
            ("planner", "$/h", "goodput tok/s", "SLO attainment", "solve s"),
            [
                (o.planner, f"{o.cost_per_hour:.2f}", f"{o.goodput_tps:.0f}",
                 f"{o.attainment:.3f}", f"{o.solve_s:.2f}")
                for o in outcomes
            ],
            title=f"coral compare ({chosen.name})",
        )  # fmt: skip
    if plot:
        plot_outcomes(outcomes, plot, chosen.name)


@app.command("simulate")
def simulate_cmd(
    scenario: str = typer.Argument("core", help="Scenario name (as for compare) or YAML."),
    planner: str = typer.Option("coral", "--planner"),
    max_nodes: int = typer.Option(3, "--max-nodes"),
    trace: Path = typer.Option(None, "--trace", help="Azure LLM or BurstGPT CSV to replay."),
    rate_scale: float = typer.Option(1.0, "--rate-scale", help="Speed the CSV's arrivals up."),
    availability: Path = typer.Option(
        None, "--availability", help="time_s,region,config,available CSV."
    ),
    duration: float = typer.Option(600.0, "--duration", help="Simulated seconds."),
    seed: int = typer.Option(0, "--seed"),
    profile: Path = _PROFILE,
    admission: float = _ADMISSION,
    json_output: bool = _JSON,
) -> None:
    """Simulate one planner on a synthetic or loaded trace; per-model goodput and SLO attainment.

    JSON schema (--json): {"planner", "scenario", "cost_per_hour", "goodput_tps",
    "attainment", "models": {name: {"requests", "dropped", "attainment", "goodput_tps"}}}.
    """
    from functools import partial

    from redundancy.coral.baselines.planners import PLANNERS
    from redundancy.coral.compare import comparison_scenario, scenario_profile
    from redundancy.coral.sim.availability import load_availability
    from redundancy.coral.sim.simulator import simulate
    from redundancy.coral.sim.workload import load_trace, synthetic_trace
    from redundancy.errors import ParameterError, check_range

    check_range("--max-nodes", max_nodes, 1, 8)
    if not 1 <= duration <= 86400:
        raise ParameterError(f"--duration={duration} is out of range (allowed: 1..86400 s)")
    if planner not in PLANNERS:
        raise ParameterError(f"--planner {planner!r} is unknown (allowed: {', '.join(PLANNERS)})")
    if not 0 < rate_scale <= 1000:
        raise ParameterError(f"--rate-scale={rate_scale} is out of range (allowed: 0 < x <= 1000)")
    chosen = comparison_scenario(scenario, max_nodes)
    models = [m.name for m in chosen.models]
    if trace:
        requests = load_trace(trace, models, rate_scale, duration)
    else:
        requests = synthetic_trace(chosen.demand, duration, seed=seed)
    avail = load_availability(availability, chosen) if availability else None
    table = scenario_profile(profile, chosen) if profile else None
    chosen_planner = partial(PLANNERS[planner], profile=table) if table else PLANNERS[planner]
    config = _sim_config(admission)
    with ui.progress(f"simulating {planner} on {chosen.name}"):
        result = simulate(chosen, requests, chosen_planner, avail, config, duration, table)
    if json_output:
        ui.print_json(
            {
                "planner": planner,
                "scenario": chosen.name,
                "cost_per_hour": result.cost_per_hour,
                "goodput_tps": result.goodput(),
                "attainment": result.attainment(),
                "models": result.per_model(),
            }
        )
        return
    head = f"{planner} on {chosen.name}: ${result.cost_per_hour:.2f}/h, goodput "
    typer.echo(head + f"{result.goodput():.0f} tokens/s, SLO attainment {result.attainment():.3f}")
    for name, row in result.per_model().items():
        counts = f"  {name:14s} {row['requests']:6d} req, {row['dropped']:5d} dropped, "
        typer.echo(counts + f"attainment {row['attainment']:.3f}, {row['goodput_tps']:.0f} tok/s")
