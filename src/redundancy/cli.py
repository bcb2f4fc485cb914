"""The ``redundancy`` command.

Each system ``redundancy.<system>`` whose folder has a ``cli.py`` takes part: the module declares
``MOUNT`` (a literal dict: command name -> one-line help) and either ``NAME`` and ``app`` (one
Typer app) or ``COMMANDS`` (command name -> Typer app). ``MOUNT`` is read from the file's syntax
tree without importing it, so ``redundancy --help`` imports no system at all, and a command imports
only the system it runs. Adding a system touches no shared file.

Every error reaches the user as exactly one line on stderr, and the exit code says what happened
(``EXIT_CODES`` below, also in ``redundancy --help`` and the README).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import typer

import redundancy
from redundancy.errors import EXIT_BAD_INPUT, RedundancyError

EXIT_INTERNAL = 4
EXIT_CODES = (
    "Exit codes: 0 success; 1 a check found damage or a run missed its target; "
    "2 bad input; 3 data not recoverable (too few good shards or shares); 4 internal error."
)
PROG = "redundancy"
# Top-level module -> the install extra that provides it (pyproject.toml).
EXTRA_OF = {
    "torch": "ml", "sklearn": "dart", "mlxtend": "ml", "scipy": "coral", "ray": "serving",
    "fastapi": "serving", "uvicorn": "serving", "httpx": "serving",
}  # fmt: skip
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "terminal_width": 100}
_PACKAGE_DIR = Path(redundancy.__file__).parent


def system_names() -> list[str]:
    """Subpackages of ``redundancy`` (the systems), in alphabetical order."""
    return sorted(p.name for p in _PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file())


@cache
def mounted_commands() -> dict[str, tuple[str, str]]:
    """Every mounted command: name -> (system, one-line help), read without importing anything.

    Raises
    ------
    RuntimeError
        If a system's ``cli.py`` has no literal ``MOUNT`` dict (a bug in that system).
    """
    commands: dict[str, tuple[str, str]] = {}
    for system in system_names():
        source = _PACKAGE_DIR / system / "cli.py"
        if not source.is_file():
            continue
        mount = _literal_mount(source)
        for name, help_text in mount.items():
            commands[name] = (system, help_text)
    return commands


_MOUNT_BLOCK = re.compile(r"^MOUNT = (\{.*?^\})", re.M | re.S)


def _literal_mount(source: Path) -> dict[str, str]:
    # Only the literal block is evaluated (parsing the whole file costs ~4 ms per system).
    match = _MOUNT_BLOCK.search(source.read_text(encoding="utf-8"))
    if match is None:
        raise RuntimeError(f"{source} declares no literal MOUNT dict at the start of a line")
    mount = ast.literal_eval(match.group(1))
    if not isinstance(mount, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mount.items()
    ):
        raise RuntimeError(f"{source}: MOUNT must map command names to help strings")
    return mount


def _load_system_app(name: str) -> typer.Typer:
    system, _ = mounted_commands()[name]
    module = importlib.import_module(f"redundancy.{system}.cli")
    commands = getattr(module, "COMMANDS", None) or {module.NAME: module.app}
    return commands[name]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"{PROG} {redundancy.__version__}\n")
        raise typer.Exit(0)


def build_app(command: str | None) -> typer.Typer:
    """The CLI with the system behind ``command`` loaded; the others are help-only stubs.

    Parameters
    ----------
    command : str or None
        The sub-command about to run (the first argument), or None for top-level help.

    Returns
    -------
    typer.Typer
        An app whose sub-commands all appear in ``--help``; only ``command``'s is real.
    """
    app = typer.Typer(
        help="Coding-theoretic redundancy, spent wisely: nine research systems in one toolkit.\n\n"
        + EXIT_CODES,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings=CONTEXT,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        """Coding-theoretic redundancy, spent wisely: nine research systems in one toolkit."""

    app.command(name="reproduce")(_reproduce)
    for name, (_system, help_text) in mounted_commands().items():
        sub_app = _load_system_app(name) if name == command else typer.Typer(help=help_text)
        app.add_typer(sub_app, name=name, help=help_text)
    return app


def _reproduce(
    systems: list[str] = typer.Argument(None, help="Systems to run (default: all that have one)."),
    quick: bool = typer.Option(False, "--quick", help="Small scale, seconds per system."),
    out: Path = typer.Option(Path("reports"), "--out", help="Report folder (table + plots)."),
    json_output: bool = typer.Option(False, "--json", help="Print the rows as one JSON document."),
) -> None:
    """Run each system's headline experiment and print (system, metric, paper, ours).

    Each system's rows and plots go to OUT/SYSTEM/; OUT/table.md and OUT/rows.json hold the
    latest rows of every system run so far (running one system keeps the others' rows).
    JSON schema: {"rows": [{"system", "metric", "paper", "reference", "ours", "note"}],
    "seconds": {system: float}}.
    """
    from redundancy import reproduce as framework
    from redundancy import ui

    rows, timings = framework.run(systems or None, quick=quick, out_dir=out)
    if json_output:
        ui.print_json(framework.rows_document(rows, timings))
    else:
        framework.print_table(rows)
    ui.note(f"report written to {out}/")


def one_line(message: object) -> str:
    """``message`` flattened to one line (newlines become '; ', runs of spaces collapse)."""
    parts = [" ".join(line.split()) for line in str(message).splitlines()]
    return "; ".join(p for p in parts if p) or "unknown error"


def _fail(message: object, code: int) -> int:
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()
    return code


def _usage_message(exc: Any) -> str:
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{exc.format_message()}{where}"


def _validation_message(exc: Any) -> str:
    problems = []
    for item in exc.errors():
        field = ".".join(str(p) for p in item.get("loc", ())) or "input"
        text = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{field}: {text}")
    return "invalid input: " + "; ".join(problems)


def run(argv: list[str]) -> int:
    """Run the command line ``argv`` (without the program name); return the exit code.

    Parameters
    ----------
    argv : list of str
        Arguments, e.g. ``["ec", "info", "--code", "rs:10,4"]``.

    Returns
    -------
    int
        0 success, 1 damage found or target missed, 2 bad input, 3 data not recoverable,
        4 internal error.
    """
    from typer._click import exceptions as click_errors

    # Plain help text: rich's help renderer alone costs ~0.2 s of start-up (markdown-it, tables).
    typer.core.HAS_RICH = False
    command = argv[0] if argv and argv[0] in mounted_commands() else None
    try:
        app = build_app(command)
        group = typer.main.get_command(app)
        result = group.main(args=argv, prog_name=PROG, standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click_errors.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.ctx.get_help() + "\n")
        return 0
    except click_errors.UsageError as exc:
        return _fail(_usage_message(exc), EXIT_BAD_INPUT)
    except click_errors.ClickException as exc:
        return _fail(exc.format_message(), EXIT_BAD_INPUT)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted", 130)
    except RedundancyError as exc:
        return _fail(exc, exc.exit_code)
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except Exception as exc:
        if os.environ.get("REDUNDANCY_DEBUG"):
            raise
        return _fail_unexpected(exc)


def _fail_unexpected(exc: Exception) -> int:
    module = (getattr(exc, "name", None) or "").split(".")[0]
    if isinstance(exc, ModuleNotFoundError) and module in EXTRA_OF:
        return _fail(
            f"this command needs {module}, which is not installed: "
            f"pip install 'redundancy[{EXTRA_OF[module]}]' (or 'redundancy[all]')",
            EXIT_BAD_INPUT,
        )
    if type(exc).__name__ == "ValidationError" and hasattr(exc, "errors"):
        return _fail(_validation_message(exc), EXIT_BAD_INPUT)
    if isinstance(
        exc, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError
    ):
        target = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{target}{exc.strerror or exc}", EXIT_BAD_INPUT)
    if isinstance(exc, OSError):
        target = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{target}{exc.strerror or exc}", EXIT_BAD_INPUT)
    if isinstance(exc, MemoryError):
        return _fail("out of memory; try a smaller input or --quick", EXIT_BAD_INPUT)
    return _fail(
        f"internal error ({type(exc).__name__}: {exc}); "
        "rerun with REDUNDANCY_DEBUG=1 for the traceback and please report it",
        EXIT_INTERNAL,
    )


def _silence_stdout() -> None:
    # The reader went away (e.g. `| head`): stop writing, and let the interpreter's final flush
    # of stdout go to /dev/null instead of raising a second BrokenPipeError.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main() -> None:
    """Entry point of the ``redundancy`` command."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
