"""Framework for ``redundancy reproduce``: run each system's headline experiment, collect rows.

A system takes part by having ``redundancy/<system>/reproduce.py`` with
``run(quick: bool, out_dir: Path) -> list[Row]``; it may save PNG plots under ``out_dir``.
The framework writes each system's ``table.md`` and ``rows.json`` into ``OUT/<system>/``, and
merges the latest rows of every system run so far into ``OUT/table.md`` and ``OUT/rows.json``
(running one system never drops another's rows), with a summary plot of the run times.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from redundancy.errors import ParameterError


@dataclass(frozen=True)
class Row:
    """One reproduced figure: what the paper says next to what we measured.

    Parameters
    ----------
    system : str
        The system's package name, e.g. ``"erasure"``.
    metric : str
        What was measured, with its unit.
    paper : str
        Only a figure or claim the paper itself reports (empty otherwise).
    ours : str
        What we measured.
    note : str, default ""
        When a quick row is below the paper only because of scale, says so and gives the
        full-scale figure from the docs.
    reference : str, default ""
        Any other comparison figure, named by its source (e.g.
        "XGBoost dart, this machine: 60.98").

    Examples
    --------
    >>> row = Row("erasure", "encode GB/s", paper="5.0", ours="6.1")
    >>> row.reference == "" and row.note == ""
    True
    """

    system: str
    metric: str
    paper: str
    ours: str
    note: str = ""
    reference: str = ""


COLUMNS = ("system", "metric", "paper", "reference", "ours", "note")


def available_systems() -> list[str]:
    """List the systems that ship a ``reproduce.py``.

    Returns
    -------
    list of str
        Package names, sorted.

    Examples
    --------
    >>> "erasure" in available_systems()
    True
    """
    package = Path(__file__).parent
    return sorted(p.parent.name for p in package.glob("*/reproduce.py"))


def run(
    systems: list[str] | None, *, quick: bool, out_dir: Path
) -> tuple[list[Row], dict[str, float]]:
    """Run the named systems' experiments (all by default); write the report.

    Parameters
    ----------
    systems : list of str or None
        Systems to run (``None``: every system with a ``reproduce.py``).
    quick : bool
        Small scale (seconds per system) instead of the full experiment.
    out_dir : Path
        Report folder; see the module docstring for what goes where.

    Returns
    -------
    rows : list of Row
        The rows of the systems run now, in the order run.
    seconds : dict
        Wall time per system.

    Raises
    ------
    ParameterError
        If a system is unknown (the message lists the known ones), or ``out_dir`` is a file.

    Examples
    --------
    >>> run(["nonesuch"], quick=True, out_dir=Path("reports"))
    Traceback (most recent call last):
    ...
    redundancy.errors.ParameterError: unknown system(s) nonesuch; choose from abft, ...
    """
    known = available_systems()
    chosen = list(dict.fromkeys(systems or known))
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise ParameterError(
            f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"--out {out_dir} is a file; expected a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    from redundancy import ui

    for system in chosen:
        module = importlib.import_module(f"redundancy.{system}.reproduce")
        system_dir = out_dir / system
        system_dir.mkdir(exist_ok=True)
        start = time.perf_counter()
        ui.note(f"reproducing {system}{' (quick)' if quick else ''} ...")
        system_rows = list(module.run(quick=quick, out_dir=system_dir))
        timings[system] = time.perf_counter() - start
        write_rows(system_rows, {system: timings[system]}, system_dir)
        rows.extend(system_rows)
        ui.note(f"{system}: done in {timings[system]:.1f} s")
    write_report(rows, timings, out_dir)
    return rows, timings


def markdown_table(rows: list[Row]) -> str:
    """Format rows as a Markdown table a person can paste (pipes inside cells escaped).

    Parameters
    ----------
    rows : list of Row
        The rows, in order.

    Returns
    -------
    str
        The table, one line per row after the header, ending with a newline.

    Examples
    --------
    >>> print(markdown_table([Row("erasure", "encode GB/s", "5.0", "6.1")]), end="")
    | system | metric | paper | reference | ours | note |
    |---|---|---|---|---|---|
    | erasure | encode GB/s | 5.0 |  | 6.1 |  |
    """
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = (str(getattr(r, c)).replace("|", "\\|") for c in COLUMNS)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rows_document(rows: list[Row], timings: dict[str, float]) -> dict:
    """Build the JSON document of a report: ``{"rows": [...], "seconds": {system: float}}``.

    Parameters
    ----------
    rows : list of Row
        The rows.
    timings : dict of str to float
        Wall time per system, in seconds.

    Returns
    -------
    dict
        The document, ready for ``json.dumps``.

    Examples
    --------
    >>> document = rows_document([Row("erasure", "encode GB/s", "5.0", "6.1")], {"erasure": 1.5})
    >>> document["rows"][0]["ours"], document["seconds"]
    ('6.1', {'erasure': 1.5})
    """
    return {"rows": [asdict(r) for r in rows], "seconds": timings}


def write_rows(rows: list[Row], timings: dict[str, float], folder: Path) -> None:
    """Write ``table.md`` and ``rows.json`` for ``rows`` into ``folder`` (atomically).

    Parameters
    ----------
    rows : list of Row
        The rows.
    timings : dict of str to float
        Wall time per system, in seconds.
    folder : Path
        Where the two files go (created if missing).

    Raises
    ------
    OSError
        If the folder cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_rows([Row("erasure", "encode GB/s", "5.0", "6.1")], {"erasure": 1.5}, folder)
    >>> sorted(path.name for path in folder.iterdir())
    ['rows.json', 'table.md']
    >>> json.loads((folder / "rows.json").read_text())["seconds"]
    {'erasure': 1.5}
    >>> import shutil; shutil.rmtree(folder)
    """
    from redundancy.storage_io import atomic_write_bytes

    atomic_write_bytes(folder / "table.md", markdown_table(rows).encode())
    payload = json.dumps(rows_document(rows, timings), indent=2).encode()
    atomic_write_bytes(folder / "rows.json", payload)


def _previous_rows(out_dir: Path) -> tuple[list[Row], dict[str, float]]:
    """Rows of earlier runs in ``out_dir`` (a damaged or foreign rows.json counts as none)."""
    try:
        document = json.loads((out_dir / "rows.json").read_text())
        fields = set(Row.__dataclass_fields__)
        rows = [Row(**{k: str(v) for k, v in r.items() if k in fields}) for r in document["rows"]]
        seconds = {str(k): float(v) for k, v in document.get("seconds", {}).items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return [], {}
    return rows, seconds


def write_report(rows: list[Row], timings: dict[str, float], out_dir: Path) -> None:
    """Merge ``rows`` into the report in ``out_dir``: table.md, rows.json and timings.png.

    Rows of systems not in ``timings`` (not run this time) are kept from the previous report;
    a damaged or foreign ``rows.json`` counts as no previous report.

    Parameters
    ----------
    rows : list of Row
        The rows of the systems run now.
    timings : dict of str to float
        Wall time of each system run now, in seconds.
    out_dir : Path
        The report folder.

    Raises
    ------
    OSError
        If the folder cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_report([Row("erasure", "encode GB/s", "5.0", "6.1")], {"erasure": 1.5}, folder)
    >>> write_report([Row("dart", "accuracy %", "60.1", "60.5")], {"dart": 2.0}, folder)
    >>> [row["system"] for row in json.loads((folder / "rows.json").read_text())["rows"]]
    ['erasure', 'dart']
    >>> sorted(path.name for path in folder.iterdir())
    ['rows.json', 'table.md', 'timings.png']
    >>> import shutil; shutil.rmtree(folder)
    """
    previous, previous_seconds = _previous_rows(out_dir)
    merged = [r for r in previous if r.system not in timings] + list(rows)
    seconds = {k: v for k, v in previous_seconds.items() if k not in timings} | timings
    write_rows(merged, seconds, out_dir)
    if seconds:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 0.4 * len(seconds) + 1.2))
        ax.barh(list(seconds), list(seconds.values()))
        ax.set_xlabel("seconds")
        ax.set_title("reproduce: time per system")
        fig.tight_layout()
        fig.savefig(out_dir / "timings.png", dpi=100)
        plt.close(fig)


def print_table(rows: list[Row]) -> None:
    """Print the rows on stdout (a rich table on a terminal, plain full-width text when piped).

    Parameters
    ----------
    rows : list of Row
        The rows, in order.

    Examples
    --------
    >>> print_table([Row("erasure", "encode GB/s", "5.0", "6.1")])
    reproduce
    system   metric       paper  reference  ours  note
    -------  -----------  -----  ---------  ----  ----
    erasure  encode GB/s  5.0               6.1
    """
    from redundancy import ui

    ui.print_table(COLUMNS, [[getattr(r, c) for c in COLUMNS] for r in rows], title="reproduce")
