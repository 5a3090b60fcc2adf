"""``qfl noise-study``: noise scale x mitigation x seed sweeps, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, compact_table, console, emit_json, json_output
from qfl_qiskit.cli.progress import RAY_ADDRESS_HELP, CellProgress


@app.command("noise-study")
def noise_study(
    spec_file: Path = typer.Argument(..., help="Noise-study spec TOML (kind = \"noise_study\")."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="The study goes to <dir>/<name>/."),
    workers: int = typer.Option(None, "--workers", min=1, max=256, help="Parallel processes (default: the spec's)."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard this study's earlier cells and start over."),
    ray_address: str = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help=RAY_ADDRESS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Sweep noise scale x mitigation x seed; resumes a partly done study without recomputing finished cells."""
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.specs.study import load_study_spec
    from qfl_qiskit.studies import run_study

    json_output(as_json)
    require_writable_dir(results_dir, what="--results-dir")
    spec = load_study_spec(spec_file)
    if workers is not None:
        spec = spec.model_copy(update={"workers": workers})
    out_dir = results_dir / spec.name
    noise = spec.noise.parametric or f"{spec.noise.backend} calibration"
    console.print(f"noise: {noise} x scales {list(spec.scales)}; mitigations {list(spec.mitigations)}; "
                  f"seeds {list(spec.seeds)}; {'exact values' if spec.shots is None else f'{spec.shots} shots'}")
    console.print("note: mitigation here is our client-side MitigatedEstimator on Aer; for Runtime jobs the same "
                  "spec maps onto Runtime's resilience options (to_runtime_options)")
    if ray_address:
        console.print(f"cells: Ray tasks on the cluster at {ray_address}")
    with CellProgress() as on_event:
        record = run_study(spec, out_dir, progress=on_event, fresh=fresh, ray_address=ray_address or None)
    console.print(study_table(record))
    console.print(f"wrote {out_dir}/ (study.json, cells.csv, plots)")
    if as_json:
        emit_json(record)


def study_table(record: dict[str, Any]) -> Table:
    """Mean absolute error per circuit, scale and mitigation (and model accuracy) from a study record."""
    summary = record["payload"]["summary"]
    mitigations = list(dict.fromkeys(r["mitigation"] for r in summary))
    table = compact_table("noise study: mean |error| of expectation values (mean over seeds)",
                          caption="model rows: test accuracy under noise; failed: see the cell's error in study.json")
    table.add_column("target", no_wrap=True)
    table.add_column("lambda", justify="right")
    for m in mitigations:
        table.add_column(m, justify="right")
    keys = list(dict.fromkeys((r["kind"], r["target"], r["scale"]) for r in summary))
    for kind, target, scale in keys:
        cells = []
        for m in mitigations:
            row = next((r for r in summary if (r["kind"], r["target"], r["scale"], r["mitigation"]) ==
                        (kind, target, scale, m)), None)
            value = None if row is None else (row["mae"] if kind == "expectation" else row["accuracy"])
            failed = row is not None and row["errors"] and value is None
            cells.append("failed" if failed else "-" if value is None else f"{value:.4f}")
        name = target.split("/")[-1].replace(".toml", "") if kind == "expectation" else f"model {target}"
        table.add_row(name, f"{scale:g}", *cells)
    return table
