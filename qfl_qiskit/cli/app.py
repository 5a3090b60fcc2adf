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
    add_completion=False,
)
circuit_app = typer.Typer(help="Build and export circuits from spec files.", no_args_is_help=True)
app.add_typer(circuit_app, name="circuit")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def compact_table(title: str, *, caption: str | None = None) -> Table:
    """A borderless table that fits an 80-column terminal (the default width when output is piped)."""
    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 collapse_padding=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, reporting usage errors in one line with exit code 2."""
    import click

    command = typer.main.get_command(app)
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
