"""The ``qfl`` command: thin Typer commands over the layers; bad input gives one line and exit code 2.

Heavy packages (qiskit, qiskit-ibm-runtime, matplotlib) are imported inside the commands that need them, so
``qfl --help`` and input errors answer at once.
"""

from __future__ import annotations

import sys

import typer
from rich import box
from rich.console import Console
from rich.table import Table


app = typer.Typer(
    name="qfl",
    help="Quantum multimodal fusion on Qiskit: build QFL/MMA circuits, transpile for IBM devices, report costs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
)
circuit_app = typer.Typer(help="Build and export circuits from spec files.", no_args_is_help=True)
app.add_typer(circuit_app, name="circuit")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

#: Width of tables when stdout is not a terminal (piped or redirected) and COLUMNS is not set: wide enough that
#: no column is cut ("fake_boeblingen" once came out as "fake_boebling…" at Rich's default of 80).
PIPED_WIDTH = 200

JSON_OPTION_HELP = "Print the command's data as JSON on stdout (tables and progress go to stderr)."


def json_output(enabled: bool) -> None:
    """With ``--json``: send the human output (tables, progress, notes) to stderr, keeping stdout for the JSON
    that :func:`emit_json` prints at the end."""
    if enabled:
        console.file = sys.stderr


def emit_json(data: object) -> None:
    """Print ``data`` as JSON on stdout (NaN and infinity as null, like the records)."""
    from qfl_qiskit.atomic import json_text

    text = json_text(data)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _version(value: bool) -> None:
    if not value:
        return
    from qfl_qiskit import __version__
    from qfl_qiskit.results.records import package_versions

    versions = package_versions()
    print(f"qfl-qiskit {__version__}")
    for name, version in versions.items():
        if name != "qfl-qiskit":
            print(f"  {name} {version}")
    raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version of qfl-qiskit and of the packages it runs on, and exit."),
) -> None:
    """Quantum multimodal fusion on Qiskit: build QFL/MMA circuits, transpile for IBM devices, report costs."""


def compact_table(title: str, *, caption: str | None = None) -> Table:
    """A borderless table that fits an 80-column terminal (the default width when output is piped)."""
    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 collapse_padding=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, reporting usage errors in one line with exit code 2."""
    import click
    import os

    command = typer.main.get_command(app)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    try:
        code = command.main(args=argv, prog_name="qfl", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        print(f"error: {exc.format_message()}{where}", file=sys.stderr)
        sys.exit(2)
    except click.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted: finished units are kept; run the command again with --resume where it has it",
              file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001  (the one place every error becomes one line; see cli.errors)
        from qfl_qiskit.cli.errors import report

        sys.exit(report(exc))
    finally:
        console.file = None  # type: ignore[assignment]  # back to stdout (main may run again in one process)
    sys.exit(code if isinstance(code, int) else 0)


# Commands register themselves on `app` / `circuit_app` when imported.
from qfl_qiskit.cli import backends as _backends  # noqa: E402,F401
from qfl_qiskit.cli import circuits as _circuits  # noqa: E402,F401
from qfl_qiskit.cli import federated as _federated  # noqa: E402,F401
from qfl_qiskit.cli import noise as _noise  # noqa: E402,F401
from qfl_qiskit.cli import quickstart as _quickstart  # noqa: E402,F401
from qfl_qiskit.cli import study as _study  # noqa: E402,F401
from qfl_qiskit.cli import train as _train  # noqa: E402,F401
from qfl_qiskit.cli import jobs as _jobs  # noqa: E402,F401
from qfl_qiskit.cli import data as _data  # noqa: E402,F401
from qfl_qiskit.cli import reproduce as _reproduce  # noqa: E402,F401
