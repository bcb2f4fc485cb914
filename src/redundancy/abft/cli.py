"""``redundancy abft``: device profile, per-layer plan, overhead benchmark, fault injection.

Tables go to stdout (full width when piped); ``--json`` prints one JSON document instead (its
schema is in each command's help). Progress goes to stderr. torch and the library are imported
inside the commands, so building the CLI stays cheap.
"""

from __future__ import annotations

from typing import Any

import typer

from redundancy import ui
from redundancy.errors import ParameterError

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "abft": "Intensity-guided ABFT: checksum-protected Linear/Conv2d inference.",
}
NAME = "abft"
app = typer.Typer(
    help="Intensity-guided ABFT: checksum-protected Linear/Conv2d inference.",
    no_args_is_help=True,
)
JSON_HELP = "Print one JSON document (schema in this command's help) instead of a table."


def _bits(text: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise ParameterError(
            f"--bits={text!r} must be comma-separated bit positions (e.g. 30,29,0)"
        ) from None


def _percent(value: float) -> str:
    return ui.format_number(100 * value, 1)


@app.command()
def profile(
    name: str = typer.Argument(
        "cpu", help="cpu/cuda (measured), T4, V100, A100, H100, L4, or a JSON/YAML file."
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a device profile: peak FLOP/s per dtype, bandwidth, ridge point.

    JSON schema (``--json``): {"name": str, "bandwidth_bytes_per_s": float,
    "launch_s": float, "dtypes": {dtype: {"peak_flops": float, "ridge_flops_per_byte": float}}}.
    """
    from redundancy.abft.profile import get_profile

    p = get_profile(name)
    if json_output:
        dtypes = {
            d: {"peak_flops": p.peak(d), "ridge_flops_per_byte": p.ridge(d)} for d in p.peak_flops
        }
        ui.print_json(
            {"name": p.name, "bandwidth_bytes_per_s": p.bandwidth, "launch_s": p.launch_s}
            | {"dtypes": dtypes}
        )
        return
    columns = ("dtype", "peak TFLOP/s", "bandwidth GB/s", "ridge flop/byte", "op launch us")
    rows = [
        (
            d,
            ui.format_number(p.peak(d) / 1e12),
            ui.format_number(p.bandwidth / 1e9, 1),
            ui.format_number(p.ridge(d), 1),
            ui.format_number(p.launch_s * 1e6, 2),
        )
        for d in p.peak_flops
    ]
    ui.print_table(columns, rows, title=f"device profile {p.name}")


@app.command()
def plan(
    model: str = typer.Argument("resnet50", help="Zoo network."),
    device: str = typer.Option("T4", "--profile", help="Device profile (see `profile`)."),
    batch: int = typer.Option(1, help="Batch size."),
    width: float = typer.Option(0.25, help="Channel multiplier of the zoo network."),
    size: int | None = typer.Option(None, help="Input height = width (images only)."),
    tile: int = typer.Option(32, help="Output channels per checksum tile."),
    selector: str = typer.Option(
        "cost", help="cost (roofline), paper (AI vs ridge) or measured (timed on this machine)."
    ),
    seed: int = typer.Option(0, help="Seed of the random weights and input."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Per-layer GEMM, arithmetic intensity, predicted overheads and the chosen scheme.

    JSON schema (``--json``): {"model": str, "profile": str, "ridge_flops_per_byte": float,
    "layers": [{"name": str, "m": int, "n": int, "k": int, "groups": int,
    "intensity": float, "predicted_overhead": {"global": float, "tiled": float} (fraction of
    the layer's predicted time), "measured_s": {"none"|"global"|"tiled": float} | null,
    "scheme": "global" | "tiled"}], "unprotected": {layer: reason}}.
    """
    from redundancy.abft import zoo
    from redundancy.abft.profile import get_profile
    from redundancy.abft.schemes import protectable_layers
    from redundancy.abft.selector import plan as make_plan

    prof = get_profile(device)
    net, x = zoo.build(model, width, seed), zoo.example_input(model, batch, seed, size=size)
    if selector == "measured":
        ui.note(f"timing both schemes on each layer of {model} on this machine ...")
    plans = make_plan(net, x, prof, tile, selector)  # type: ignore[arg-type]
    skipped = protectable_layers(net)[1]
    if json_output:
        layers = [
            {
                "name": p.name,
                "m": p.shape.m,
                "n": p.shape.n,
                "k": p.shape.k,
                "groups": p.shape.groups,
                "intensity": p.intensity,
                "predicted_overhead": {s: p.overhead_s[s] / p.base_s for s in ("global", "tiled")},
                "measured_s": p.measured_s,
                "scheme": p.scheme,
            }
            for p in plans
        ]
        ui.print_json(
            {"model": model, "profile": prof.name, "ridge_flops_per_byte": prof.ridge()}
            | {"layers": layers, "unprotected": skipped}
        )
        return
    columns = ["layer", "M", "N", "K", "AI flop/byte", "global %", "tiled %"]
    columns += ["timed global %", "timed tiled %", "scheme"]
    rows = []
    for p in plans:
        m = p.measured_s
        timed = (
            ["-", "-"]
            if m is None
            else [_percent(m[s] / m["none"] - 1) for s in ("global", "tiled")]
        )
        predicted = [_percent(p.overhead_s[s] / p.base_s) for s in ("global", "tiled")]
        shape = [str(p.shape.m), str(p.shape.n), str(p.shape.k)]
        rows.append(
            [p.name, *shape, ui.format_number(p.intensity, 1), *predicted, *timed, p.scheme]
        )
    title = f"{model} on {prof.name} (ridge {ui.format_number(prof.ridge(), 1)} flop/byte)"
    ui.print_table(columns, rows, title=title)
    for name, reason in skipped.items():
        ui.note(f"not protected: {name}: {reason}")


@app.command()
def bench(
    model: str = typer.Argument("dlrm", help="Zoo network."),
    batch: int = typer.Option(1, help="Batch size."),
    width: float = typer.Option(0.25, help="Channel multiplier."),
    repeats: int = typer.Option(5, help="Timed rounds (median)."),
    device: str = typer.Option("cpu", "--profile", help="Profile used by the guided selector."),
    selector: str = typer.Option("measured", help="Guided selector: measured, cost or paper."),
    seed: int = typer.Option(0, help="Seed of the random weights and input."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Inference time unprotected and with each strategy; overheads and guided/global ratio.

    JSON schema (``--json``): {"model": str, "batch": int, "unprotected_s": float,
    "seconds": {strategy: float}, "overhead": {strategy: float} (fraction, 0.1 = 10 %),
    "guided_over_global": float, "guided_over_best_fixed": float, "noise": float (fraction),
    "false_positives": int, "max_clean_ratio": float}.
    """
    import torch

    from redundancy.abft import zoo
    from redundancy.abft.bench import progress_steps, time_strategies
    from redundancy.abft.profile import get_profile

    steps = progress_steps(repeats)  # validates repeats before the model is built
    torch.manual_seed(seed)
    net, x = zoo.build(model, width, seed), zoo.example_input(model, batch, seed)
    prof = get_profile(device)
    ui.note(f"timing {model} unprotected and under each strategy, {repeats} rounds ...")
    with ui.progress(f"abft bench {model}", total=steps) as advance:
        t = time_strategies(net, x, prof, repeats, selector=selector, progress=advance)  # type: ignore[arg-type]
    overhead = {name: t.overhead(name) for name in t.seconds}
    best = min(overhead["global"], overhead["tiled"])
    ratios = {
        "guided_over_global": overhead["guided"] / overhead["global"],
        "guided_over_best_fixed": overhead["guided"] / best,
    }
    if json_output:
        ui.print_json(
            {"model": model, "batch": batch, "unprotected_s": t.unprotected, "seconds": t.seconds}
            | {"overhead": overhead, **ratios, "noise": t.noise}
            | {"false_positives": t.false_positives, "max_clean_ratio": t.max_clean_ratio}
        )
        return
    rows = [["unprotected", ui.format_number(t.unprotected * 1e3), "0"]]
    rows += [
        [name, ui.format_number(sec * 1e3), _percent(overhead[name])]
        for name, sec in t.seconds.items()
    ]
    ui.print_table(("strategy", "ms", "overhead %"), rows, title=f"{model}, batch {batch}")
    summary = [
        ["guided/global overhead", ui.format_number(ratios["guided_over_global"], 2)],
        ["guided/best fixed overhead", ui.format_number(ratios["guided_over_best_fixed"], 2)],
        ["timing noise %", _percent(t.noise)],
        ["false positives", str(t.false_positives)],
    ]
    ui.print_table(("measure", "value"), summary)


@app.command()
def inject(
    model: str = typer.Argument("dlrm", help="Zoo network."),
    target: str = typer.Option("output", help="weight, activation or output."),
    strategy: str = typer.Option("tiled", help="guided, global, tiled or replication."),
    bits: str = typer.Option("31,30,29,27,23,15,0", help="Bit positions to flip."),
    trials: int = typer.Option(10, help="Flips per bit position."),
    width: float = typer.Option(0.25, help="Channel multiplier."),
    seed: int = typer.Option(0, help="Random seed."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Flip single bits and report detection rate, corruption and false positives per bit.

    JSON schema (``--json``): {"model": str, "target": str, "strategy": str,
    "bits": [{"bit": int, "flips": int, "detected": int, "corrupted": int,
    "detected_corrupted": int}], "clean_runs": int, "false_positives": int}.
    """
    positions = _bits(bits)
    from redundancy.abft import zoo
    from redundancy.abft.inject import campaign
    from redundancy.abft.profile import get_profile
    from redundancy.abft.protect import protect

    x = zoo.example_input(model, 1, seed)
    prof = get_profile("T4") if strategy == "guided" else None
    protected = protect(zoo.build(model, width, seed), prof, x, strategy=strategy)  # type: ignore[arg-type]
    with ui.progress(f"abft inject {model}", total=len(positions) * trials) as advance:
        result = campaign(protected, x, target, positions, trials, seed, progress=advance)  # type: ignore[arg-type]
    if json_output:
        per_bit = [
            {"bit": r.bit, "flips": r.trials, "detected": r.detected, "corrupted": r.corrupted}
            | {"detected_corrupted": r.detected_corrupted}
            for r in result.bits
        ]
        document: dict[str, Any] = {"model": model, "target": target, "strategy": strategy}
        document |= {"bits": per_bit, "clean_runs": result.clean_runs}
        ui.print_json(document | {"false_positives": result.false_positives})
        return
    columns = ("bit", "flips", "detected %", "corrupted output", "detected of corrupted %")
    rows = [
        (r.bit, r.trials, _percent(r.detection_rate), r.corrupted, _percent(r.coverage))
        for r in result.bits
    ]
    ui.print_table(columns, rows, title=f"{model}: {target} bit flips, {strategy} ABFT")
    summary = f"{result.false_positives} of {result.clean_runs} clean runs"
    ui.print_table(("measure", "value"), [("false positives", summary)])
