"""``qfl backends``: the offline backends with their size, basis and median errors."""

from __future__ import annotations

import warnings

import typer

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, compact_table, console, emit_json, json_output
from qfl_qiskit.errors import QflError


BROKEN_ERROR = 0.5


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2e}"


@app.command("backends")
def backends(
    contains: str = typer.Option("", "--contains", help="Only backends whose name contains this text."),
    min_qubits: int = typer.Option(1, "--min-qubits", min=1, help="Only backends with at least this many qubits."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List offline fake backends (name, qubits, basis, median 1q/2q/readout errors, calibration date); backends
    whose calibration marks gates or read-outs as broken are flagged."""
    from rich.progress import track

    from qfl_qiskit.transpile import calibration_time, fake_backend_classes, median_errors
    from qfl_qiskit.transpile.metrics import broken_calibration

    json_output(as_json)

    classes = {n: c for n, c in fake_backend_classes().items() if contains in n}
    if not classes:
        raise QflError(f"no backend name contains '{contains}'; run `qfl backends` without --contains")
    table = compact_table("Offline backends", caption="also: generic_<n>, and IBM devices by name with an account; "
                          "errors are medians over qubits / pairs")
    for col in ("name", "qubits", "basis", "1q err", "2q err", "ro err", "calibrated", "broken"):
        table.add_column(col, justify="right" if col.endswith(("err", "qubits")) else "left",
                         no_wrap=col == "name")
    rows, warnings_out = [], []
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
            broken = broken_calibration(b)
            flag = ", ".join(f"{n} {k}" for k, n in broken.items() if n) or "-"
            table.add_row(name, str(b.num_qubits), basis, _fmt(med["median_1q_error"]),
                          _fmt(med["median_2q_error"]), _fmt(med["median_readout_error"]), (cal or "-")[:10], flag)
            rows.append({"name": name, "qubits": b.num_qubits, "basis": basis.split(","), **med,
                         "calibrated": cal, "broken": broken})
            if flag != "-":
                warnings_out.append(f"warning: {name}: calibration marks {flag} as broken (error >= "
                                    f"{BROKEN_ERROR}); a layout on them fails, so the ESP ranking of transpile-report avoids them")
    console.print(table)
    for line in warnings_out:
        console.print(line)
    if as_json:
        emit_json({"backends": rows})
