"""``redundancy convert``: conversion costs, convertible stores, and converting them cheaply."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from redundancy.convertible import (
    bounds,
    general,
    general_store,
    layered,
    lrc,
    merge_store,
    piggyback,
    spec,
    split_store,
    stores,
)
from redundancy.errors import ParameterError

NAME = "convert"
app = typer.Typer(
    help="Convertible codes: change stored data's redundancy reading only what the bound allows."
)
console = Console()


@app.command()
def cost(
    code: str = typer.Option("rs:10,4", help="Initial code rs:K_I,R_I."),
    to: str = typer.Option("rs:20,4", help="Final code rs:K_F,R_F."),
    config: Path = typer.Option(None, help="YAML/JSON with code and to (overrides)."),
) -> None:
    """Lower bounds (read/write access, bandwidth) next to read-all-and-re-encode."""
    cfg = spec.ConversionConfig.load(config) if config else spec.ConversionConfig(code=code, to=to)
    conv = cfg.conversion()
    c = bounds.costs(conv)
    table = Table(title=f"{conv.describe()} ({conv.regime})")
    for column in ("cost (shards)", "lower bound", "re-encode"):
        table.add_column(column)
    table.add_row("read access", str(c.read_access), str(c.reencode_read))
    table.add_row("write access", str(c.write_access), str(c.reencode_write))
    table.add_row("access (read + write)", str(c.access), str(c.reencode_access))
    band = "-" if c.bandwidth is None else bounds.format_units(c.bandwidth)
    table.add_row("read bandwidth (merge)", band, str(c.reencode_read))
    console.print(table)
    if conv.regime == "general" and conv.lcm <= general.MEASURE_MAX_LCM:
        try:
            run = general.measure(conv)
        except ParameterError as exc:  # no verified family in GF(2^8)
            console.print(f"general-regime construction: not built ({exc})")
            return
        console.print(
            f"general-regime construction (measured): read {run.shards_read} shards "
            f"(bound {c.read_access}, re-encode {c.reencode_read}); final parities equal "
            f"direct encoding: {run.correct}; final code MDS: {run.final_mds}"
        )


@app.command("lrc-cost")
def lrc_cost(
    initial: str = typer.Option("6,1,3,1", help="Initial LRC k,g,r,l."),
    to: str = typer.Option("12,2,3,1", help="Final LRC k,g,r,l (same r and l)."),
    shard_bytes: int = typer.Option(3072, help="Bytes per shard in the measured run."),
) -> None:
    """LRC global merge: bound, our construction's measured reads, MDS-only, re-encoding."""
    m = spec.parse_lrc_merge(initial, to)
    measured = lrc.measure(m, shard_bytes) if 1 <= m.g_i < m.g_f <= m.r else None
    table = Table(title=f"LRC ({initial}) x{m.lam} -> ({to}), shard units read")
    for column in ("LRC bound", "construction (measured)", "MDS-only", "re-encode"):
        table.add_column(column)
    ours = "-"
    if measured is not None:
        ours = (
            f"{bounds.format_units(measured.units)} ({measured.bytes_read} B, "
            f"alpha={measured.alpha}, correct={measured.correct})"
        )
    table.add_row(
        bounds.format_units(bounds.lrc_bandwidth_bound(m)),
        ours,
        bounds.format_units(bounds.lrc_mds_only_bandwidth(m)),
        bounds.format_units(bounds.lrc_reencode_bandwidth(m)),
    )
    console.print(table)


@app.command()
def bandwidth(
    code: str = typer.Option("rs:6,1", help="Initial code rs:K_I,R_I (R_I < R_F <= K_I)."),
    to: str = typer.Option("rs:12,2", help="Final code rs:K_F,R_F."),
    shard_bytes: int = typer.Option(4096, help="Bytes per shard in the demonstration."),
) -> None:
    """Run the piggybacked bandwidth-optimal merge on random data and measure bytes read."""
    conv = spec.ConversionConfig(code=code, to=to).conversion()
    measured = piggyback.measure(conv, shard_bytes)
    bound = bounds.format_units(bounds.bandwidth_bound(conv))
    console.print(
        f"{conv.describe()}: alpha={measured.alpha}, read {measured.bytes_read} bytes = "
        f"{bounds.format_units(measured.units)} shards (bound {bound}, re-encode "
        f"{conv.lambda_i * conv.k_i}); final parities equal direct encoding: {measured.correct}"
    )


@app.command()
def encode(
    file: Path = typer.Argument(..., help="File to encode."),
    code: str = typer.Option("rs:10,4", help="Initial code rs:K_I,R_I or LRC lrc:k,g,r,l."),
    to: str = typer.Option("rs:20,4", help="Final code rs:K_F,R_F or lrc:K_F,G_F,r,l."),
    out: Path = typer.Option(None, help="Store folder (default: FILE.cvt)."),
    stripe_size: int = typer.Option(
        None, help="Bytes per shard per stripe (default 1 MiB, rounded to alpha for vector codes)."
    ),
    piggyback: bool = typer.Option(
        False, help="rs codes with r_I < r_F <= k_I: piggybacked vector code (bandwidth-optimal)."
    ),
) -> None:
    """Encode FILE into a store with a convertible code (RS: ec format; LRC/piggyback: layered)."""
    target = out or file.with_name(file.name + ".cvt")
    if spec.is_lrc(code) or spec.is_lrc(to) or piggyback:
        family = layered.piggyback_spec(code, to) if piggyback else spec.lrc_family_spec(code, to)
        vector = layered.encode_layered_store(file, target, family, stripe_size or 0)
        console.print(f"{file} -> {target}: {family}, {vector.stripes} stripes")
        return
    manifest = stores.encode_store(file, target, spec.family_spec(code, to), stripe_size or 1 << 20)
    console.print(f"{file} -> {target}: {manifest.code}, {manifest.stripes} stripes")


@app.command()
def run(
    store_dirs: list[Path] = typer.Argument(
        ..., help="Initial stores, in codeword order (one store for a split)."
    ),
    to: str = typer.Option(
        None, help="Final code rs:K_F,R_F or lrc:K_F,G_F,r,l (checked against the stores)."
    ),
    out: Path = typer.Option(None, help="Merged store folder (default: FIRST.merged)."),
    method: str = typer.Option("optimal", help="optimal | reencode (the anchor)."),
    allow_degraded: bool = typer.Option(False, help="Rebuild missing shards instead of refusing."),
    retire: bool = typer.Option(False, help="Remove the initial stores after the commit."),
) -> None:
    """Merge lambda stores into one (or split one), reading only what the bound needs."""
    target = out or store_dirs[0].with_name(store_dirs[0].name + ".merged")
    r = merge_store.convert_stores(store_dirs, target, to, method, allow_degraded, retire)
    if r.resumed:
        console.print(f"{target}: already converted ({r.conversion})")
        return
    console.print(
        f"{r.conversion} -> {target} ({r.method}): read {r.shards_read} shards "
        f"({r.bytes_read} bytes), wrote {r.shards_written} ({r.bytes_written} bytes)",
        soft_wrap=True,
    )
    for line in r.degraded:
        console.print(f"degraded: rebuilt {line}")


@app.command()
def decode(
    store: Path = typer.Argument(..., help="Initial or merged store."),
    output: Path = typer.Argument(..., help="Output file (initial) or folder (merged)."),
) -> None:
    """Recover the original file(s), checked by SHA-256."""
    decode_fn = stores.decode_any
    if layered.is_layered_store(store):
        decode_fn = layered.decode_layered
    elif split_store.is_split_store(store):
        decode_fn = split_store.decode_split
    elif general_store.is_general_store(store):
        decode_fn = general_store.decode_general
    for path in decode_fn(store, output):
        console.print(f"wrote {path}")
