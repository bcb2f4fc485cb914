"""``redundancy regen``: regenerating codes on files (encode, repair, decode, info)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from redundancy.regenerating import files
from redundancy.regenerating.params import RegenParams

NAME = "regen"
app = typer.Typer(
    help="Regenerating codes (product-matrix MBR/MSR): cheap repair, secrecy, lying nodes."
)
console = Console()

KIND = typer.Option("mbr", help="mbr (minimum repair bandwidth) or msr (minimum storage).")
N = typer.Option(6, "--n", help="Nodes.")
K = typer.Option(3, "--k", help="Nodes that suffice to read the data.")
D = typer.Option(4, "--d", help="Helpers per repair (MBR: k..n-1; MSR: 2k-2..n-1).")
L = typer.Option(0, "--l", help="Eavesdropped nodes that must learn nothing.")
B = typer.Option(0, "--b", help="Lying nodes to detect and correct.")
CONFIG = typer.Option(None, "--config", help="YAML/JSON with kind, n, k, d, l, b (overrides).")


def _params(kind: str, sizes: tuple[int, ...], config: Path | None) -> RegenParams:
    """Parameters from --config if given, else from the (n, k, d, l, b) options."""
    if config is not None:
        return RegenParams.load(config)
    n, k, d, eavesdropped, liars = sizes
    return RegenParams(kind=kind, n=n, k=k, d=d, l=eavesdropped, b=liars)  # type: ignore[arg-type]


def _report(report: files.Report, what: str) -> None:
    bad = f", corrupt {report.corrupt}" if report.corrupt else ""
    console.print(f"{what}: contacted {report.contacted} in {report.rounds} round(s){bad}")


@app.command()
def encode(
    file: Path = typer.Argument(..., help="File to encode."),
    out: Path = typer.Option(None, help="Folder for the node files (default: FILE.regen)."),
    kind: str = KIND,
    n: int = N,
    k: int = K,
    d: int = D,
    l: int = L,  # noqa: E741
    b: int = B,
    config: Path = CONFIG,
) -> None:
    """Encode FILE into n node files (alpha sub-shards each)."""
    params = _params(kind, (n, k, d, l, b), config)
    target = out or file.with_name(file.name + ".regen")
    paths = files.encode_file(file, target, params)
    console.print(f"{file} -> {target}: {len(paths)} node files, alpha={params.alpha} each")


@app.command()
def repair(
    folder: Path = typer.Argument(..., help="Folder holding the node files."),
    node: int = typer.Option(0, help="Index of the node to regenerate."),
    helpers: str = typer.Option("", help="Comma-separated helper order (default: all others)."),
) -> None:
    """Regenerate one node from d helpers (more only if some of them lie)."""
    order = [int(h) for h in helpers.split(",") if h.strip()] or None
    path, report = files.repair_file(folder, node, order)
    stripes = files.read_node(path)[1].shape[1]
    _report(report, f"repaired {path.name}")
    console.print(f"downloaded {len(report.contacted) * stripes} bytes ({stripes} per helper)")


@app.command()
def decode(
    folder: Path = typer.Argument(..., help="Folder holding the node files."),
    out: Path = typer.Option(None, help="Output file (default: FOLDER without .regen)."),
) -> None:
    """Rebuild the original file from any k nodes (more only if some of them lie)."""
    target = out
    if target is None:
        regen = folder.suffix == ".regen"
        target = folder.with_suffix("") if regen else folder.with_name(folder.name + ".out")
    report = files.decode_file(folder, target)
    _report(report, f"decoded -> {target}")


@app.command()
def info(
    kind: str = KIND,
    n: int = N,
    k: int = K,
    d: int = D,
    l: int = L,  # noqa: E741
    b: int = B,
    config: Path = CONFIG,
    size: int = typer.Option(1 << 20, help="File size in bytes for the byte figures."),
) -> None:
    """Storage per node, repair bandwidth and secure capacity, next to RS(n, k)."""
    params = _params(kind, (n, k, d, l, b), config)
    table = Table(title=f"{params.kind.upper()} (n={n}, k={k}, d={d}, l={l}, b={b})")
    table.add_column("per stripe")
    table.add_column("value", justify="right")
    for name, value in params.summary().items():
        table.add_row(name, str(value))
    console.print(table)
    stripes = -(-size // params.secure_symbols)
    rs_shard = -(-size // params.k)
    bytes_table = Table(title=f"for a {size}-byte file")
    for column in ("", "regenerating", f"RS({n},{k})"):
        bytes_table.add_column(column, justify="right")
    bytes_table.add_row("stored per node", str(params.alpha * stripes), str(rs_shard))
    bytes_table.add_row("repair download", str(params.d * stripes), str(params.k * rs_shard))
    if params.l:
        hidden = str(params.secure_symbols * stripes)
        bytes_table.add_row(f"file bytes hidden from any {params.l} nodes", hidden, "0")
    console.print(bytes_table)
