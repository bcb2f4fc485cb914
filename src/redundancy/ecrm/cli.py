"""``redundancy ecrm``: DLRM training on erasure-coded parameter servers, and the comparison.

Cheap to import: torch and the ECRM library are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from redundancy import ui

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "ecrm": "ECRM: erasure-coded embedding tables for fault-tolerant DLRM training.",
}
NAME = "ecrm"
app = typer.Typer(
    help="ECRM: erasure-coded embedding tables for fault-tolerant DLRM training.",
    no_args_is_help=True,
)

# Setting each shared flag overrides, and the flag named in its errors.
_FLAGS = {
    "steps": "--steps",
    "fail_at": "--fail-at",
    "fail_server": "--fail-server",
    "servers.k": "--k",
    "servers.num_servers": "--servers",
    "servers.optimizer": "--optimizer",
    "model.table_rows": "--rows",
    "model.dim": "--dim",
    "mtbf_s": "--mtbf",
    "mode": "--mode",
    "data.path": "--criteo",
}
_TABLES = 26


def _config(config: Path | None, quick: bool, flags: dict[str, Any]):
    """Preset (or config file) + every flag given, validated once, together.

    Without ``--fail-at`` the presets kill a server halfway through the run (whatever ``--steps``
    is); a config file's own ``fail_at`` (or its absence: no failure) is kept. ``--fail-at -1``
    means no failure.
    """
    from redundancy.ecrm.config import (
        CLI_DEFAULT,
        QUICK,
        fail_midway,
        read_config_file,
        with_overrides,
    )

    given = {key: value for key, value in flags.items() if value is not None}
    if "model.table_rows" in given:
        given["model.table_rows"] = [given["model.table_rows"]] * _TABLES
    if given.get("fail_at") == -1:
        given["fail_at"] = None
    if config is not None:
        base = read_config_file(config)
    else:
        base = dict(QUICK if quick else CLI_DEFAULT)
        if "fail_at" not in given:
            given["fail_at"] = fail_midway(given.get("steps", base["steps"]))
    labels = {key: _FLAGS[key] for key in given if key in _FLAGS}
    return with_overrides(base, given, labels=labels, source=config)


def _flags(**kw: Any) -> dict[str, Any]:
    return {
        "steps": kw["steps"],
        "fail_at": kw["fail_at"],
        "fail_server": kw["fail_server"],
        "servers.k": kw["k"],
        "servers.num_servers": kw["servers"],
        "servers.optimizer": kw["optimizer"],
        "model.table_rows": kw["rows"],
        "model.dim": kw["dim"],
        "mtbf_s": kw["mtbf"],
    }


def _finite(value: float | None) -> float | None:
    return None if value is None or value != value else float(value)


_STEPS = typer.Option(None, help="Training steps (default 200; 40 with --quick).")
_FAIL = typer.Option(
    None, "--fail-at", help="Kill a server before this step (default: halfway; -1: never)."
)
_FSRV = typer.Option(None, "--fail-server", help="Which server to kill (default 0).")
_K = typer.Option(None, "-k", "--k", help="Data rows per stripe (2 or 4 in the paper).")
_SRV = typer.Option(None, "--servers", help="Parameter servers (>= k + 1).")
_OPT = typer.Option(None, "--optimizer", help="sgd or adagrad.")
_ROWS = typer.Option(None, "--rows", help="Rows per embedding table (26 tables).")
_DIM = typer.Option(None, "--dim", help="Embedding dimension.")
_MTBF = typer.Option(None, "--mtbf", help="Mean time between failures (s) for Young's interval.")
_CFG = typer.Option(None, "--config", help="YAML/JSON TrainConfig (flags override it).")
_QUICK = typer.Option(False, "--quick", help="Small tables, 40 steps.")
_JSON = typer.Option(False, "--json", help="Print one JSON document on stdout instead.")


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
    as_json: bool = _JSON,
) -> None:
    """Train DLRM; print throughput over time, the pause and the recovery time."""
    flags = _flags(**locals())
    flags.update(
        {
            "mode": mode,
            "use_ray": True if ray else None,
            "data.path": str(criteo) if criteo is not None else None,
        }
    )
    cfg = _config(config, quick, flags)

    from redundancy.ecrm.train import ray_session
    from redundancy.ecrm.train import train as run_training

    with ui.progress(f"training ({cfg.mode})", total=cfg.steps) as advance:
        if cfg.use_ray:
            with ray_session():
                res = run_training(cfg, lambda _step, _loss: advance())
        else:
            res = run_training(cfg, lambda _step, _loss: advance())
    window = max(cfg.steps // 10, 1)
    times, rates = res.throughput(window)
    samples = [
        (t, v, res.losses.get(min((i + 1) * window, cfg.steps) - 1))
        for i, (t, v) in enumerate(zip(times, rates, strict=True))
    ]
    losses = [res.losses[i] for i in range(cfg.steps)]
    first, last = losses[: min(10, cfg.steps)], losses[max(0, cfg.steps - 10) :]
    failure = None
    if res.fail_time is not None:
        failure = {
            "server": cfg.fail_server,
            "before_step": cfg.fail_at,
            "at_s": res.fail_time,
            "pause_s": _finite(res.pause_s),
            "recovery_s": _finite(res.recovery_s),
            "redone_steps": res.redone_steps,
            "rebuild_s": res.rebuild_s,
        }
    if as_json:
        ui.print_json(
            {
                "mode": cfg.mode,
                "k": cfg.servers.k,
                "servers": cfg.servers.num_servers,
                "steps": cfg.steps,
                "total_s": res.total_s,
                "losses": losses,
                "throughput": [
                    {"t_s": t, "steps_per_s": v, "loss": loss} for t, v, loss in samples
                ],
                "failure": failure,
                "checkpoints": res.checkpoints if cfg.mode == "checkpoint" else None,
                "checkpoint_interval_steps": res.interval_steps,
            }
        )
        return
    ui.print_table(
        ("t (s)", "new steps/s", "loss"),
        [
            (f"{t:.2f}", f"{v:.1f}", "n/a" if loss is None else f"{loss:.4f}")
            for t, v, loss in samples
        ],
        title=f"ecrm train --mode {cfg.mode} (k={cfg.servers.k}, {cfg.steps} steps)",
    )
    print(
        f"loss: first 10 steps {sum(first) / len(first):.4f} -> last 10 steps "
        f"{sum(last) / len(last):.4f}"
    )
    if failure is not None:
        print(
            f"server {cfg.fail_server} killed before step {cfg.fail_at} "
            f"(t={res.fail_time:.2f} s): pause {ui.format_number(failure['pause_s'])} s, "
            f"recovery {ui.format_number(failure['recovery_s'])} s (until back past the failure "
            f"step), redone steps {res.redone_steps}"
        )
    if res.rebuild_s is not None:
        print(f"background rebuild of the replacement: {res.rebuild_s:.2f} s")
    if cfg.mode == "checkpoint":
        print(f"checkpoints: {res.checkpoints}, Young interval {res.interval_steps} steps")


def _spread(spread: Any) -> dict[str, Any]:
    values = [_finite(v) for v in spread.values]
    known = [v for v in values if v is not None]
    return {
        "median": _finite(spread.median) if known else None,
        "min": min(known) if known else None,
        "max": max(known) if known else None,
        "values": values,
    }


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
    force: bool = typer.Option(False, "--force", help="Replace an existing --plot file."),
    as_json: bool = _JSON,
) -> None:
    """ECRM vs checkpointing vs no fault tolerance: overhead, recovery time, pause."""
    cfg = _config(config, quick, _flags(**locals()))
    when = cfg.fail_at if cfg.fail_at is not None else cfg.steps // 2
    if plot is not None:
        ui.check_output(plot, force=force)

    from redundancy.ecrm.compare import MODES, plot_throughput
    from redundancy.ecrm.compare import compare as run_compare

    with ui.progress("ECRM vs checkpointing vs none", total=rounds * len(MODES)) as advance:
        cmp = run_compare(cfg, when, lambda _what: advance(), rounds)
    if plot is not None:
        plot_throughput(cmp, str(plot), max(cfg.steps // 20, 1))
        ui.note(f"plot: {plot}")
    if as_json:
        modes = {}
        for mode in MODES:
            faulty = mode != "none"
            modes[mode] = {
                "segment_s": _spread(cmp.segment_s(mode)),
                "overhead": _spread(cmp.overhead(mode)) if faulty else None,
                "recovery_s": _spread(cmp.recovery(mode)) if faulty else None,
                "pause_s": _spread(cmp.pause(mode)) if faulty else None,
                "rebuild_s": _spread(cmp.rebuild()) if mode == "ecrm" else None,
            }
        ui.print_json(
            {
                "fail_at": when,
                "steps": cfg.steps,
                "k": cfg.servers.k,
                "servers": cfg.servers.num_servers,
                "rounds": rounds,
                "modes": modes,
                "recovery_ratio": _spread(cmp.recovery_ratio()),
                "rebuild_ratio": _spread(cmp.rebuild_ratio()),
                "throughput_while_rebuilding": _spread(cmp.recovery_throughput()),
                "plot": str(plot) if plot is not None else None,
            }
        )
        return
    ui.print_table(
        ("mode", f"first {when} steps (s)", "overhead", "recovery (s)", "pause (s)", "rebuild (s)"),
        cmp.table(),
        title=f"ECRM vs checkpointing (server killed at step {when}), median (min..max)",
    )
    print(
        f"recovery: checkpoint/ECRM = {cmp.recovery_ratio().fmt('.1f', unit='x')}; checkpoint "
        f"recovery / ECRM rebuild = {cmp.rebuild_ratio().fmt('.1f', unit='x')}; ECRM "
        f"throughput while rebuilding = {cmp.recovery_throughput().fmt('.0f', 100, '%')} of normal"
    )
