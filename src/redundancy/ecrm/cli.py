"""``redundancy ecrm``: DLRM training on erasure-coded parameter servers, and the comparison."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

NAME = "ecrm"
app = typer.Typer(
    help="ECRM: erasure-coded embedding tables for fault-tolerant DLRM training.",
    no_args_is_help=True,
)
_out = Console()


def _config(config: Path | None, quick: bool, overrides: dict):
    from redundancy.ecrm.config import CLI_DEFAULT, QUICK, load_config, make_config, with_overrides

    base = load_config(config) if config else make_config(**(QUICK if quick else CLI_DEFAULT))
    fail_at = overrides.pop("fail_at", None)
    cfg = with_overrides(base, overrides)
    if fail_at is not None:
        cfg = with_overrides(cfg, {"fail_at": fail_at if fail_at >= 0 else None})
    return cfg


def _common(**kw) -> dict:
    return {
        "steps": kw["steps"],
        "fail_at": kw["fail_at"],
        "fail_server": kw["fail_server"],
        "servers.k": kw["k"],
        "servers.num_servers": kw["servers"],
        "servers.optimizer": kw["optimizer"],
        "model.table_rows": [kw["rows"]] * 26 if kw["rows"] else None,
        "model.dim": kw["dim"],
        "mtbf_s": kw["mtbf"],
    }


_STEPS = typer.Option(None, help="Training steps (default 200; 40 with --quick).")
_FAIL = typer.Option(None, "--fail-at", help="Kill a server before this step (-1: never).")
_FSRV = typer.Option(None, "--fail-server", help="Which server to kill.")
_K = typer.Option(None, "--k", help="Data rows per stripe (2 or 4 in the paper).")
_SRV = typer.Option(None, "--servers", help="Parameter servers (>= k + 1).")
_OPT = typer.Option(None, "--optimizer", help="sgd or adagrad.")
_ROWS = typer.Option(None, "--rows", help="Rows per embedding table (26 tables).")
_DIM = typer.Option(None, "--dim", help="Embedding dimension.")
_MTBF = typer.Option(None, "--mtbf", help="Mean time between failures (s) for Young's interval.")
_CFG = typer.Option(None, "--config", help="YAML/JSON TrainConfig (flags override it).")
_QUICK = typer.Option(False, "--quick", help="Small tables, 40 steps.")


@app.command()
def train(
    mode: str = typer.Option(None, "--mode", help="ecrm, checkpoint or none."),
    steps: int = _STEPS,
    fail_at: int = _FAIL,
    fail_server: int = _FSRV,
    k: int = _K,
    servers: int = _SRV,
    optimizer: str = _OPT,
    rows: int = _ROWS,
    dim: int = _DIM,
    mtbf: float = _MTBF,
    ray: bool = typer.Option(False, "--ray", help="One Ray actor process per server."),
    criteo: Path = typer.Option(None, "--criteo", help="Criteo Kaggle/Terabyte text file."),
    config: Path = _CFG,
    quick: bool = _QUICK,
) -> None:
    """Train DLRM; print throughput over time, the pause and the recovery time."""
    from redundancy.ecrm.train import ray_session
    from redundancy.ecrm.train import train as run_training

    over = _common(**locals())
    over.update(
        {"mode": mode, "use_ray": ray or None, "data.path": str(criteo) if criteo else None}
    )
    cfg = _config(config, quick, over)
    if cfg.use_ray:
        with ray_session():
            res = run_training(cfg)
    else:
        res = run_training(cfg)
    table = Table(title=f"ecrm train --mode {cfg.mode} (k={cfg.servers.k}, {cfg.steps} steps)")
    for col in ("t (s)", "steps/s", "loss"):
        table.add_column(col, justify="right")
    times, rates = res.throughput(max(cfg.steps // 10, 1))
    idx = max(cfg.steps // 10, 1)
    for i, (t, v) in enumerate(zip(times, rates, strict=True)):
        step = min((i + 1) * idx, cfg.steps) - 1
        table.add_row(f"{t:.2f}", f"{v:.1f}", f"{res.losses.get(step, float('nan')):.4f}")
    _out.print(table)
    first = sum(res.losses[i] for i in range(min(10, cfg.steps))) / min(10, cfg.steps)
    last = [res.losses[i] for i in range(max(0, cfg.steps - 10), cfg.steps)]
    _out.print(f"loss: first 10 steps {first:.4f} -> last 10 steps {sum(last) / len(last):.4f}")
    if res.fail_time is not None:
        _out.print(
            f"server {cfg.fail_server} killed at step {cfg.fail_at} (t={res.fail_time:.2f} s): "
            f"pause {res.pause_s:.3f} s, recovery {res.recovery_s:.2f} s (until back past the "
            f"failure step), redone steps {res.redone_steps}"
        )
    if res.rebuild_s is not None:
        _out.print(f"background rebuild of the replacement: {res.rebuild_s:.2f} s")
    if cfg.mode == "checkpoint":
        _out.print(f"checkpoints: {res.checkpoints}, Young interval {res.interval_steps} steps")


@app.command()
def compare(
    steps: int = _STEPS,
    fail_at: int = _FAIL,
    fail_server: int = _FSRV,
    k: int = _K,
    servers: int = _SRV,
    optimizer: str = _OPT,
    rows: int = _ROWS,
    dim: int = _DIM,
    mtbf: float = _MTBF,
    config: Path = _CFG,
    quick: bool = _QUICK,
    plot: Path = typer.Option(None, "--plot", help="Write throughput-over-time PNG here."),
    rounds: int = typer.Option(2, "--rounds", min=1, help="Interleaved rounds (medians)."),
) -> None:
    """ECRM vs checkpointing vs no fault tolerance: overhead, recovery time, pause."""
    from redundancy.ecrm.compare import compare as run_compare
    from redundancy.ecrm.compare import plot_throughput
    from redundancy.errors import ParameterError

    cfg = _config(config, quick, _common(**locals()))
    when = cfg.fail_at if cfg.fail_at is not None else cfg.steps // 2
    if cfg.servers.num_servers < cfg.servers.k + 1:
        raise ParameterError("servers must be >= k + 1 for ECRM")
    cmp = run_compare(cfg, when, lambda m: _out.print(f"[dim]{m}[/dim]"), rounds)
    table = Table(title=f"ECRM vs checkpointing (server killed at step {when}), median (min..max)")
    for col in (
        "mode", f"first {when} steps (s)", "overhead", "recovery (s)", "pause (s)", "rebuild (s)"
    ):  # fmt: skip
        table.add_column(col, justify="right")
    for row in cmp.table():
        table.add_row(*row)
    _out.print(table)
    _out.print(
        f"recovery: checkpoint/ECRM = {cmp.recovery_ratio().fmt('.1f', unit='x')}; checkpoint "
        f"recovery / ECRM rebuild = {cmp.rebuild_ratio().fmt('.1f', unit='x')}; ECRM "
        f"throughput while rebuilding = {cmp.recovery_throughput().fmt('.0f', 100, '%')} of normal"
    )
    if plot:
        plot_throughput(cmp, str(plot), max(cfg.steps // 20, 1))
        _out.print(f"plot: {plot}")
