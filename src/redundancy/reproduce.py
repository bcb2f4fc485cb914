"""Framework for ``redundancy reproduce``: run each system's headline experiment, collect rows.

A system takes part by having ``redundancy/<system>/reproduce.py`` with
``run(quick: bool, out_dir: Path) -> list[Row]``; it may save PNG plots under ``out_dir``.
The framework writes ``table.md``, ``rows.json`` and a summary plot to the report folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from redundancy.errors import ParameterError


@dataclass(frozen=True)
class Row:
    """One reproduced figure: what the paper (or anchor) says next to what we measured."""

    system: str
    metric: str
    paper: str
    ours: str
    note: str = ""


def available_systems() -> list[str]:
    """Systems that ship a ``reproduce.py``."""
    from redundancy.cli import system_names

    return [s for s in system_names() if importlib.util.find_spec(f"redundancy.{s}.reproduce")]


def run(systems: list[str] | None, *, quick: bool, out_dir: Path) -> list[Row]:
    """Run the named systems' experiments (all by default); write the report; return the rows."""
    known = available_systems()
    chosen = systems or known
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise ParameterError(f"unknown system(s) {unknown}; choose from {known}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    from rich.console import Console

    console = Console(stderr=True)
    for system in chosen:
        module = importlib.import_module(f"redundancy.{system}.reproduce")
        system_dir = out_dir / system
        system_dir.mkdir(exist_ok=True)
        start = time.perf_counter()
        with console.status(f"reproducing {system}{' (quick)' if quick else ''} ..."):
            rows.extend(module.run(quick=quick, out_dir=system_dir))
        timings[system] = time.perf_counter() - start
        console.print(f"{system}: done in {timings[system]:.1f} s")
    write_report(rows, timings, out_dir)
    return rows


def markdown_table(rows: list[Row]) -> str:
    """Rows as a Markdown table a person can paste (pipes inside cells escaped)."""
    lines = ["| system | metric | paper | ours | note |", "|---|---|---|---|---|"]
    for r in rows:
        cells = (str(c).replace("|", "\\|") for c in (r.system, r.metric, r.paper, r.ours, r.note))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(rows: list[Row], timings: dict[str, float], out_dir: Path) -> None:
    """Write table.md, rows.json and timings.png into ``out_dir`` (atomically, file by file)."""
    from redundancy.storage_io import atomic_write_bytes

    atomic_write_bytes(out_dir / "table.md", markdown_table(rows).encode())
    payload = {"rows": [asdict(r) for r in rows], "seconds": timings}
    atomic_write_bytes(out_dir / "rows.json", json.dumps(payload, indent=2).encode())
    if timings:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 0.4 * len(timings) + 1.2))
        ax.barh(list(timings), list(timings.values()))
        ax.set_xlabel("seconds")
        ax.set_title("reproduce: time per system")
        fig.tight_layout()
        fig.savefig(out_dir / "timings.png", dpi=100)
        plt.close(fig)


def print_table(rows: list[Row]) -> None:
    """Print the rows as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="redundancy reproduce")
    for column in ("system", "metric", "paper", "ours", "note"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r.system, r.metric, r.paper, r.ours, r.note)
    Console().print(table)
