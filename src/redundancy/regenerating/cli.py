"""``redundancy regen``: regenerating codes on files (encode, repair, decode, info).

Library modules are imported inside the commands, so building the command line stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from redundancy import ui
from redundancy.errors import ParameterError

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "regen": "Regenerating codes (product-matrix MBR/MSR): cheap repair, secrecy, lying nodes.",
}
NAME = "regen"
app = typer.Typer(
    help="Regenerating codes (product-matrix MBR/MSR): cheap repair, secrecy, lying nodes."
)

KIND = typer.Option("mbr", help="mbr (minimum repair bandwidth) or msr (minimum storage).")
N = typer.Option(6, "-n", "--n", help="Nodes.")
K = typer.Option(3, "-k", "--k", help="Nodes that suffice to read the data.")
D = typer.Option(4, "--d", help="Helpers per repair (MBR: k..n-1; MSR: 2k-2..n-1).")
L = typer.Option(0, "--l", help="Eavesdropped nodes that must learn nothing.")
B = typer.Option(0, "--b", help="Lying nodes to detect and correct.")
CONFIG = typer.Option(None, "--config", help="YAML/JSON with kind, n, k, d, l, b (overrides).")
FORCE = typer.Option(False, "--force", help="Replace existing output files.")
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout instead of text.")


def _params(kind: str, sizes: tuple[int, ...], config: Path | None) -> Any:
    """Parameters from --config if given, else from the (n, k, d, l, b) options."""
    from redundancy.regenerating.params import RegenParams

    if config is not None:
        return RegenParams.load(config)
    n, k, d, eavesdropped, liars = sizes
    return RegenParams(kind=kind, n=n, k=k, d=d, l=eavesdropped, b=liars)  # type: ignore[arg-type]


def _helpers(text: str) -> list[int] | None:
    """``"1,2,4"`` -> [1, 2, 4]; empty -> None (all other nodes)."""
    try:
        order = [int(h) for h in text.split(",") if h.strip()]
    except ValueError:
        raise ParameterError(
            f"helpers={text!r}: expected comma-separated node indices (e.g. 1,2,4)"
        ) from None
    return order or None


def _report_line(report: Any, what: str) -> str:
    bad = f", corrupt {report.corrupt}" if report.corrupt else ""
    return f"{what}: contacted {report.contacted} in {report.rounds} round(s){bad}"


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
    force: bool = FORCE,
) -> None:
    """Encode FILE into n node files (alpha sub-shards each)."""
    from redundancy.regenerating import files

    params = _params(kind, (n, k, d, l, b), config)
    target = out or file.with_name(file.name + ".regen")
    stripes = -(-file.stat().st_size // params.secure_symbols) if file.is_file() else None
    with ui.progress("encoding stripes", total=stripes) as advance:
        paths = files.encode_file(file, target, params, force=force, progress=advance)
    ui.note(f"{file} -> {target}: {len(paths)} node files, alpha={params.alpha} each")


@app.command()
def repair(
    folder: Path = typer.Argument(..., help="Folder holding the node files."),
    node: int = typer.Option(0, help="Index of the node to regenerate."),
    helpers: str = typer.Option("", help="Comma-separated helper order (default: all others)."),
    force: bool = typer.Option(False, "--force", help="Regenerate a node file that still exists."),
    json_out: bool = JSON,
) -> None:
    """Regenerate one node from d helpers (more only if some of them lie)."""
    from redundancy.regenerating import files

    path, report = files.repair_file(folder, node, _helpers(helpers), force=force)
    stripes = files.read_node(path)[1].shape[1]
    downloaded = len(report.contacted) * stripes
    if json_out:
        ui.print_json(
            {
                "repaired": str(path),
                "contacted": report.contacted,
                "rounds": report.rounds,
                "corrupt": report.corrupt,
                "bytes_downloaded": downloaded,
                "bytes_per_helper": stripes,
            }
        )
        return
    out = ui.out()
    out.print(_report_line(report, f"repaired {path.name}"))
    out.print(f"downloaded {downloaded} bytes ({stripes} per helper)")


@app.command()
def decode(
    folder: Path = typer.Argument(..., help="Folder holding the node files."),
    out: str = typer.Option(
        None, help="Output file, '-' for stdout (default: FOLDER without .regen)."
    ),
    force: bool = FORCE,
) -> None:
    """Rebuild the original file from any k nodes (more only if some of them lie)."""
    from redundancy.regenerating import files

    if out == ui.STDIO:
        data, report = files.decode_bytes(folder)
        ui.write_output(ui.STDIO, data, force=force)
        ui.note(_report_line(report, "decoded -> stdout"))
        return
    target = Path(out) if out else None
    if target is None:
        regen = folder.suffix == ".regen"
        target = folder.with_suffix("") if regen else folder.with_name(folder.name + ".out")
    report = files.decode_file(folder, target, force=force)
    ui.note(_report_line(report, f"decoded -> {target}"))


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
    json_out: bool = JSON,
) -> None:
    """Storage per node, repair bandwidth and secure capacity, next to RS(n, k)."""
    from redundancy.errors import check_range

    params = _params(kind, (n, k, d, l, b), config)
    check_range("size", size, 1)
    stripes = -(-size // params.secure_symbols)
    rs_shard = -(-size // params.k)
    p = params
    rows = [
        ("stored per node", p.alpha * stripes, rs_shard),
        ("repair download", p.d * stripes, p.k * rs_shard),
    ]
    if p.l:
        rows.append((f"file bytes hidden from any {p.l} nodes", p.secure_symbols * stripes, 0))
    if json_out:
        ui.print_json(
            {
                "params": p.to_dict(),
                "per_stripe": p.summary(),
                "bytes": {
                    "file_size": size,
                    **{name: {"regenerating": ours, "rs": rs} for name, ours, rs in rows},
                },
            }
        )
        return
    title = f"{p.kind.upper()} (n={p.n}, k={p.k}, d={p.d}, l={p.l}, b={p.b})"
    summary = [(name, ui.format_number(value)) for name, value in p.summary().items()]
    ui.print_table(("per stripe", "value"), summary, title=title)
    ui.print_table(("bytes", "regenerating", f"RS({p.n},{p.k})"), rows, title=f"{size}-byte file")
