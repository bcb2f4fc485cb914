"""``redundancy coral``: plan multi-LLM serving on heterogeneous GPUs (thin layer over the API)."""

from __future__ import annotations

from pathlib import Path

import typer

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


def _scenario(source: str | None, max_nodes: int | None):
    from redundancy.coral.catalog import load_scenario
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
) -> None:
    """Plan the cheapest deployment meeting every model's demand (or the most goodput)."""
    from redundancy.coral.deploy import skypilot_task
    from redundancy.coral.plan import plan, print_plan
    from redundancy.storage_io import atomic_write_bytes

    result = plan(_scenario(scenario, max_nodes), workers=workers)
    print_plan(result)
    if out:
        result.save(out)
    if deploy:
        for i, inst in enumerate(result.instances):
            name = f"{i:03d}-{inst.model.lower()}"
            atomic_write_bytes(deploy / f"{name}.yaml", skypilot_task(inst, name).encode())


@templates_app.command("build")
def templates_build(
    scenario: str = _SCENARIO,
    max_nodes: int = _MAX_NODES,
    workers: int = typer.Option(1, "--workers", help="Processes for placement."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Ignore and replace the cache."),
) -> None:
    """Build (or load) the template library and say where it is cached."""
    import time

    from redundancy.coral.templates import build_library, cache_path

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
    from redundancy.coral.templates import build_library

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
    from redundancy.coral.plan import Plan

    for line in explain(Plan.load(plan_path)):
        typer.echo(line)
