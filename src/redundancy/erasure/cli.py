"""``redundancy ec``: erasure-code files into shard folders; decode, verify and repair them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TransferSpeedColumn
from rich.table import Table

from redundancy.erasure import codes, store

NAME = "ec"
app = typer.Typer(help="Erasure-coded file storage (Reed-Solomon, LRC) with per-shard checksums.")
console = Console()


def _progress(total: int, label: str) -> Progress:
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TransferSpeedColumn(),
        console=console,
    )
    bar.add_task(label, total=total)
    return bar


def _indices(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"--only takes comma-separated shard indices, got {text!r}"
        ) from None


@app.command()
def encode(
    file: Path = typer.Argument(..., help="File to encode."),
    code: str = typer.Option("rs:10,4", help="rs:K,M | rs-vand:K,M | lrc:K,L,G"),
    out: str = typer.Option(None, help="Store folder or fsspec URL (default: FILE.ec)."),
    stripe_size: int = typer.Option(store.DEFAULT_STRIPE_SIZE, help="Bytes per shard per stripe."),
    overwrite: bool = typer.Option(False, help="Replace an existing store."),
) -> None:
    """Encode FILE into n shard files (one folder per node) plus a manifest."""
    target = out or str(file.with_name(file.name + ".ec"))
    size = file.stat().st_size if file.is_file() else 0
    with _progress(size, "encode") as bar:
        manifest = store.encode_file(
            file, target, code, stripe_size, overwrite, lambda n: bar.advance(0, n)
        )
    console.print(f"{file} -> {target}: {len(manifest.shards)} shards, {manifest.stripes} stripes")


@app.command()
def decode(
    store_dir: str = typer.Argument(..., help="Store folder or fsspec URL."),
    out: Path = typer.Option(
        None, help="Output file (default: the original name beside the store)."
    ),
) -> None:
    """Recover the original file, rebuilding missing or corrupt shards on the fly.

    The output goes beside a local store, or into the current folder for a URL store.
    """
    manifest = store.load_manifest(store_dir)
    beside = Path(store_dir).parent if "://" not in store_dir else Path()
    target = out or beside / manifest.file_name
    with _progress(manifest.file_size, "decode") as bar:
        store.decode_store(store_dir, target, lambda n: bar.advance(0, n))
    console.print(f"{store_dir} -> {target}: {manifest.file_size} bytes, SHA-256 verified")


@app.command()
def verify(store_dir: str = typer.Argument(..., help="Store folder or fsspec URL.")) -> None:
    """Check every chunk; name damaged shards. Exit 0 healthy, 1 damaged but recoverable."""
    report = store.verify_store(store_dir)
    table = Table("shard", "path", "state", "corrupt stripes")
    for s in report.shards:
        style = "green" if s.state == "ok" else "red"
        table.add_row(str(s.index), s.path, f"[{style}]{s.state}", str(s.corrupt_stripes or ""))
    console.print(table)
    if report.healthy:
        console.print("all shards intact")
        return
    if not report.recoverable:
        raise store.DecodeError(f"{store_dir} is NOT recoverable: {report.problem}")
    console.print(f"damaged shards {report.damaged}; recoverable: run `redundancy ec repair`")
    raise typer.Exit(1)


@app.command()
def repair(
    store_dir: str = typer.Argument(..., help="Store folder or fsspec URL."),
    only: str = typer.Option(None, help="Rebuild only these shard indices, e.g. 3,5."),
) -> None:
    """Rebuild exactly the lost or corrupt shards in place."""
    report = store.repair_store(store_dir, _indices(only))
    if not report.rebuilt:
        console.print("nothing to repair")
        return
    console.print(
        f"rebuilt shards {report.rebuilt}: read {report.bytes_read} bytes, "
        f"wrote {report.bytes_written} bytes"
    )


@app.command()
def info(code: str = typer.Option("rs:10,4", help="rs:K,M | rs-vand:K,M | lrc:K,L,G")) -> None:
    """Show a code's shape, overhead, fault tolerance and repair reads."""
    linear = codes.parse_code(code)
    table = Table("property", "value")
    table.add_row("data shards k", str(linear.k))
    table.add_row("total shards n", str(linear.n))
    table.add_row("storage overhead", f"{linear.n / linear.k:.3f}x")
    single = [linear.repair_plan([i]).read_count for i in range(linear.n)]
    table.add_row("reads to repair one data shard", f"{max(single[: linear.k])}")
    table.add_row("reads to repair one parity shard", f"{max(single[linear.k :], default=0)}")
    console.print(table)
