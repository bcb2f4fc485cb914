"""What every command shares at the terminal: output streams, tables, JSON, progress, ``-``.

Conventions (see ``redundancy --help`` and the README):

- data (results, tables of results, JSON) goes to stdout; progress, logs and notes to stderr;
- ``--json`` prints exactly one JSON document on stdout and nothing else there;
- tables are rich tables on a terminal and full-width plain text when piped, so
  ``redundancy ... | cat`` never wraps or truncates a cell;
- ``-`` names stdin where a file is read and stdout where a file is written;
- an existing output file is never replaced without ``--force``.

Only rich is imported here (it is what the CLI itself uses), so importing this module is cheap.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redundancy.errors import ParameterError

STDIO = "-"


def _console(stderr: bool) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    # Piped: no colour, no wrapping at 80 columns, no cropping.
    return Console(
        file=stream, stderr=stderr, width=10_000, no_color=True, highlight=False, soft_wrap=True
    )


def out() -> Any:
    """A rich console on stdout (data), plain and unwrapped when stdout is not a terminal."""
    return _console(stderr=False)


def err() -> Any:
    """A rich console on stderr (progress, logs, notes)."""
    return _console(stderr=True)


def note(message: str) -> None:
    """Print a one-line note on stderr (never on stdout, which carries data)."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def format_number(value: Any, digits: int = 3) -> str:
    """A number for a table cell: no ``nan``/``inf`` leaks (shown as ``n/a`` / ``inf``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return (
            f"{value:.{digits}g}"
            if abs(value) >= 1e6 or 0 < abs(value) < 1e-3
            else (f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0")
        )
    return str(value)


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as aligned plain text, every cell in full (what ``print_table`` prints when piped)."""
    cells = [[str(c) for c in columns]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    stderr: bool = False,
) -> None:
    """Print a table: rich on a terminal, full-width plain text when the stream is piped."""
    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty():
        if title:
            stream.write(title + "\n")
        stream.write(plain_table(columns, rows))
        stream.flush()
        return
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(str(column), overflow="fold")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    _console(stderr).print(table)


def print_json(document: Any) -> None:
    """Print one JSON document on stdout (the whole of stdout for a ``--json`` run)."""
    sys.stdout.write(json.dumps(document, indent=2, default=_json_default, allow_nan=False) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


PIPED_FIRST_NOTE_S = 2.0
PIPED_EVERY_S = 10.0


@contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Any]:
    """Progress on stderr for work that may take a while; yields ``advance(n)``.

    On a terminal: a rich progress bar. When stderr is piped (a log, CI): plain lines, and only
    for work that lasts: ``DESCRIPTION ...`` after 2 s, a line every 10 s (percent done when
    ``total`` is known), and ``DESCRIPTION: done in S s`` at the end. Short commands stay silent.
    """
    if not sys.stderr.isatty():
        with _piped_progress(description, total) as advance:
            yield advance
        return
    from rich.progress import Progress

    with Progress(console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


@contextmanager
def _piped_progress(description: str, total: float | None) -> Iterator[Any]:
    import threading
    import time

    done = [0.0]
    spoke = threading.Event()
    finished = threading.Event()
    start = time.monotonic()

    def status() -> str:
        if total:
            return f"{description}: {min(100.0, 100.0 * done[0] / total):.0f}%"
        return f"{description}: {time.monotonic() - start:.0f} s"

    def report() -> None:
        if finished.wait(PIPED_FIRST_NOTE_S):
            return
        spoke.set()
        note(f"{description} ...")
        while not finished.wait(PIPED_EVERY_S):
            note(status())

    def advance(n: float = 1) -> None:
        done[0] += n

    reporter = threading.Thread(target=report, name="redundancy-progress", daemon=True)
    reporter.start()
    try:
        yield advance
    finally:
        finished.set()
        reporter.join()
    if spoke.is_set():
        note(f"{description}: done in {time.monotonic() - start:.1f} s")


def read_input(path: str | Path) -> bytes:
    """Bytes of ``path``, or of stdin when ``path`` is ``-``; missing/folder paths are bad input."""
    if str(path) == STDIO:
        return sys.stdin.buffer.read()
    source = Path(path)
    if source.is_dir():
        raise ParameterError(f"{source} is a folder; expected a file")
    try:
        return source.read_bytes()
    except FileNotFoundError:
        raise ParameterError(f"{source}: no such file") from None
    except PermissionError:
        raise ParameterError(f"{source}: permission denied") from None


def check_output(path: str | Path, *, force: bool) -> None:
    """Refuse to replace an existing file unless ``force`` (``-`` is stdout and always allowed)."""
    if str(path) == STDIO:
        return
    target = Path(path)
    if target.is_dir():
        raise ParameterError(f"{target} is a folder; expected a file name")
    if (target.exists() or target.is_symlink()) and not force:  # a dangling link counts too
        raise ParameterError(f"{target} exists; pass --force to replace it")


def write_output(path: str | Path, data: bytes, *, force: bool) -> None:
    """Write ``data`` to ``path`` atomically (or to stdout for ``-``), refusing to overwrite."""
    if str(path) == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    check_output(path, force=force)
    from redundancy.storage_io import atomic_write_bytes

    atomic_write_bytes(Path(path), data)
