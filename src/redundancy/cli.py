"""The ``redundancy`` command.

Each system ``redundancy.<system>`` that has a ``cli.py`` with ``NAME`` (the sub-command) and
``app`` (a Typer app), or ``COMMANDS`` (several sub-commands: name -> Typer app), is mounted
automatically, so adding a system touches no shared file.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

import typer
from rich.console import Console

import redundancy
from redundancy.errors import RedundancyError

app = typer.Typer(
    help="Coding-theoretic redundancy, spent wisely: nine research systems in one toolkit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_err = Console(stderr=True)


def system_names() -> list[str]:
    """Subpackages of ``redundancy`` (the systems), in alphabetical order."""
    return sorted(m.name for m in pkgutil.iter_modules(redundancy.__path__) if m.ispkg)


def _mount_systems() -> None:
    for system in system_names():
        if importlib.util.find_spec(f"redundancy.{system}.cli") is None:
            continue
        module = importlib.import_module(f"redundancy.{system}.cli")
        commands = getattr(module, "COMMANDS", None) or {module.NAME: module.app}
        for name, sub_app in commands.items():
            app.add_typer(sub_app, name=name, help=sub_app.info.help)


@app.command()
def reproduce(
    systems: list[str] = typer.Argument(None, help="Systems to run (default: all that have one)."),
    quick: bool = typer.Option(False, "--quick", help="Small scale, seconds per system."),
    out: Path = typer.Option(Path("reports"), "--out", help="Report folder (table + plots)."),
) -> None:
    """Run each system's headline experiment and print (system, metric, paper, ours)."""
    from redundancy import reproduce as framework

    rows = framework.run(systems or None, quick=quick, out_dir=out)
    framework.print_table(rows)
    _err.print(f"report written to {out}/")


def main() -> None:
    """Entry point: run the app, turning bad input into one line on stderr and exit code 2."""
    _mount_systems()
    try:
        app()
    except RedundancyError as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
