"""``qfl noise snapshot BACKEND``: save a dated calibration snapshot that noise specs can point to."""

from __future__ import annotations

from pathlib import Path

import typer

from qfl_qiskit.cli.app import app, console

noise_app = typer.Typer(help="Noise models: calibration snapshots of backends.", no_args_is_help=True)
app.add_typer(noise_app, name="noise")


def _err(v: float | None) -> str:
    return "-" if v is None else f"{v:.2e}"


def _us(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e6:.0f} us"


@noise_app.command("snapshot")
def snapshot(
    backend: str = typer.Argument(..., help="Backend name (fake_<device>, generic_<n>, or an IBM device)."),
    out_dir: Path = typer.Option(Path("noise_models"), "--out-dir", help="Folder for the snapshot JSON."),
) -> None:
    """Write BACKEND's calibration (T1/T2, gate and readout errors, durations) to <out-dir>/<backend>_<date>.json.

    Point a noise spec at it with `kind = "backend"`, `backend = "..."`, `snapshot = "<path>"` to re-run a study
    on the same numbers later.
    """
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.noise import calibration_summary, load_snapshot, snapshot_backend

    require_writable_dir(out_dir, what="--out-dir")
    path = snapshot_backend(backend, out_dir)
    s = calibration_summary(load_snapshot(path))
    console.print(str(path), markup=False, soft_wrap=True)
    console.print(
        f"{s['backend']}: {s['num_qubits']} qubits, median errors 1q {_err(s['median_1q_error'])}, "
        f"2q {_err(s['median_2q_error'])}, readout {_err(s['median_readout_error'])}, "
        f"T1 {_us(s['median_t1_s'])}, T2 {_us(s['median_t2_s'])}, calibrated {s['calibration_time'] or 'unknown'}",
        markup=False,
        soft_wrap=True,
    )
