"""``redundancy ec``: erasure-code files into shard folders; decode, verify and repair them.

Exit codes: 0 success (``verify``: store intact); 1 ``verify`` found damage that ``repair`` can
fix, or files the manifest does not name; 2 bad input (missing store, invalid manifest, bad
option); 3 data not recoverable (too few good shards).

The library (numpy, the GF kernels) is imported inside each command, so building the CLI stays
cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from redundancy import ui
from redundancy.errors import DecodeError, ParameterError

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "ec": "Erasure-coded file storage (Reed-Solomon, LRC) with per-shard checksums.",
}
NAME = "ec"
app = typer.Typer(
    help="Erasure-coded file storage (Reed-Solomon, LRC) with per-shard checksums.\n\n"
    "Exit codes: 0 ok; 1 verify found damage (repairable) or stray files; 2 bad input; "
    "3 data not recoverable."
)
CODE_HELP = "rs:K,M | rs-vand:K,M | lrc:K,L,G"
DEFAULT_STRIPE_SIZE = 1 << 20  # store.DEFAULT_STRIPE_SIZE, repeated so --help imports no numpy


def _indices(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ParameterError(
            f"--only takes comma-separated shard indices (e.g. 3,5), got {text!r}"
        ) from None


@app.command()
def encode(
    file: Path = typer.Argument(..., help="File to encode, or - to read standard input."),
    code: str = typer.Option("rs:10,4", "--code", help=CODE_HELP),
    out: str = typer.Option(
        None, "--out", help="Store folder or fsspec URL (default: FILE.ec; required with -)."
    ),
    name: str = typer.Option(
        None,
        "--name",
        help="File name to record for decode (default: FILE's name; with -, the --out folder's "
        "name without .ec).",
    ),
    stripe_size: int = typer.Option(
        DEFAULT_STRIPE_SIZE, "--stripe-size", help="Bytes per shard per stripe (1..2**30)."
    ),
    force: bool = typer.Option(False, "--force", "--overwrite", help="Replace an existing store."),
    nodes: str = typer.Option(
        None,
        "--nodes",
        help="Comma-separated node roots (folders on other disks, file:// or memory:// or s3:// "
        "URLs): shard i goes under root i mod R; every root also gets a manifest copy.",
    ),
    nodes_file: Path = typer.Option(
        None, "--nodes-file", help="Placement file: one node root per line ('#' comments)."
    ),
) -> None:
    """Encode FILE into n shard files (one folder per node) plus a manifest.

    With --nodes (or --nodes-file) the shards are spread over those roots and the manifest is
    written to --out and into every root, so the store opens from any of them. Temporaries a
    killed earlier run left in the store are removed first. With FILE -, standard input is
    encoded until it ends (e.g. ``tar c photos | redundancy ec encode - --out photos.ec``).
    """
    import sys

    from redundancy.erasure import store

    roots = _node_list(nodes, nodes_file)
    if str(file) == "-":
        if not out:
            raise ParameterError("encoding standard input (-) needs --out STORE")
        target, label = out, name or _stream_name(out)
        with ui.progress("encode", total=None) as advance:
            manifest = store.encode_stream(
                sys.stdin.buffer, label, target, code, stripe_size, force, advance, roots
            )
    else:
        target, label = out or f"{file}.ec", str(file)
        total = file.stat().st_size if file.is_file() else None
        with ui.progress("encode", total=total) as advance:
            manifest = store.encode_file(
                file, target, code, stripe_size, force, advance, roots, name=name
            )
    where = f" over {len(roots)} roots" if roots else ""
    shards, stripes = len(manifest.shards), manifest.stripes
    ui.note(f"{label} -> {target}: {shards} shards{where}, {stripes} stripes")
    if roots and len(roots) < len(manifest.shards):
        per_root = -(-len(manifest.shards) // len(roots))
        ui.note(f"note: up to {per_root} shards share a root; losing one root loses them all")


def _stream_name(out: str) -> str:
    """The name recorded for standard input: the store folder's name without ``.ec``."""
    base = out.rstrip("/").rsplit("/", 1)[-1]
    stem = base[:-3] if base.endswith(".ec") and len(base) > 3 else base
    ui.note(f"recording the input as {stem!r} (choose with --name)")
    return stem


def _node_list(nodes: str | None, nodes_file: Path | None) -> list[str] | None:
    """Roots from --nodes and --nodes-file (not both)."""
    if nodes and nodes_file:
        raise ParameterError("give the node roots with --nodes or --nodes-file, not both")
    if nodes_file is not None:
        try:
            lines = nodes_file.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ParameterError(f"--nodes-file {nodes_file}: cannot read ({exc})") from None
        roots = [line.split("#", 1)[0].strip() for line in lines]
        roots = [root for root in roots if root]
    elif nodes:
        roots = [part.strip() for part in nodes.split(",")]
    else:
        return None
    if not roots or any(not root for root in roots):
        raise ParameterError(f"node roots must be non-empty, got {roots!r}")
    return roots


def _replacements(items: list[str] | None) -> dict[int, str] | None:
    """--replace N=ROOT options as {node: root}."""
    if not items:
        return None
    found: dict[int, str] = {}
    for item in items:
        number, sep, root = item.partition("=")
        if not sep or not root or not number.strip().isdigit():
            raise ParameterError(f"--replace takes NODE=ROOT (e.g. 3=/mnt/disk9/st), got {item!r}")
        if int(number) in found:
            raise ParameterError(f"--replace names node {int(number)} twice")
        found[int(number)] = root
    return found


@app.command()
def decode(
    store_dir: str = typer.Argument(..., help="Store folder or fsspec URL."),
    out: str = typer.Option(
        None,
        "--out",
        help="Output file, or folder to write the original name in, or - for stdout "
        "(default: the original name beside the store).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    member: str = typer.Option(
        None,
        "--member",
        help="Store of several files (a merged convertible store): decode only this one.",
    ),
) -> None:
    """Recover the original file, rebuilding missing or corrupt shards on the fly.

    The output appears only once its SHA-256 matches the manifest (with ``--out -`` the bytes
    reach stdout only then). It gets the original file's permissions if the store recorded
    them (under the umask), else a new file's normal mode. A store of several files decodes
    every one into the folder --out (default: beside the store), or one with --member. Exit 3
    if too few shards are good.
    """
    import sys

    from redundancy.erasure import store

    manifest = store.load_manifest(store_dir)
    for node, root in store.missing_roots(store_dir, manifest):
        ui.note(f"node {node} root {root} is missing; decoding from the other roots")
    destination: Any = sys.stdout.buffer if out == ui.STDIO else out
    with ui.progress("decode", total=manifest.file_size) as advance:
        store.decode_store(store_dir, destination, advance, force=force, member=member)
    if manifest.members is not None and member is None:
        where = out or "the store's folder"
        count = len(manifest.members)
        ui.note(
            f"{store_dir} -> {where}: {count} files, {manifest.file_size} bytes, SHA-256 verified"
        )
        return
    name = member or manifest.file_name
    where = "stdout" if out == ui.STDIO else store.decode_target(store_dir, manifest, out, name)
    size = next((m.file_size for m in manifest.members or [] if m.file_name == name), None)
    total = manifest.file_size if size is None else size
    ui.note(f"{store_dir} -> {where}: {total} bytes, SHA-256 verified")


@app.command()
def verify(
    store_dir: str = typer.Argument(..., help="Store folder or fsspec URL."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (below)."),
) -> None:
    """Check every chunk; name damaged shards and files the manifest does not name.

    Exit 0 intact; 1 damaged but recoverable (run ``repair``) or unexpected files (e.g. the
    temporaries of a killed run; the next encode or repair removes those); 2 bad input (no
    store, invalid manifest); 3 data not recoverable.

    JSON schema (``--json``): {"store": str, "status": "intact" | "damaged" | "unrecoverable",
    "exit_code": int, "recoverable": bool, "problem": str | null, "damaged": [int],
    "shards": [{"index": int, "path": str, "state": "ok" | "missing" | "wrong-size" |
    "corrupt", "corrupt_stripes": [int], "node": int | null}], "unexpected_files": [str],
    "roots": [str] (node roots, empty for a single-root store), "missing_roots": [int]}.
    """
    from redundancy.erasure import store

    manifest = store.load_manifest(store_dir)
    with ui.progress("verify", total=manifest.file_size) as advance:
        report = store.verify_store(store_dir, advance)
    if report.healthy:
        status, exit_code = "intact", 0
    elif report.recoverable:
        status, exit_code = "damaged", 1
    else:
        status, exit_code = "unrecoverable", 3
    if json_output:
        ui.print_json(
            {
                "store": store_dir,
                "status": status,
                "exit_code": exit_code,
                "recoverable": report.recoverable,
                "problem": report.problem or None,
                "damaged": report.damaged,
                "shards": [
                    {
                        "index": s.index,
                        "path": s.path,
                        "state": s.state,
                        "corrupt_stripes": s.corrupt_stripes,
                        "node": s.node,
                    }
                    for s in report.shards
                ],
                "unexpected_files": report.unexpected_files,
                "roots": report.roots,
                "missing_roots": report.missing_roots,
            }
        )
    else:
        rows = [
            [s.index, s.path, s.state, ",".join(map(str, s.corrupt_stripes))] for s in report.shards
        ]
        columns = ["shard", "path", "state", "corrupt stripes"]
        if report.roots:
            columns.append("root")
            rows = [
                [*row, report.roots[s.node]] for row, s in zip(rows, report.shards, strict=True)
            ]
        ui.print_table(columns, rows, title=store_dir)
        for node in report.missing_roots:
            lost = [s.index for s in report.shards if s.node == node]
            ui.note(f"node {node} root {report.roots[node]} is missing: shards {lost} lost")
        if report.unexpected_files:
            ui.print_table(
                ["file the manifest does not name"],
                [[path] for path in report.unexpected_files],
            )
    if exit_code == 3:
        raise DecodeError(f"{store_dir} is NOT recoverable: {report.problem}")
    if not json_output:
        print(_verify_summary(report))
    if exit_code:
        raise typer.Exit(exit_code)


def _verify_summary(report: Any) -> str:
    if report.healthy:
        return "all shards intact"
    parts = []
    if report.damaged:
        parts.append(f"damaged shards {report.damaged}; recoverable: run `redundancy ec repair`")
    if report.unexpected_files:
        parts.append(
            f"{len(report.unexpected_files)} file(s) the manifest does not name "
            "(temporaries of a killed run are removed by the next encode or repair)"
        )
    return "; ".join(parts)


@app.command()
def repair(
    store_dir: str = typer.Argument(..., help="Store folder or fsspec URL."),
    only: str = typer.Option(None, "--only", help="Rebuild only these shard indices, e.g. 3,5."),
    replace: list[str] = typer.Option(
        None,
        "--replace",
        help="NODE=ROOT: rebuild every shard of that node under a new root and record it in "
        "the manifests (repeatable).",
    ),
) -> None:
    """Rebuild exactly the lost or corrupt shards in place (exit 3 if too few are good).

    Temporaries a killed earlier run left in the store are removed first. A store spread over
    roots is repaired only into roots inside the manifest's folder, roots holding a manifest of
    this store, or roots named with --replace (a manifest never directs writes elsewhere).
    """
    from redundancy.erasure import store

    manifest = store.load_manifest(store_dir)
    replacements = _replacements(replace)
    with ui.progress("repair", total=manifest.file_size) as advance:
        report = store.repair_store(store_dir, _indices(only), advance, replace=replacements)
    if report.removed_temporaries:
        ui.note(f"removed {len(report.removed_temporaries)} temporary file(s) of a killed run")
    for path in report.manifests_written:
        ui.note(f"manifest updated: {path}")
    if not report.rebuilt:
        print("nothing to repair")
        return
    print(
        f"rebuilt shards {report.rebuilt}: read {report.bytes_read} bytes, "
        f"wrote {report.bytes_written} bytes"
    )


@app.command()
def info(
    code: str = typer.Option("rs:10,4", "--code", help=CODE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (below)."),
) -> None:
    """Show a code's shape, overhead, fault tolerance, repair reads and recoverable patterns.

    For each number s of lost shards: how many of the C(n, s) sets decode, and the most any code
    of the same shape can decode (an MDS code: all of them up to m; an LRC: those in which every
    surviving local parity's group lost a data shard). A maximally recoverable code reaches it.

    JSON schema (``--json``): {"code": str, "code_version": int, "k": int, "n": int,
    "storage_overhead": float, "tolerates_any_lost": int, "local_groups": [[int]],
    "repair_reads": [int] (shards read to rebuild shard i alone), "max_repair_reads_data": int,
    "max_repair_reads_parity": int, "recovered_patterns": [{"lost": int, "recovered": int,
    "maximum": int, "total": int}] | null (null when too many patterns to enumerate),
    "maximally_recoverable": bool | null}.
    """
    from math import comb

    from redundancy.erasure import codes, recoverability

    linear = codes.parse_code(code)
    single = [linear.repair_plan([i]).read_count for i in range(linear.n)]
    tolerance = linear.g + 1 if isinstance(linear, codes.LRC) else linear.m
    try:
        recovered = linear.recovered_by_size()
        if isinstance(linear, codes.LRC):
            maximum = recoverability.lrc_maximum_by_size(linear.k, linear.l, linear.g)
        else:
            maximum = [comb(linear.n, s) for s in range(linear.m + 1)]
    except ParameterError:
        recovered = maximum = None
    patterns = (
        None
        if recovered is None
        else [
            {"lost": s, "recovered": got, "maximum": most, "total": comb(linear.n, s)}
            for s, (got, most) in enumerate(zip(recovered, maximum, strict=True))
            if s
        ]
    )
    document = {
        "code": code,
        "code_version": getattr(linear, "version", codes.LATEST_CODE_VERSION),
        "k": linear.k,
        "n": linear.n,
        "storage_overhead": round(linear.n / linear.k, 6),
        "tolerates_any_lost": tolerance,
        "local_groups": [list(group) for group in linear.local_groups],
        "repair_reads": single,
        "max_repair_reads_data": max(single[: linear.k]),
        "max_repair_reads_parity": max(single[linear.k :], default=0),
        "recovered_patterns": patterns,
        "maximally_recoverable": None if recovered is None else recovered == maximum,
    }
    if json_output:
        ui.print_json(document)
        return
    rows = [
        ["data shards k", linear.k],
        ["total shards n", linear.n],
        ["storage overhead (x)", ui.format_number(linear.n / linear.k)],
        ["any lost shards tolerated", tolerance],
        ["reads to repair one data shard (max)", document["max_repair_reads_data"]],
        ["reads to repair one parity shard (max)", document["max_repair_reads_parity"]],
    ]
    ui.print_table(["property", "value"], rows, title=code)
    if patterns is None:
        ui.note("too many erasure patterns to enumerate; recoverable counts not shown")
        return
    ui.print_table(
        ["lost shards", "sets recovered", "most possible", "all sets"],
        [[p["lost"], p["recovered"], p["maximum"], p["total"]] for p in patterns],
        title="erasure patterns that still decode",
    )
    verdict = "yes" if document["maximally_recoverable"] else "NO"
    print(f"maximally recoverable: {verdict}")
