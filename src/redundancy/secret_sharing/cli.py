"""``redundancy shamir split|combine`` and ``redundancy sneak check|run``: a thin CLI layer."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from redundancy.errors import ParameterError

shamir_app = typer.Typer(
    help="Shamir threshold secret sharing over GF(2^8) or a prime field.", no_args_is_help=True
)
sneak_app = typer.Typer(
    help="SNEAK: disseminate Shamir shares across a network (check a graph, run the protocol).",
    no_args_is_help=True,
)
COMMANDS = {"shamir": shamir_app, "sneak": sneak_app}
_out = Console()
DEFAULT_SECRET = "correct horse battery staple"
DEFAULT_GRAPH = "rgg:200:20"
DEFAULT_TCP_GRAPH = "rgg:16:12"


@shamir_app.command()
def split(
    secret: str = typer.Argument(DEFAULT_SECRET, help="Secret text (ignored with --file)."),
    n: int = typer.Option(5, "-n", help="Number of shares (k..255)."),
    k: int = typer.Option(3, "-k", help="Threshold (2..n)."),
    field: str = typer.Option("gf256", "--field", help="gf256, p127, p25519, p521 or p0x<hex>."),
    file: Path | None = typer.Option(None, "--file", help="Read the secret bytes from a file."),
    out: Path | None = typer.Option(None, "--out", help="Write the share lines to a file."),
) -> None:
    """Split a secret into n self-describing share lines, any k of which recover it."""
    from redundancy.secret_sharing.shamir import split as do_split
    from redundancy.storage_io import atomic_write_bytes

    if file is not None and not file.is_file():
        raise ParameterError(f"--file {file} does not exist")
    data = file.read_bytes() if file is not None else secret.encode()
    lines = "".join(s.to_text() + "\n" for s in do_split(data, n, k, field=field))
    if out is None:
        sys.stdout.write(lines)
    else:
        atomic_write_bytes(out, lines.encode())
        _out.print(f"{n} shares (any {k} recover the secret) written to {out}")


@shamir_app.command()
def combine(
    shares: Path = typer.Argument(..., help="File of share lines ('-' for stdin)."),
    out: Path | None = typer.Option(None, "--out", help="Write the secret bytes to a file."),
) -> None:
    """Recover the secret from k or more share lines; refuses wrong sets with a clear error."""
    from redundancy.secret_sharing.shamir import combine as do_combine
    from redundancy.storage_io import atomic_write_bytes

    if str(shares) != "-" and not shares.is_file():
        raise ParameterError(f"share file {shares} does not exist")
    text = sys.stdin.read() if str(shares) == "-" else shares.read_text(errors="replace")
    secret = do_combine(line for line in text.splitlines() if line.strip())
    if out is None:
        sys.stdout.buffer.write(secret + b"\n")
    else:
        atomic_write_bytes(out, secret)
        _out.print(f"{len(secret)} secret bytes written to {out}")


def _network(graph: str, dealer: str, seed: int):
    from redundancy.secret_sharing.network import load

    return load(graph, dealer=dealer, seed=seed)


@sneak_app.command()
def check(
    graph: str = typer.Argument(DEFAULT_GRAPH, help="Edge list, GraphML, or kind:n[:deg[:ddeg]]."),
    k: int = typer.Option(3, "-k", help="Threshold."),
    dealer: str = typer.Option("D", "--dealer", help="The dealer's node label."),
    seed: int = typer.Option(0, "--seed", help="Seed of a generated graph."),
) -> None:
    """Is the dealer k-propagating (SNEAK) and k-connected to everyone (SMT)?"""
    from redundancy.secret_sharing.network import k_propagation
    from redundancy.secret_sharing.smt import smt_cost

    net = _network(graph, dealer, seed)
    prop = k_propagation(net, k)
    _out.print(
        f"{net.n} participants, {net.graph.number_of_edges()} edges, "
        f"dealer degree {net.graph.degree(net.dealer)}"
    )
    if prop.ok:
        _out.print(
            f"k-propagating: yes ({1 + max(prop.rounds.values())} rounds); order starts "
            f"{prop.order[:8]}"
        )
    else:
        _out.print(
            f"k-propagating: no; node {prop.stuck!r} is stuck with "
            f"{prop.stuck_informed} of k={k} informed neighbours"
        )
    if net.n <= 2000:
        smt = smt_cost(net, k)
        verdict = "yes" if smt.short is None else f"no; node {smt.short!r} has < {k} paths"
        _out.print(f"k node-disjoint paths to every non-neighbour (SMT): {verdict}")


@sneak_app.command()
def run(
    graph: str = typer.Argument(
        None, help=f"Graph (default {DEFAULT_GRAPH}; tcp: {DEFAULT_TCP_GRAPH})."
    ),
    k: int = typer.Option(3, "-k", help="Threshold."),
    runtime: str = typer.Option("sim", "--runtime", help="sim (event simulator) or tcp."),
    dealer: str = typer.Option("D", "--dealer", help="The dealer's node label."),
    seed: int = typer.Option(0, "--seed", help="Seed of a generated graph and of delays."),
    secret: int | None = typer.Option(None, "--secret", help="Field element (default random)."),
    prune: bool = typer.Option(False, "--prune", help="Keep only reachable participants."),
) -> None:
    """Disseminate shares with SNEAK; print symbols, randomness, rounds, the share check and the
    SMT baseline's costs on the same graph."""
    from redundancy.secret_sharing.network import propagating_part
    from redundancy.secret_sharing.smt import smt_cost

    if runtime not in ("sim", "tcp"):
        raise ParameterError(f"--runtime {runtime!r} is unknown (allowed: sim, tcp)")
    net = _network(
        graph or (DEFAULT_GRAPH if runtime == "sim" else DEFAULT_TCP_GRAPH), dealer, seed
    )
    if prune:
        net = propagating_part(net, k)
    if runtime == "sim":
        from redundancy.secret_sharing.sim import simulate

        result = simulate(net, k, secret, seed=seed)
    else:
        from redundancy.secret_sharing.tcp import run_tcp

        result = run_tcp(net, k, secret)
    table = Table(title=f"SNEAK ({result.runtime}) on {net.n} participants, k={k}")
    for col in ("metric", "SNEAK", "SMT baseline"):
        table.add_column(col)
    smt = smt_cost(net, k) if net.n <= 2000 else None
    table.add_row("symbols sent", str(result.symbols), str(smt.communication) if smt else "-")
    table.add_row("random symbols", str(result.randomness), str(smt.randomness) if smt else "-")
    table.add_row("control messages", str(result.control), "0")
    table.add_row("rounds", str(result.rounds), "-")
    _out.print(table)
    _out.print(f"share check: {result.check}")
