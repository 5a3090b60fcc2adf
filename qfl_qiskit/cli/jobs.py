"""``qfl submit`` and ``qfl jobs list|status|fetch|cancel``: Runtime jobs with records that survive a crash.

Test-only: with the environment variable ``QFL_JOBS_HOLD_AFTER_RECORD=<seconds>``, ``qfl submit`` sleeps that long
right after the record with the job ids is written and before waiting, so a test can kill it at that point.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, compact_table, console, emit_json, json_output

jobs_app = typer.Typer(help="List, inspect, fetch and cancel recorded Runtime jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

RECORDS = typer.Option(Path("runtime_jobs/records"), "--records-dir", help="Job records folder.")
HOLD_ENV = "QFL_JOBS_HOLD_AFTER_RECORD"


@contextmanager
def _quiet_runtime() -> Iterator[None]:
    """Hide qiskit-ibm-runtime's deprecation and local-testing-mode warnings (the CLI says what matters)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"qiskit_ibm_runtime(\..*)?")
        warnings.filterwarnings("ignore", message=r".*(local testing mode|no effect in local).*")
        yield


def _cost_table(cost: dict[str, Any]) -> Any:
    table = compact_table("cost estimate", caption=f"QPU s = {cost['formula']}; rep_delay {cost['rep_delay_s']:g} s")
    for col in ("PUBs", "circuits", "bindings", "shots/binding", "total shots", "QPU s (est.)", "Runtime est."):
        table.add_column(col, justify="right")
    rt_est = cost.get("runtime_estimate_s")
    table.add_row(str(cost["pubs"]), str(cost["circuits"]), str(cost["bindings"]), str(cost["shots_per_binding"]),
                  str(cost["total_shots"]), f"{cost['qpu_seconds']:.3f}", "-" if rt_est is None else f"{rt_est:.1f}")
    return table


@app.command("submit")
def submit(
    spec_file: Path = typer.Argument(..., help="Job spec TOML (kind = \"job\") from runtime_jobs/."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Transpile and estimate the cost; record, don't submit."),
    max_qpu_seconds: float = typer.Option(None, "--max-qpu-seconds", min=0,
                                          help="Refuse to submit if the estimated QPU time is larger."),
    records_dir: Path = RECORDS,
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Submit a job spec as ONE Runtime job; the record is written before waiting, so nothing is lost."""
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.runtime import jobs
    from qfl_qiskit.specs.job import load_job_spec
    from qfl_qiskit.training.hardware import job_inputs

    json_output(as_json)
    require_writable_dir(records_dir, what="--records-dir")
    from qfl_qiskit.execution.runtime import check_options

    spec = load_job_spec(spec_file)
    check_options("resilience", spec.resilience)  # before transpiling or writing anything
    hold = float(os.environ.get(HOLD_ENV, "0") or 0)

    def hook(path: Path) -> None:
        console.print(f"recorded {path} (job {path.stem}); waiting for the result")
        if hold > 0:
            time.sleep(hold)

    with _quiet_runtime():
        with console.status("building inputs and transpiling"):
            inputs = job_inputs(spec)
        if spec.resilience and spec.backend.startswith("fake_"):
            console.print("note: qiskit-ibm-runtime 0.51's executor Estimator applies the [resilience] options "
                          "client-side, so local testing mode runs them on the simulator too (the deprecated "
                          "EstimatorV2 ignored them there)", markup=False)
        try:
            outcome = jobs.submit(spec, inputs, records_dir=records_dir, dry_run=dry_run,
                                  max_qpu_seconds=max_qpu_seconds, wait_hook=hook,
                                  on_cost=lambda c: console.print(_cost_table(c)))
        except KeyboardInterrupt:
            console.print("interrupted while waiting: the record is kept; `qfl jobs list` then `qfl jobs fetch ID`")
            raise typer.Exit(130) from None
    rid = outcome.record["record_id"]
    if dry_run:
        console.print(f"dry run: nothing submitted; record {records_dir / rid}.json")
    else:
        console.print(f"job {outcome.record['job_ids'][0]} {outcome.record['status']} on "
                      f"{outcome.record['backend']} ({outcome.record['mode']} mode); record id {rid}; "
                      f"`qfl jobs fetch {rid}` for the values")
    if as_json:
        emit_json(outcome.record)


@jobs_app.command("list")
def list_jobs(records_dir: Path = RECORDS,
              as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """Every job record, newest first (corrupt ones flagged)."""
    from qfl_qiskit.runtime.records import list_records

    json_output(as_json)
    rows = list_records(records_dir)
    if as_json:
        emit_json({"records": [{"record_id": rid, "corrupt": rec is None,
                                **({} if rec is None else {k: rec.get(k) for k in
                                                           ("status", "backend", "mode", "job_ids", "cost")})}
                               for rid, rec in rows]})
    if not rows:
        console.print(f"no job records in {records_dir}")
        return
    table = compact_table(f"job records in {records_dir}", caption="QPU s: estimate; details: `qfl jobs status ID`")
    table.add_column("record id", no_wrap=True, overflow="fold")
    for col in ("status", "backend", "QPU s"):
        table.add_column(col, no_wrap=True, justify="right" if col.startswith("QPU") else "left")
    for rid, rec in rows:
        if rec is None:
            table.add_row(rid, "CORRUPT", "-", "-")
            continue
        table.add_row(rid, rec.get("status", "?"), rec.get("backend", "?"),
                      f"{rec.get('cost', {}).get('qpu_seconds', 0):.2f}")
    console.print(table)


@jobs_app.command("status")
def status(record_id: str = typer.Argument(..., help="Record id (see `qfl jobs list`)."),
           records_dir: Path = RECORDS,
           as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """The status history of a job (refreshed from the service for real backends)."""
    from qfl_qiskit.runtime import jobs

    json_output(as_json)
    with _quiet_runtime():
        rec = jobs.status(record_id, records_dir=records_dir)
    if as_json:
        emit_json(rec)
    table = compact_table(f"{record_id}: {rec['status']} ({rec['backend']}, {rec['mode']}, "
                          f"job {(rec.get('job_ids') or ['-'])[0]})")
    for col in ("time", "status", "error"):
        table.add_column(col)
    for h in rec.get("status_history", []):
        table.add_row(h["time"], h["status"], h.get("error", ""))
    console.print(table)
    if rec["local"] and rec["status"] == "SUBMITTED":
        console.print("local testing mode: the submitting process ended before storing the result; "
                      "`qfl jobs fetch` re-runs the identical seeded job")


@jobs_app.command("fetch")
def fetch(record_id: str = typer.Argument(..., help="Record id (see `qfl jobs list`)."),
          records_dir: Path = RECORDS,
          results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Result records go here."),
          as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """Fetch a job's result, write a results record and print the expectation values (or model metrics)."""
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.runtime import jobs
    from qfl_qiskit.results import make_record, save_record
    from qfl_qiskit.training.hardware import interpret

    json_output(as_json)
    require_writable_dir(results_dir, what="--results-dir")
    with _quiet_runtime():
        rec, result = jobs.fetch(record_id, records_dir=records_dir)
        payload = interpret(rec, jobs.pub_results(result))
    out = results_dir / "runtime_jobs" / f"{record_id}.json"
    seeds = {"seed": rec["options"]["seed"]} if rec["options"].get("seed") is not None else {}
    result_record = make_record("runtime_job_result", specs=rec["specs"], seeds=seeds,
                                payload={"record_id": record_id, "job_ids": rec["job_ids"], "backend": rec["backend"],
                                         "recovered_by": rec.get("recovered_by"), **payload})
    save_record(result_record, out)
    if "metrics" in payload:
        table = compact_table(f"{record_id}: model on {rec['backend']} ({rec['inputs']['samples']} samples)")
        for col in ("values", "accuracy", "macro F1", "macro AUC"):
            table.add_column(col, justify="right")
        for name, m in (("hardware", payload["metrics"]), ("exact", payload["exact_metrics"])):
            table.add_row(name, f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}", f"{m['macro_auc']:.3f}")
        console.print(table)
    else:
        for i, pub in enumerate(payload["pubs"]):
            table = compact_table(f"{record_id}: PUB {i} expectation values (rows: bindings, cols: observables)")
            table.add_column("binding", justify="right")
            for k in range(len(pub["evs"][0]) if pub["evs"] else 0):
                table.add_column(f"O{k}", justify="right")
            for b, row in enumerate(pub["evs"][:10]):
                table.add_row(str(b), *(f"{v:+.4f}" for v in row))
            console.print(table)
    note = " (recovered by a seeded local re-run)" if rec.get("recovered_by") else ""
    console.print(f"wrote {out}{note}")
    if as_json:
        emit_json(result_record)


@jobs_app.command("cancel")
def cancel(record_id: str = typer.Argument(..., help="Record id (see `qfl jobs list`)."),
           records_dir: Path = RECORDS) -> None:
    """Cancel a job that has not finished."""
    from qfl_qiskit.runtime import jobs

    with _quiet_runtime():
        rec = jobs.cancel(record_id, records_dir=records_dir)
    console.print(f"cancelled job {(rec.get('job_ids') or ['-'])[0]} (record {record_id})")
