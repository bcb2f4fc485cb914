"""``redundancy convert``: conversion costs, convertible stores, and converting them cheaply.

Codes are named with the toolkit's one grammar (as in ``redundancy ec``): ``rs:K,M`` and
``lrc:K,L,G`` (K data shards in L local groups, G global parities). Library modules are imported
inside the commands, so building the command line stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from redundancy import ui
from redundancy.errors import ParameterError

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "convert": "Convertible codes: change stored data's redundancy reading only what bounds allow.",
}
NAME = "convert"
app = typer.Typer(
    help=(
        "Convertible codes: change stored data's redundancy reading only what bounds allow. "
        "Codes: rs:K,M or lrc:K,L,G (K data shards in L local groups, G global parities)."
    )
)

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout instead of tables.")
TO_DEFAULT = "merge two codewords: rs:K,M -> rs:2K,M, lrc:K,L,G -> lrc:2K,2L,G+1"


def _units(value: Any) -> str:
    from redundancy.convertible.algebra.bounds import format_units

    return "-" if value is None else format_units(value)


@app.command()
def cost(
    code: str = typer.Option("rs:10,4", help="Initial code rs:K_I,R_I."),
    to: str = typer.Option("rs:20,4", help="Final code rs:K_F,R_F."),
    config: Path = typer.Option(None, help="YAML/JSON with code and to (overrides)."),
    json_out: bool = JSON,
) -> None:
    """Lower bounds (read/write access, bandwidth) next to read-all-and-re-encode."""
    from redundancy.convertible import spec
    from redundancy.convertible.algebra import bounds, general

    cfg = spec.ConversionConfig.load(config) if config else spec.ConversionConfig(code=code, to=to)
    conv = cfg.conversion()
    c = bounds.costs(conv)
    rows = [
        ("read access", c.read_access, c.reencode_read),
        ("write access", c.write_access, c.reencode_write),
        ("access (read + write)", c.access, c.reencode_access),
        ("read bandwidth (merge)", _units(c.bandwidth), c.reencode_read),
    ]
    measured: dict[str, Any] | None = None
    if conv.regime == "general" and conv.lcm <= general.MEASURE_MAX_LCM:
        try:
            run = general.measure(conv)
            measured = {
                "shards_read": run.shards_read,
                "correct": run.correct,
                "final_mds": run.final_mds,
            }
        except ParameterError as exc:  # no verified family in GF(2^8)
            measured = {"not_built": str(exc)}
    if json_out:
        ui.print_json(
            {
                "conversion": conv.describe(),
                "regime": conv.regime,
                "costs_in_shards": {
                    name: {"lower_bound": bound, "reencode": reencode}
                    for name, bound, reencode in rows
                },
                "general_construction": measured,
            }
        )
        return
    columns = ("cost (shards)", "lower bound", "re-encode")
    ui.print_table(columns, rows, title=f"{conv.describe()} ({conv.regime})")
    if measured and "not_built" in measured:
        ui.note(f"general-regime construction: not built ({measured['not_built']})")
    elif measured:
        ui.out().print(
            f"general-regime construction (measured): read {measured['shards_read']} shards "
            f"(bound {c.read_access}, re-encode {c.reencode_read}); final parities equal "
            f"direct encoding: {measured['correct']}; final code MDS: {measured['final_mds']}"
        )


@app.command("lrc-cost")
def lrc_cost(
    code: str = typer.Option("lrc:6,2,1", help="Initial LRC lrc:K,L,G."),
    to: str = typer.Option("lrc:12,4,2", help="Final LRC lrc:K_F,L_F,G_F (same group size K/L)."),
    shard_bytes: int = typer.Option(3072, help="Bytes per shard in the measured run."),
    json_out: bool = JSON,
) -> None:
    """LRC global merge: bound, our construction's measured reads, MDS-only, re-encoding."""
    from redundancy.convertible import spec
    from redundancy.convertible.algebra import bounds, lrc

    m = spec.lrc_merge(code, to)
    measured = lrc.measure(m, shard_bytes) if 1 <= m.g_i < m.g_f <= m.r else None
    figures = {
        "lrc_bound": bounds.lrc_bandwidth_bound(m),
        "construction_measured": None if measured is None else measured.units,
        "mds_only": bounds.lrc_mds_only_bandwidth(m),
        "reencode": bounds.lrc_reencode_bandwidth(m),
    }
    if json_out:
        document: dict[str, Any] = {"code": code, "to": to, "lambda": m.lam}
        document["shard_units_read"] = {k: _units(v) for k, v in figures.items()}
        if measured is not None:
            document["measured"] = {
                "bytes_read": measured.bytes_read,
                "alpha": measured.alpha,
                "correct": measured.correct,
            }
        ui.print_json(document)
        return
    ours = "-"
    if measured is not None:
        ours = (
            f"{_units(measured.units)} ({measured.bytes_read} B, "
            f"alpha={measured.alpha}, correct={measured.correct})"
        )
    row = (_units(figures["lrc_bound"]), ours, _units(figures["mds_only"]))
    ui.print_table(
        ("LRC bound", "construction (measured)", "MDS-only", "re-encode"),
        [(*row, _units(figures["reencode"]))],
        title=f"LRC {code} x{m.lam} -> {to}, shard units read",
    )


@app.command()
def bandwidth(
    code: str = typer.Option("rs:6,1", help="Initial code rs:K_I,R_I (R_I < R_F <= K_I)."),
    to: str = typer.Option("rs:12,2", help="Final code rs:K_F,R_F."),
    shard_bytes: int = typer.Option(4096, help="Bytes per shard in the demonstration."),
    json_out: bool = JSON,
) -> None:
    """Run the piggybacked bandwidth-optimal merge on random data and measure bytes read."""
    from redundancy.convertible import spec
    from redundancy.convertible.algebra import bounds, piggyback

    conv = spec.ConversionConfig(code=code, to=to).conversion()
    measured = piggyback.measure(conv, shard_bytes)
    rows = [
        ("alpha (layers per shard)", measured.alpha),
        ("bytes read", measured.bytes_read),
        ("shard units read", _units(measured.units)),
        ("bandwidth bound (shard units)", _units(bounds.bandwidth_bound(conv))),
        ("re-encode (shard units)", conv.lambda_i * conv.k_i),
        ("parities equal direct encoding", measured.correct),
    ]
    if json_out:
        ui.print_json({"conversion": conv.describe(), **{name: v for name, v in rows}})
        return
    ui.print_table(("piggybacked merge", "value"), rows, title=conv.describe())


@app.command()
def encode(
    file: Path = typer.Argument(..., help="File to encode."),
    code: str = typer.Option("rs:10,4", help="Initial code rs:K,M or lrc:K,L,G."),
    to: str = typer.Option(None, help=f"Final code rs:K,M or lrc:K,L,G (default: {TO_DEFAULT})."),
    out: Path = typer.Option(None, help="Store folder (default: FILE.cvt)."),
    stripe_size: int = typer.Option(
        None, help="Bytes per shard per stripe (default 1 MiB, rounded to alpha for vector codes)."
    ),
    piggyback: bool = typer.Option(
        False, help="rs codes with r_I < r_F <= k_I: piggybacked vector code (bandwidth-optimal)."
    ),
) -> None:
    """Encode FILE into a store with a convertible code (RS: ec format; LRC/piggyback: layered)."""
    from redundancy.convertible import spec
    from redundancy.convertible.stores import layered, scalar

    if not file.is_file():
        raise ParameterError(f"{file}: no such file")
    to = to or spec.default_target(code)
    target = out or file.with_name(file.name + ".cvt")
    with ui.progress("encoding", total=file.stat().st_size) as advance:
        if spec.is_lrc(code) or spec.is_lrc(to) or piggyback:
            family = (
                layered.piggyback_spec(code, to) if piggyback else spec.lrc_family_spec(code, to)
            )
            vector = layered.encode_layered_store(file, target, family, stripe_size or 0, advance)
            ui.note(f"{file} -> {target}: {family}, {vector.stripes} stripes")
            return
        family = spec.family_spec(code, to)
        manifest = scalar.encode_store(file, target, family, stripe_size or 1 << 20, advance)
    ui.note(f"{file} -> {target}: {manifest.code}, {manifest.stripes} stripes")


@app.command()
def run(
    store_dirs: list[Path] = typer.Argument(
        ..., help="Initial stores, in codeword order (one store for a split)."
    ),
    to: str = typer.Option(
        None,
        help="Final code rs:K,M, chosen now (default: the one named at encode; a merged store, "
        "converted again, needs it); lrc:K,L,G and piggyback stores keep theirs.",
    ),
    out: Path = typer.Option(None, help="Result store folder (default: FIRST.merged)."),
    method: str = typer.Option("optimal", help="optimal | reencode (the anchor)."),
    allow_degraded: bool = typer.Option(False, help="Rebuild missing shards instead of refusing."),
    retire: bool = typer.Option(False, help="Remove the initial stores after the commit."),
    json_out: bool = JSON,
) -> None:
    """Merge lambda stores into one (or split one), reading only what the bound needs.

    Stores may be results of an earlier merge (chained conversions: rs:6,3 x2 -> rs:12,3, then
    two of those -> rs:24,3 with --to rs:24,3).
    """
    from redundancy.convertible.stores import merge

    target = out or store_dirs[0].with_name(store_dirs[0].name + ".merged")
    with ui.progress("converting stripes") as advance:
        r = merge.convert_stores(
            store_dirs, target, to, method, allow_degraded, retire, lambda _stripe: advance()
        )
    document = {
        "conversion": r.conversion,
        "target": str(target),
        "method": r.method,
        "resumed": r.resumed,
        "shards_read": str(r.shards_read),
        "bytes_read": r.bytes_read,
        "shards_written": r.shards_written,
        "bytes_written": r.bytes_written,
        "degraded": r.degraded,
        "notes": r.notes,
    }
    if json_out:
        ui.print_json(document)
        return
    if r.resumed:
        ui.out().print(f"{target}: already converted ({r.conversion})")
        return
    rows = [(name, value) for name, value in document.items() if name not in ("degraded", "notes")]
    ui.print_table(("conversion", "value"), rows)
    for line in r.notes:
        ui.note(line)
    for line in r.degraded:
        ui.note(f"degraded: rebuilt {line}")


@app.command()
def decode(
    store: Path = typer.Argument(..., help="Initial store or the result of `convert run`."),
    output: str = typer.Argument(
        ..., help="Output file (one-file store; '-' for stdout) or folder (several files)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing output files."),
) -> None:
    """Recover the original file(s), checked by SHA-256 (nothing is written if a check fails)."""
    from redundancy.convertible.stores import decode as decoding

    with ui.progress("decoding") as advance:
        if output == ui.STDIO:
            decoding.decode_to_stream(store, progress=advance)
            return
        paths = decoding.decode(store, Path(output), force=force, progress=advance)
    for path in paths:
        ui.note(f"wrote {path}")
