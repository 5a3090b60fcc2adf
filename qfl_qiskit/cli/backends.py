"""``qfl backends``: the offline backends with their size, basis and median errors."""

from __future__ import annotations

import warnings

import typer

from qfl_qiskit.cli.app import app, compact_table, console
from qfl_qiskit.errors import QflError


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2e}"


@app.command("backends")
def backends(
    contains: str = typer.Option("", "--contains", help="Only backends whose name contains this text."),
    min_qubits: int = typer.Option(1, "--min-qubits", min=1, help="Only backends with at least this many qubits."),
) -> None:
    """List offline fake backends (name, qubits, basis, median 1q/2q/readout errors, calibration date)."""
    from rich.progress import track

    from qfl_qiskit.transpile import calibration_time, fake_backend_classes, median_errors

    classes = {n: c for n, c in fake_backend_classes().items() if contains in n}
    if not classes:
        raise QflError(f"no backend name contains '{contains}'; run `qfl backends` without --contains")
    table = compact_table("Offline backends", caption="also: generic_<n>, and IBM devices by name with an account; "
                          "errors are medians over qubits / pairs")
    for col in ("name", "qubits", "basis", "1q err", "2q err", "ro err", "calibrated"):
        table.add_column(col, justify="right" if col.endswith(("err", "qubits")) else "left")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Properties of fake_nighthawk")  # known: not typical values
        for name, cls in track(list(classes.items()), description="reading calibrations", console=console,
                               transient=True):
            b = cls()
            if b.num_qubits < min_qubits:
                continue
            med = median_errors(b)
            basis = ",".join(sorted(set(b.operation_names) - {"delay", "measure", "reset", "id", "if_else",
                                                              "for_loop", "switch_case", "while_loop"}))
            cal = calibration_time(b)
            table.add_row(name, str(b.num_qubits), basis, _fmt(med["median_1q_error"]),
                          _fmt(med["median_2q_error"]), _fmt(med["median_readout_error"]), (cal or "-")[:10])
    console.print(table)
