"""``redundancy abft``: device profile, per-layer plan, overhead benchmark, fault injection."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from redundancy.errors import ParameterError

NAME = "abft"
app = typer.Typer(
    help="Intensity-guided ABFT: checksum-protected Linear/Conv2d inference.",
    no_args_is_help=True,
)
_out = Console()


def _bits(text: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError as exc:
        raise ParameterError(f"bits={text!r} must be comma-separated integers") from exc


@app.command()
def profile(
    name: str = typer.Argument(
        "cpu", help="cpu/cuda (measured), T4, V100, A100, H100, L4, or a JSON/YAML file."
    ),
) -> None:
    """Show a device profile: peak FLOP/s per dtype, bandwidth, ridge point."""
    from redundancy.abft.profile import get_profile

    p = get_profile(name)
    table = Table(title=f"device profile {p.name}")
    for col in ("dtype", "peak TFLOP/s", "bandwidth GB/s", "ridge flop/byte", "op launch us"):
        table.add_column(col)
    for dtype in p.peak_flops:
        table.add_row(
            dtype,
            f"{p.peak(dtype) / 1e12:.3f}",
            f"{p.bandwidth / 1e9:.1f}",
            f"{p.ridge(dtype):.1f}",
            f"{p.launch_s * 1e6:.2f}",
        )
    _out.print(table)


@app.command()
def plan(
    model: str = typer.Argument("resnet50", help="Zoo network."),
    device: str = typer.Option("T4", "--profile", help="Device profile (see `profile`)."),
    batch: int = typer.Option(1, help="Batch size."),
    width: float = typer.Option(0.25, help="Channel multiplier of the zoo network."),
    size: int = typer.Option(None, help="Input height = width (images only)."),
    tile: int = typer.Option(32, help="Output channels per checksum tile."),
    selector: str = typer.Option(
        "cost", help="cost (roofline), paper (AI vs ridge) or measured (timed on this machine)."
    ),
) -> None:
    """Per-layer GEMM, arithmetic intensity, predicted overheads and the chosen scheme."""
    from redundancy.abft import zoo
    from redundancy.abft.profile import get_profile
    from redundancy.abft.selector import plan as make_plan

    prof = get_profile(device)
    net, x = zoo.build(model, width), zoo.example_input(model, batch, size=size)
    plans = make_plan(net, x, prof, tile, selector)  # type: ignore[arg-type]
    table = Table(title=f"{model} on {prof.name} (ridge {prof.ridge():.1f} flop/byte)")
    timed = "timed global / tiled %"
    for col in ("layer", "M", "N", "K", "AI", "global %", "tiled %", timed, "scheme"):
        table.add_column(col)
    for p in plans:
        g, t = (100 * p.overhead_s[s] / p.base_s for s in ("global", "tiled"))
        s = p.shape
        cells = [str(s.m), str(s.n), str(s.k), f"{p.intensity:.1f}", f"{g:.1f}", f"{t:.1f}"]
        m = p.measured_s
        cells.append("-" if m is None else f"{100 * m['global'] / m['none'] - 100:.0f} / "
                     f"{100 * m['tiled'] / m['none'] - 100:.0f}")  # fmt: skip
        table.add_row(p.name, *cells, p.scheme)
    _out.print(table)


@app.command()
def bench(
    model: str = typer.Argument("dlrm", help="Zoo network."),
    batch: int = typer.Option(1, help="Batch size."),
    width: float = typer.Option(0.25, help="Channel multiplier."),
    repeats: int = typer.Option(5, help="Timed rounds (median)."),
    device: str = typer.Option("cpu", "--profile", help="Profile used by the guided selector."),
    selector: str = typer.Option("measured", help="Guided selector: measured, cost or paper."),
) -> None:
    """Inference time unprotected and with each strategy; overheads and guided/global ratio."""
    import torch

    from redundancy.abft import zoo
    from redundancy.abft.bench import time_strategies
    from redundancy.abft.profile import get_profile

    torch.manual_seed(0)
    net, x = zoo.build(model, width), zoo.example_input(model, batch)
    t = time_strategies(net, x, get_profile(device), repeats, selector=selector)  # type: ignore[arg-type]
    table = Table(title=f"{model}, batch {batch}: unprotected {t.unprotected * 1e3:.3f} ms")
    for col in ("strategy", "ms", "overhead %"):
        table.add_column(col)
    for name, sec in t.seconds.items():
        table.add_row(name, f"{sec * 1e3:.3f}", f"{100 * t.overhead(name):.1f}")
    _out.print(table)
    best = min(t.overhead("global"), t.overhead("tiled"))
    _out.print(f"guided/global overhead ratio: {t.overhead('guided') / t.overhead('global'):.2f}")
    _out.print(f"guided/best fixed overhead ratio: {t.overhead('guided') / best:.2f} "
               f"(timing noise {100 * t.noise:.1f} %)")  # fmt: skip


@app.command()
def inject(
    model: str = typer.Argument("dlrm", help="Zoo network."),
    target: str = typer.Option("output", help="weight, activation or output."),
    strategy: str = typer.Option("tiled", help="guided, global, tiled or replication."),
    bits: str = typer.Option("31,30,29,27,23,15,0", help="Bit positions to flip."),
    trials: int = typer.Option(10, help="Flips per bit position."),
    width: float = typer.Option(0.25, help="Channel multiplier."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Flip single bits and report detection rate, corruption and false positives per bit."""
    from redundancy.abft import zoo
    from redundancy.abft.inject import campaign
    from redundancy.abft.profile import get_profile
    from redundancy.abft.protect import protect

    x = zoo.example_input(model, 1, seed)
    prof = get_profile("T4") if strategy == "guided" else None
    protected = protect(zoo.build(model, width, seed), prof, x, strategy=strategy)  # type: ignore[arg-type]
    result = campaign(protected, x, target, _bits(bits), trials, seed)  # type: ignore[arg-type]
    table = Table(title=f"{model}: {target} bit flips, {strategy} ABFT")
    for col in ("bit", "flips", "detected %", "corrupted output", "detected of corrupted %"):
        table.add_column(col)
    for r in result.bits:
        rate, cover = f"{100 * r.detection_rate:.0f}", f"{100 * r.coverage:.0f}"
        table.add_row(str(r.bit), str(r.trials), rate, str(r.corrupted), cover)
    _out.print(table)
    _out.print(f"false positives: {result.false_positives} of {result.clean_runs} clean runs")
