"""``qfl train``, ``qfl compare`` and ``qfl evaluate``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, compact_table, console, emit_json, json_output
from qfl_qiskit.cli.progress import RAY_ADDRESS_HELP


def comparison_table(record: dict[str, Any], *, title: str) -> Table:
    """Test metrics, parameter counts and training time of every model of a comparison record."""
    table = compact_table(title, caption="fusion: parameters of the fusion step; total: with encoders and head")
    for col in ("model", "test acc", "macro F1", "macro AUC", "fusion", "total", "epochs", "train s"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for row in record["payload"]["models"]:
        t = row["test"]
        table.add_row(row["label"], f"{t['accuracy']:.3f}", f"{t['macro_f1']:.3f}", f"{t['macro_auc']:.3f}",
                      str(row["fusion_parameters"]), str(row["total_parameters"]),
                      f"{row['best_epoch']}/{row['epochs_run']}", f"{row['train_seconds']:.1f}")
    return table


def run_training(spec_file: Path, *, results_dir: Path, resume: bool, only: list[str] | None,
                 seed: int | None = None, init_from: Path | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Load the spec, then train its models with a progress bar; returns the comparison record.

    With ``seed``, the spec's seed is replaced and the run is named ``<name>_seed<seed>``. With ``init_from``
    (``--from``), a Runtime spec starts from that trained run's weights.
    """
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.specs.train import load_train_spec

    require_writable_dir(results_dir, what="--results-dir")
    spec = load_train_spec(spec_file)  # a bad spec is refused before torch and the data layer are imported
    if init_from is not None:
        spec = with_init_from(spec, init_from, source=str(spec_file))
    if spec.execution.estimator == "runtime":  # what can be checked without the data, before loading it
        from qfl_qiskit.training.qpu_setup import precheck

        precheck(spec, only=only)
    from qfl_qiskit.cli.progress import TrainingProgress
    from qfl_qiskit.training import prepare_data, train_models

    if seed is not None:
        spec = spec.model_copy(update={"seed": seed, "name": f"{spec.name}_seed{seed}"})
    with console.status(f"loading data set '{spec.data.name}'"):
        splits = prepare_data(spec)
    console.print(f"data: {spec.data.name}, {len(splits.dims)} modalities {list(splits.dims)}, "
                  f"{splits.num_classes} classes, split {splits.sizes}")
    with TrainingProgress(monitor=spec.optim.monitor, epochs=spec.optim.epochs) as progress:
        record = train_models(spec, out_dir=results_dir, resume=resume, only=only, progress=progress,
                              splits=splits, dry_run=dry_run)
    return record


def with_init_from(spec: Any, folder: Path, *, source: str) -> Any:
    """``spec`` with ``[execution] init_from`` set to ``folder`` (validated as if written in the file)."""
    from qfl_qiskit.errors import SpecError
    from qfl_qiskit.specs.base import validate
    from qfl_qiskit.specs.train import TrainSpec

    if spec.execution.estimator != "runtime":
        raise SpecError(f"--from starts a device run from trained weights; {source} trains with estimator "
                        f"'{spec.execution.estimator}' (set [execution] estimator = \"runtime\")")
    data = spec.model_dump(mode="json")
    data["execution"]["init_from"] = str(folder)
    return validate(TrainSpec, data, source=source)


def estimate_table(record: dict[str, Any], *, title: str) -> Table:
    """Per model: the first step's job (PUBs, bindings, shots Runtime runs) and the whole run's QPU seconds."""
    table = compact_table(title, caption="one job per step; PUBs, bindings: of the first step's job; shots: run per "
                                         "binding and basis; QPU s = bindings x bases x shots x (rep_delay + "
                                         "circuit), a lower bound (no per-job overhead)")
    for col in ("model", "backend", "steps", "PUBs", "bindings", "shots", "QPU s/step", "QPU s"):
        table.add_column(col, justify="left" if col in ("model", "backend") else "right", no_wrap=True)
    for row in record["payload"]["models"]:
        p = row["projection"]
        if p is None:
            table.add_row(row["label"], row["backend"], "0", "-", "-", "-", "-", "finished")
            continue
        first = p["first_step"]
        table.add_row(row["label"], row["backend"], str(p["steps"]), str(first["pubs"]), f"{first['bindings']:,}",
                      str(first["shots_per_binding"]), f"{p['per_step_s']:.1f}", f"{p['total_s']:.1f}")
    return table


def qpu_table(record: dict[str, Any], *, title: str) -> Table:
    """Device runs: steps (one Runtime job each), exact test metrics before and after, QPU seconds."""
    table = compact_table(title, caption="acc: test accuracy on the exact simulator, before -> after the device "
                                         "steps; QPU s: Runtime's reported usage, the estimate where none (local)")
    for col in ("model", "backend", "steps", "acc before", "acc after", "QPU s", "stopped"):
        table.add_column(col, justify="left" if col in ("model", "backend", "stopped") else "right", no_wrap=True)
    for row in record["payload"]["models"]:
        q = row["qpu"]
        table.add_row(row["label"], q["backend"], f"{q['steps_done']}/{q['steps_planned']}",
                      f"{row['exact_before']['accuracy']:.3f}", f"{row['test']['accuracy']:.3f}",
                      f"{row['qpu_seconds_used']:.1f}", q["stop_reason"] or "-")
    return table


@app.command("train")
def train(
    spec_file: Path = typer.Argument(..., help="Training spec TOML ([data], [model] or [[models]], [optim], ...)."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Run folders go here."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoints of an interrupted run "
                                                        "(a device step cut off mid-job gets that job's result)."),
    model: list[str] = typer.Option(None, "--model", help="Train only the model with this label (repeatable)."),
    init_from: Path = typer.Option(None, "--from", help="Device runs: start from the weights of this trained run "
                                                        "folder (results/<run>), e.g. one trained exactly; "
                                                        "replaces the spec's init_from."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Device runs: transpile and estimate the QPU time of the "
                                                          "whole run; submit nothing, write nothing."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Train the model(s) of a spec; writes checkpoints, weights, records and learning curves.

    With estimator = "runtime" in the spec's execution table, every optimisation step is one Runtime job on
    the backend.
    """
    json_output(as_json)
    record = run_training(spec_file, results_dir=results_dir, resume=resume, only=model or None,
                          init_from=init_from, dry_run=dry_run)
    if dry_run:
        console.print(estimate_table(record, title=f"{spec_file}: estimate of the device run (nothing submitted)"))
        for row in record["payload"]["models"]:
            for entry in row.get("isa", []):
                r = entry["report"]
                console.print(f"{row['label']}: transpiled for {r['backend']}: {r['two_qubit_count']} two-qubit "
                              f"gates, 2q depth {r['two_qubit_depth']}, ESP {r['esp']:.3f} (seed {r['seed']} of "
                              f"{len(r['candidates'])} candidates)", markup=False)
        if as_json:
            emit_json(record)
        return
    run = record["specs"]["train"]["name"]
    if record["specs"]["train"]["execution"]["estimator"] == "runtime":
        console.print(qpu_table(record, title=f"run '{run}' on the device"))
    else:
        console.print(comparison_table(record, title=f"run '{run}': test split"))
    console.print(f"wrote {results_dir / run}/")
    if as_json:
        emit_json(record)


@app.command("compare")
def compare(
    spec_file: Path = typer.Argument(..., help="Training spec TOML listing several [[models]]."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Run folders go here."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoints of an interrupted run."),
    seeds: str = typer.Option(None, "--seeds", help="Comma-separated seeds: one split and initialisation each; "
                                                     "the table shows mean and standard deviation."),
    workers: int = typer.Option(None, "--workers", min=1, max=256,
                                help="With --seeds: parallel processes, one model of one seed each (default: the "
                                     "CPU count)."),
    ray_address: str = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help=RAY_ADDRESS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Train every model of a spec on the same split and print one comparison table."""
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.errors import SpecError
    from qfl_qiskit.specs.train import load_train_spec

    json_output(as_json)
    require_writable_dir(results_dir, what="--results-dir")
    spec = load_train_spec(spec_file)
    if len(spec.models) < 2:
        raise SpecError(f"{spec_file}: compare needs at least two [[models]]; use 'qfl train' for one")
    seed_list = parse_seeds(seeds) if seeds is not None else None
    if seed_list is None:
        record = run_training(spec_file, results_dir=results_dir, resume=resume, only=None)
        console.print(comparison_table(record, title=f"run '{spec.name}': fusion models on the same split (test)"))
        console.print(f"wrote {results_dir / spec.name}/comparison.json")
        if as_json:
            emit_json(record)
        return
    if ray_address and (seed_list is None or spec.execution.estimator == "runtime"):
        raise SpecError("--ray-address runs the cells of a sweep on a cluster: give --seeds, with a simulated "
                        "[execution] estimator (Runtime specs run their jobs from this machine)")
    if spec.execution.estimator == "runtime":  # QPU jobs: one after another from here, with their job records
        records = [run_training(spec_file, results_dir=results_dir, resume=resume, only=None, seed=s)
                   for s in seed_list]
    else:
        from qfl_qiskit.cli.progress import CellProgress
        from qfl_qiskit.studies.compare import run_seeds

        cpus = os.cpu_count() or 1
        where = f"Ray tasks on {ray_address}" if ray_address else f"{workers or cpus} local processes"
        console.print(f"{len(seed_list)} seeds x {len(spec.models)} models as cells: {where}")
        with CellProgress("models") as on_event:
            records = run_seeds(spec, seed_list, results_dir=results_dir, resume=resume,
                                workers=workers or cpus, ray_address=ray_address or None, progress=on_event)
    summary = summarize_seeds(records)
    from qfl_qiskit.results import make_record, save_record

    path = results_dir / f"{spec.name}_seeds" / "summary.json"
    summary_record = make_record("comparison_over_seeds", specs={"train": spec}, seeds={"seeds": seed_list},
                                 payload={"models": summary, "runs": [f"{spec.name}_seed{s}" for s in seed_list]})
    save_record(summary_record, path)
    from qfl_qiskit.atomic import atomic_write_bytes
    from qfl_qiskit.results.plots import render_comparison

    figure = atomic_write_bytes(path.with_suffix(".png"), render_comparison(records, title=spec.name))
    console.print(seeds_table(summary, title=f"{spec.name}: test metrics over seeds {seed_list} (mean ± std)"))
    console.print(f"wrote {path} and {figure}")
    if as_json:
        emit_json(summary_record)


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; distinct non-negative integers."""
    from qfl_qiskit.errors import SpecError

    try:
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise SpecError(f"--seeds needs distinct non-negative integers separated by commas, got '{text}'")
    return seeds


def summarize_seeds(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation (ddof 1) of each model's test metrics and training time over runs."""
    import numpy as np

    out = []
    for label in [r["label"] for r in records[0]["payload"]["models"]]:
        rows = [next(r for r in rec["payload"]["models"] if r["label"] == label) for rec in records]
        entry: dict[str, Any] = {"label": label, "fusion_parameters": rows[0]["fusion_parameters"],
                                 "total_parameters": rows[0]["total_parameters"], "runs": len(rows)}
        for key in ("accuracy", "macro_f1", "macro_auc"):
            vals = np.array([r["test"][key] for r in rows], dtype=float)
            entry[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                          "values": vals.tolist()}
        entry["train_seconds"] = float(np.mean([r["train_seconds"] for r in rows]))
        out.append(entry)
    return out


def seeds_table(summary: list[dict[str, Any]], *, title: str) -> Table:
    """Mean ± std of the test metrics per model."""
    table = compact_table(title, caption="fusion: parameters of the fusion step; total: with encoders and head")
    for col in ("model", "test acc", "macro F1", "macro AUC", "fusion", "total", "train s"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for e in summary:
        cells = [f"{e[k]['mean']:.3f}±{e[k]['std']:.3f}" for k in ("accuracy", "macro_f1", "macro_auc")]
        table.add_row(e["label"], *cells, str(e["fusion_parameters"]), str(e["total_parameters"]),
                      f"{e['train_seconds']:.1f}")
    return table


def _model_file(run: Path) -> Path:
    from qfl_qiskit.errors import DataError

    if run.is_dir():
        return run / "model.pt"
    if not run.exists():
        raise DataError(f"model file not found: {run}; give a run folder written by 'qfl train' "
                        "(results/<run>/<label>)")
    if run.suffix != ".pt":
        raise DataError(f"{run}: not a model; give a trained model's folder (results/<run>/<label>) or its model.pt")
    return run


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="A trained model's folder (results/<run>/<label>) or its model.pt."),
    backend: str = typer.Option(None, "--backend", help="Transpile for this backend; its calibration is the noise."),
    noise: Path = typer.Option(None, "--noise", help="Noise spec TOML (default: the backend's calibration)."),
    shots: int = typer.Option(4000, "--shots", min=2, max=1_000_000, help="Shots per Pauli measurement setting."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Aer sampling seed."),
    transpile_seeds: int = typer.Option(4, "--transpile-seeds", min=1, max=256,
                                        help="Transpiler seeds tried per circuit."),
    strategy: str = typer.Option("all", "--strategy", help="Transpilation: preset, native (QFL/MMA-aware "
                                 "placement, bridges) or all (both, best ESP kept; the record says which)."),
    mitigation: str = typer.Option("none", "--mitigation",
                                   help="none, zne, rem, ddd or combinations like zne+rem (ZNE: global gate folding "
                                        "at 1, 3, 5, Richardson; DDD: X-X in idle windows, needs --backend)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Re-evaluate a trained quantum model on a noisy Aer simulation of its transpiled circuit (test split)."""
    from qfl_qiskit.errors import SpecError
    from qfl_qiskit.results import make_record, save_record, utc_stamp
    from qfl_qiskit.specs import load_noise_spec
    from qfl_qiskit.training import load_model, prepare_data
    from qfl_qiskit.training.noisy import evaluate_noisy

    json_output(as_json)
    if backend is None and noise is None:
        raise SpecError("give --backend (its calibration is the noise model) and/or --noise NOISE.toml")
    from qfl_qiskit.transpile.report import STRATEGIES

    if strategy not in STRATEGIES:
        raise SpecError(f"--strategy must be one of {', '.join(STRATEGIES)}, got '{strategy}'")
    noise_spec = load_noise_spec(noise) if noise is not None else None
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.specs import validate
    from qfl_qiskit.specs.mitigation import MitigationSpec

    mitigation_spec = validate(MitigationSpec, {"techniques": mitigation}, source="--mitigation")
    model_file = _model_file(run)
    require_writable_dir(model_file.parent, what="the model folder")
    model, saved = load_model(model_file)
    spec = saved["spec"]
    with console.status("preparing data, transpiling and simulating"):
        splits = prepare_data(spec)
        out = evaluate_noisy(model, splits.test, num_classes=splits.num_classes, backend=backend,
                             noise=noise_spec, shots=shots, seed=seed, transpile_seeds=transpile_seeds,
                             mitigation=mitigation_spec, strategy=strategy)
    console.print(noisy_table(saved["label"], out))
    folder = model_file.parent
    path = folder / f"evaluate_{backend or 'noise'}_{utc_stamp()}.json"
    record = make_record("noisy_evaluation", specs={"train": spec, "model": saved["model_spec_obj"],
                                                   **({"noise": noise_spec} if noise_spec else {})},
                         seeds={"seed": spec.seed, "aer_seed": seed}, payload={"label": saved["label"], **out},
                         data=splits.provenance())
    save_record(record, path)
    console.print(f"wrote {path}")
    if as_json:
        emit_json(record)


def noisy_table(label: str, out: dict[str, Any]) -> Table:
    """Exact against noisy test metrics of one model."""
    where = out["backend"] or "noise model"
    mitigation = (out.get("mitigation") or {}).get("techniques") or []
    where += f", mitigation {'+'.join(mitigation)}" if mitigation else ""
    table = compact_table(f"{label}: exact vs noisy Aer ({where}, {out['shots']} shots)",
                          caption=f"calibration {out['calibration_time'] or '-'}; "
                                  f"{out['estimator_calls']} estimator calls, {out['seconds']:.1f} s")
    for col in ("simulation", "test acc", "macro F1", "macro AUC"):
        table.add_column(col, justify="left" if col == "simulation" else "right", no_wrap=True)
    for name in ("exact", "noisy"):
        m = out[name]
        table.add_row(name, f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}", f"{m['macro_auc']:.3f}")
    return table
