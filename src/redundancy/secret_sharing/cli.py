"""``redundancy shamir split|combine`` and ``redundancy sneak check|run``: a thin CLI layer.

Secrets never come from the command line (shell history keeps it): they are read from a file,
stdin (``-``), or a no-echo prompt. Share files are written with mode 0600 and never replace an
existing file without ``--force``. Data goes to stdout, notes to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from redundancy import ui
from redundancy.errors import ParameterError

if TYPE_CHECKING:
    from redundancy.secret_sharing.network import Network

# Read without importing this module (`redundancy --help` stays instant): command -> help.
MOUNT = {
    "shamir": "Shamir threshold secret sharing over GF(2^8) or a prime field.",
    "sneak": "SNEAK: disseminate Shamir shares across a network (check a graph, run the protocol).",
}
shamir_app = typer.Typer(
    help="Shamir threshold secret sharing over GF(2^8) or a prime field.", no_args_is_help=True
)
sneak_app = typer.Typer(
    help="SNEAK: disseminate Shamir shares across a network (check a graph, run the protocol).",
    no_args_is_help=True,
)
COMMANDS = {"shamir": shamir_app, "sneak": sneak_app}
DEMO_SECRET = b"correct horse battery staple"
DEFAULT_GRAPH = "rgg:200:20"
DEFAULT_TCP_GRAPH = "rgg:16:12"
SECRET_MODE = 0o600  # shares and recovered secrets: readable by their owner only
NOT_ON_COMMAND_LINE = (
    "the secret is read from a file, '-' (stdin) or a no-echo prompt, never from the command "
    "line, which shell history keeps"
)


def _stdin_is_terminal() -> bool:
    import sys

    return sys.stdin.isatty()


def _read_secret_file(source: str) -> bytes:
    if source != ui.STDIO and not Path(source).exists():
        raise ParameterError(f"secret file {source!r} does not exist ({NOT_ON_COMMAND_LINE})")
    return ui.read_input(source)


def _prompt_secret() -> bytes:
    import getpass

    first = getpass.getpass("Secret (not echoed): ")
    if first != getpass.getpass("Repeat the secret: "):
        raise ParameterError("the two secrets typed differ; nothing was shared")
    return first.encode()


def _secret(source: str | None, file: str | None, demo: bool) -> bytes:
    """The secret to split: the input given, the demo phrase with --demo, else stdin or prompt."""
    given = [s for s in (source, file) if s is not None]
    if len(given) > 1:
        raise ParameterError("give the secret once: SOURCE or --file, not both")
    if given and demo:
        raise ParameterError("--demo shares a built-in phrase; it cannot be used with an input")
    if demo:
        return DEMO_SECRET
    if given:
        data = _read_secret_file(given[0])
    elif _stdin_is_terminal():
        data = _prompt_secret()
    else:
        data = ui.read_input(ui.STDIO)
    if not data:
        raise ParameterError(
            f"no secret given: the input is empty ({NOT_ON_COMMAND_LINE}; --demo shares a "
            "built-in phrase)"
        )
    return data


def _write_secret_file(path: Path, data: bytes, *, force: bool) -> None:
    from redundancy.storage_io import atomic_write_bytes

    ui.check_output(path, force=force)
    try:
        atomic_write_bytes(path, data, mode=SECRET_MODE)
    except OSError as exc:
        raise ParameterError(f"cannot write {path}: {exc.strerror}") from None


@shamir_app.command()
def split(
    source: str | None = typer.Argument(
        None, help="File holding the secret ('-' for stdin). Default: stdin, or a prompt."
    ),
    n: int = typer.Option(5, "-n", "--n", help="Number of shares (k..255)."),
    k: int = typer.Option(3, "-k", "--k", help="Threshold (2..n)."),
    field: str = typer.Option("gf256", "--field", help="gf256, p127, p25519, p521 or p0x<hex>."),
    file: str | None = typer.Option(None, "--file", help="Same as SOURCE."),
    demo: bool = typer.Option(False, "--demo", help="Share a built-in demo phrase instead."),
    out: str = typer.Option("-", "--out", help="File for the share lines ('-': stdout)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
) -> None:
    """Split a secret into n self-describing share lines, any k of which recover it.

    The secret is SOURCE (a file, '-' for stdin), else whatever is piped in, else a no-echo
    prompt on a terminal. Share files get mode 0600.
    """
    from redundancy.secret_sharing.shamir import split as do_split

    if out != ui.STDIO:
        ui.check_output(out, force=force)
    data = _secret(source, file, demo)
    lines = "".join(s.to_text() + "\n" for s in do_split(data, n, k, field=field)).encode()
    if out == ui.STDIO:
        ui.write_output(ui.STDIO, lines, force=force)
        return
    _write_secret_file(Path(out), lines, force=force)
    ui.note(f"{n} shares (any {k} recover the secret) written to {out}")


@shamir_app.command()
def combine(
    shares: list[str] = typer.Argument(..., help="Files of share lines ('-' for stdin)."),
    out: str = typer.Option("-", "--out", help="File for the secret bytes ('-': stdout)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
    tolerate_bad: bool = typer.Option(
        False,
        "--tolerate-bad",
        help="Recover from k shares that pass the secret's tag; name the bad ones on stderr.",
    ),
) -> None:
    """Recover the secret, byte-exact, from k or more share lines.

    Exit 2 for malformed share files or (without --tolerate-bad) a share that does not fit;
    exit 3 when too few good shares remain.
    """
    from redundancy.secret_sharing.shamir import recover
    from redundancy.secret_sharing.shares import read_shares

    if out != ui.STDIO:
        ui.check_output(out, force=force)
    parsed = []
    for source in shares:
        name = "stdin" if source == ui.STDIO else source
        parsed.extend(read_shares(ui.read_input(source), source=name))
    found = recover(parsed, tolerate_bad=tolerate_bad)
    for index, reason in found.bad:
        ui.note(f"warning: share i={index} ignored: {reason}")
    if out == ui.STDIO:
        ui.write_output(ui.STDIO, found.secret, force=force)
        return
    _write_secret_file(Path(out), found.secret, force=force)
    ui.note(f"{len(found.secret)} secret bytes written to {out}")


def _network(graph: str, dealer: str, seed: int) -> Network:
    from redundancy.secret_sharing.network import load

    return load(graph, dealer=dealer, seed=seed)


@sneak_app.command()
def check(
    graph: str = typer.Argument(DEFAULT_GRAPH, help="Edge list, GraphML, or kind:n[:deg[:ddeg]]."),
    k: int = typer.Option(3, "-k", "--k", help="Threshold (2..participants)."),
    dealer: str = typer.Option("D", "--dealer", help="The dealer's node label."),
    seed: int = typer.Option(0, "--seed", help="Seed of a generated graph."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Is the dealer k-propagating (SNEAK) and k-connected to everyone (SMT)?

    Exit 1 when it is not k-propagating (SNEAK cannot reach every participant).
    """
    from redundancy.secret_sharing.network import k_propagation
    from redundancy.secret_sharing.smt import smt_cost
    from redundancy.secret_sharing.sneak import check_threshold

    net = _network(graph, dealer, seed)
    check_threshold(k, net.n)
    prop = k_propagation(net, k)
    smt = smt_cost(net, k) if net.n <= 2000 else None
    report = {
        "participants": net.n,
        "edges": net.graph.number_of_edges(),
        "dealer_degree": net.graph.degree(net.dealer),
        "k": k,
        "k_propagating": prop.ok,
        "rounds": 1 + max(prop.rounds.values()) if prop.ok else None,
        "order_starts": prop.order[:8],
        "stuck": None if prop.ok else {"node": prop.stuck, "informed": prop.stuck_informed},
        "smt_k_paths_to_all": None if smt is None else smt.short is None,
        "smt_short_node": None if smt is None else smt.short,
    }
    if json_output:
        ui.print_json(report)
    else:
        propagating = (
            f"yes ({report['rounds']} rounds; order starts {prop.order[:8]})"
            if prop.ok
            else f"no: node {prop.stuck!r} has {prop.stuck_informed} of k={k} informed neighbours"
        )
        smt_verdict = (
            "not checked (over 2000 participants)"
            if smt is None
            else "yes"
            if smt.short is None
            else f"no: node {smt.short!r} has fewer than {k} paths"
        )
        ui.print_table(
            ["property", "value"],
            [
                ["participants", net.n],
                ["edges", report["edges"]],
                ["dealer degree", report["dealer_degree"]],
                ["k-propagating (SNEAK)", propagating],
                ["k node-disjoint paths to every non-neighbour (SMT)", smt_verdict],
            ],
            title=f"SNEAK check, k={k}",
        )
    if not prop.ok:
        raise typer.Exit(1)


def _write_share_dir(out: Path, shares: dict, *, force: bool) -> list[Path]:
    """One file per participant in ``out``, named from its index and a sanitised node name."""
    import re

    from redundancy.storage_io import atomic_write_bytes

    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out} is a file; expected a folder for the share files")
    root = out.resolve()
    targets = {}
    for name, share in shares.items():
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(name))[:40]
        path = root / f"share-{share.index:05d}-{safe}.txt"
        if path.parent != root:  # cannot happen with the names above; the promise is checked
            raise ParameterError(f"participant name {name!r} would leave {out}")
        targets[path] = share
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ParameterError(f"{existing[0]} exists; pass --force to replace it")
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"cannot create {out}: {exc.strerror}") from None
    written: list[Path] = []
    try:
        for path, share in targets.items():
            atomic_write_bytes(path, (share.to_text() + "\n").encode(), mode=SECRET_MODE)
            written.append(path)
    except OSError as exc:
        for path in written:  # all or nothing: no partial set of share files
            path.unlink(missing_ok=True)
        raise ParameterError(f"cannot write share files to {out}: {exc.strerror}") from None
    return written


@sneak_app.command()
def run(
    graph: str = typer.Argument(
        None, help=f"Graph (default {DEFAULT_GRAPH}; tcp: {DEFAULT_TCP_GRAPH})."
    ),
    k: int = typer.Option(3, "-k", "--k", help="Threshold (2..participants)."),
    runtime: str = typer.Option("sim", "--runtime", help="sim (event simulator) or tcp."),
    dealer: str = typer.Option("D", "--dealer", help="The dealer's node label."),
    seed: int = typer.Option(0, "--seed", help="Seed of a generated graph and of delays."),
    file: str | None = typer.Option(
        None, "--file", help="File holding the secret ('-': stdin). Default: a fresh 32-byte key."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for each participant's share file (Shamir format, 0600)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing share files in --out."),
    prune: bool = typer.Option(False, "--prune", help="Keep only reachable participants."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON summary document."),
) -> None:
    """Disseminate a secret with SNEAK; report symbols, randomness, rounds, the share check and the
    SMT baseline's costs on the same graph. Exit 1 if a participant ends without a share."""
    import sys

    from redundancy.secret_sharing.network import propagating_part
    from redundancy.secret_sharing.shamir import max_shares
    from redundancy.secret_sharing.smt import smt_cost
    from redundancy.secret_sharing.sneak import SNEAK_FIELD, check_threshold

    if runtime not in ("sim", "tcp"):
        raise ParameterError(f"--runtime {runtime!r} is unknown (allowed: sim, tcp)")
    if out is not None and str(out) == ui.STDIO:
        raise ParameterError("--out names a folder for the share files; '-' is not one")
    secret = _read_secret_file(file) if file is not None else None
    if secret is not None and not secret:
        raise ParameterError(f"--file {file}: the secret is empty")
    net = _network(
        graph or (DEFAULT_GRAPH if runtime == "sim" else DEFAULT_TCP_GRAPH), dealer, seed
    )
    if prune:
        net = propagating_part(net, k)
    check_threshold(k, net.n)
    if out is not None and net.n > max_shares(SNEAK_FIELD):
        raise ParameterError(
            f"--out: {net.n} participants exceed the share format's {max_shares(SNEAK_FIELD)}"
        )
    if runtime == "sim":
        from redundancy.secret_sharing.sim import simulate

        result = simulate(net, k, secret, seed=seed)
    else:
        from redundancy.secret_sharing.tcp import run_tcp

        result = run_tcp(net, k, secret)
    written = _write_share_dir(out, result.shamir_shares(), force=force) if out is not None else []
    smt = smt_cost(net, k) if net.n <= 2000 else None
    summary = {
        "runtime": result.runtime,
        "participants": net.n,
        "k": k,
        "secret_bytes": result.length,
        "symbols_per_value": result.chunks,
        "sneak": {
            "symbols_sent": result.symbols,
            "random_symbols": result.randomness,
            "control_messages": result.control,
            "rounds": result.rounds,
        },
        "smt_baseline": None
        if smt is None
        else {
            "symbols_sent": smt.communication * result.chunks,
            "random_symbols": smt.randomness * result.chunks,
        },
        "missing": result.missing,
        "share_check": result.check,
        "share_files": len(written),
        "out": None if out is None else str(out),
    }
    if json_output:
        ui.print_json(summary)
    else:
        base = summary["smt_baseline"]
        ui.print_table(
            ["metric", "SNEAK", "SMT baseline"],
            [
                ["symbols sent", result.symbols, base["symbols_sent"] if base else "-"],
                ["random symbols", result.randomness, base["random_symbols"] if base else "-"],
                ["control messages", result.control, 0],
                ["rounds", result.rounds, "-"],
            ],
            title=(
                f"SNEAK ({result.runtime}) on {net.n} participants, k={k}, "
                f"{result.length}-byte secret in {result.chunks} symbols of GF(2^61-1)"
            ),
        )
        sys.stdout.write(f"share check: {result.check}\n")
    if written:
        ui.note(f"{len(written)} share files (any {k} recover the secret) written to {out}")
    elif file is None:
        ui.note("shared a fresh random 32-byte key; pass --out DIR to keep the shares")
    if result.missing:
        raise typer.Exit(1)
