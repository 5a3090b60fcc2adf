"""``qfl train``, ``qfl compare`` and ``qfl evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from qfl_qiskit.cli.app import app, compact_table, console, user_errors


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


def run_training(spec_file: Path, *, results_dir: Path, resume: bool, only: list[str] | None) -> dict[str, Any]:
    """Load the spec, then train its models with a progress bar; returns the comparison record."""
    from qfl_qiskit.specs.train import load_train_spec
    from qfl_qiskit.cli.progress import TrainingProgress
    from qfl_qiskit.training import prepare_data, train_models

    spec = load_train_spec(spec_file)
    with console.status(f"loading data set '{spec.data.name}'"):
        splits = prepare_data(spec)
    console.print(f"data: {spec.data.name}, {len(splits.dims)} modalities {list(splits.dims)}, "
                  f"{splits.num_classes} classes, split {splits.sizes}")
    with TrainingProgress(monitor=spec.optim.monitor, epochs=spec.optim.epochs) as progress:
        record = train_models(spec, out_dir=results_dir, resume=resume, only=only, progress=progress,
                              splits=splits)
    return record


@app.command("train")
@user_errors
def train(
    spec_file: Path = typer.Argument(..., help="Training spec TOML ([data], [model] or [[models]], [optim], ...)."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Run folders go here."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoints of an interrupted run."),
    model: list[str] = typer.Option(None, "--model", help="Train only the model with this label (repeatable)."),
) -> None:
    """Train the model(s) of a spec; writes checkpoints, weights, records and learning curves."""
    record = run_training(spec_file, results_dir=results_dir, resume=resume, only=model or None)
    run = record["specs"]["train"]["name"]
    console.print(comparison_table(record, title=f"run '{run}': test split"))
    console.print(f"wrote {results_dir / run}/")


@app.command("compare")
@user_errors
def compare(
    spec_file: Path = typer.Argument(..., help="Training spec TOML listing several [[models]]."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Run folders go here."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoints of an interrupted run."),
) -> None:
    """Train every model of a spec on the same split and print one comparison table."""
    from qfl_qiskit.errors import SpecError

    from qfl_qiskit.specs.train import load_train_spec

    if len(load_train_spec(spec_file).models) < 2:
        raise SpecError(f"{spec_file}: compare needs at least two [[models]]; use 'qfl train' for one")
    record = run_training(spec_file, results_dir=results_dir, resume=resume, only=None)
    run = record["specs"]["train"]["name"]
    console.print(comparison_table(record, title=f"run '{run}': fusion models on the same split (test)"))
    console.print(f"wrote {results_dir / run}/comparison.json")


def _model_file(run: Path) -> Path:
    return run / "model.pt" if run.is_dir() else run


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    run: Path = typer.Argument(..., help="A trained model's folder (results/<run>/<label>) or its model.pt."),
    backend: str = typer.Option(None, "--backend", help="Transpile for this backend; its calibration is the noise."),
    noise: Path = typer.Option(None, "--noise", help="Noise spec TOML (default: the backend's calibration)."),
    shots: int = typer.Option(4000, "--shots", min=2, help="Shots per Pauli measurement setting."),
    seed: int = typer.Option(0, "--seed", help="Aer sampling seed."),
    transpile_seeds: int = typer.Option(4, "--transpile-seeds", min=1, help="Transpiler seeds tried per circuit."),
) -> None:
    """Re-evaluate a trained quantum model on a noisy Aer simulation of its transpiled circuit (test split)."""
    from qfl_qiskit.errors import SpecError
    from qfl_qiskit.results import make_record, save_record, utc_stamp
    from qfl_qiskit.specs import load_noise_spec
    from qfl_qiskit.training import load_model, prepare_data
    from qfl_qiskit.training.noisy import evaluate_noisy

    if backend is None and noise is None:
        raise SpecError("give --backend (its calibration is the noise model) and/or --noise NOISE.toml")
    noise_spec = load_noise_spec(noise) if noise is not None else None
    model, saved = load_model(_model_file(run))
    spec = saved["spec"]
    with console.status("preparing data, transpiling and simulating"):
        splits = prepare_data(spec)
        out = evaluate_noisy(model, splits.test, num_classes=splits.num_classes, backend=backend,
                             noise=noise_spec, shots=shots, seed=seed, transpile_seeds=transpile_seeds)
    console.print(noisy_table(saved["label"], out))
    folder = _model_file(run).parent
    path = folder / f"evaluate_{backend or 'noise'}_{utc_stamp()}.json"
    record = make_record("noisy_evaluation", specs={"train": spec, "model": saved["model_spec_obj"],
                                                   **({"noise": noise_spec} if noise_spec else {})},
                         seeds={"seed": spec.seed, "aer_seed": seed}, payload={"label": saved["label"], **out})
    save_record(record, path)
    console.print(f"wrote {path}")


def noisy_table(label: str, out: dict[str, Any]) -> Table:
    """Exact against noisy test metrics of one model."""
    where = out["backend"] or "noise model"
    table = compact_table(f"{label}: exact vs noisy Aer ({where}, {out['shots']} shots)",
                          caption=f"calibration {out['calibration_time'] or '-'}; "
                                  f"{out['estimator_calls']} estimator calls, {out['seconds']:.1f} s")
    for col in ("simulation", "test acc", "macro F1", "macro AUC"):
        table.add_column(col, justify="left" if col == "simulation" else "right", no_wrap=True)
    for name in ("exact", "noisy"):
        m = out[name]
        table.add_row(name, f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}", f"{m['macro_auc']:.3f}")
    return table
