"""``qfl federated``: federated training of the QFL or MMA model on Flower's simulation engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, compact_table, console, emit_json, json_output


@app.command("federated")
def federated(
    spec_file: Path = typer.Argument(..., help="Federated spec TOML (kind = \"federated\")."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="The run goes to <dir>/<name>/."),
    resume: bool = typer.Option(False, "--resume", help="Continue after the last checkpointed round."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Train over simulated clients on Flower (IID or Dirichlet data, missing modalities, MMA aggregation)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.federated.run import run_federated
    from qfl_qiskit.specs.federated import load_federated_spec

    json_output(as_json)
    require_writable_dir(results_dir, what="--results-dir")  # before Ray starts, not after a round
    spec = load_federated_spec(spec_file)
    out_dir = results_dir / spec.name
    console.print(f"{spec.clients} clients, {spec.rounds} rounds, {spec.partition} partition"
                  f"{f' (alpha {spec.alpha})' if spec.partition == 'dirichlet' else ''}, missing {spec.missing_rate} "
                  f"per {spec.missing_mode}, {'modality-aware' if spec.modality_aware else 'plain'} FedAvg, "
                  f"model {spec.model.name}; Flower simulation engine (Ray)")
    logging.getLogger("flwr").setLevel(logging.WARNING)
    with Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("rounds", total=spec.rounds, status="starting Ray and the clients")

        def on_event(event: dict[str, Any]) -> None:
            status = f"test acc {event['accuracy']:.3f}"
            if event.get("skipped"):
                status += " (round skipped)"
            elif event.get("failed"):
                status += f" ({event['failed']} clients failed)"
            progress.update(task, completed=event["round"], status=status)

        record = run_federated(spec, out_dir, resume=resume, progress=on_event)
    table = compact_table(f"{spec.name}: global model on the test split", caption="clients: updates aggregated")
    for col in ("round", "test acc", "macro F1", "macro AUC", "clients", "note"):
        table.add_column(col, justify="left" if col == "note" else "right")
    for h in record["payload"]["history"]:
        g = h["global"]
        note = h.get("skipped") or (f"{len(h['rejected'])} rejected" if h.get("rejected") else "")
        table.add_row(str(h["round"]), f"{g['accuracy']:.3f}", f"{g['macro_f1']:.3f}", f"{g['macro_auc']:.3f}",
                      str(len(h.get("clients", [])) - len(h.get("rejected", []))), note)
    console.print(table)
    console.print(f"wrote {out_dir}/ (record.json, accuracy_per_round.png, checkpoint.pt)")
    if as_json:
        emit_json(record)
