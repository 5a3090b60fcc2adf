"""``qfl quickstart``: the main job on an embedded default, end to end in a few minutes on a laptop.

Trains the QFL model (exact simulation) and the LMF and Concat baselines on UCI Multiple Features (6 modalities),
prints the comparison table, transpiles the trained QFL circuit for fake_torino and fake_fez, and re-evaluates the
trained QFL on a noisy Aer simulation of fake_torino. Everything goes to ``<results-dir>/quickstart/``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, console, emit_json, json_output

QUICKSTART_BACKENDS = ("fake_torino", "fake_fez")


@app.command("quickstart")
def quickstart(
    spec_file: Path = typer.Option(None, "--spec", help="Run this training spec instead of the embedded default."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Run folders go here."),
    isa_dir: Path = typer.Option(Path("circuits/isa"), "--isa-dir", help="Where ISA QPY/QASM files go."),
    shots: int = typer.Option(2000, "--shots", min=2, max=1_000_000,
                              help="Shots per Pauli setting in the noisy evaluation."),
    seeds: int = typer.Option(4, "--seeds", min=1, max=256, help="Transpiler seeds per backend."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted quickstart from its checkpoints."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Train QFL, LMF and Concat on UCI Multiple Features, transpile the QFL circuit, evaluate it under noise."""
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.cli.circuits import _report
    from qfl_qiskit.cli.train import comparison_table, noisy_table, run_training
    from qfl_qiskit.errors import SpecError
    from qfl_qiskit.results import make_record, save_record
    from qfl_qiskit.specs import TranspileSpec, validate
    from qfl_qiskit.specs.train import load_train_spec
    from qfl_qiskit.training import load_model, prepare_data
    from qfl_qiskit.training.noisy import evaluate_noisy

    json_output(as_json)
    require_writable_dir(results_dir, what="--results-dir")
    require_writable_dir(isa_dir, what="--isa-dir")
    with resources.as_file(resources.files("qfl_qiskit.cli").joinpath("quickstart.toml")) as default:
        spec_path = spec_file or default
        spec = load_train_spec(spec_path)
        quantum = [m for m in spec.models if m.name == "qfl"]
        if not quantum:
            raise SpecError(f"{spec_path}: the quickstart needs a [[models]] entry with name = \"qfl\"")
        console.rule("1. train QFL and classical baselines on one split")
        record = run_training(spec_path, results_dir=results_dir, resume=resume, only=None)
    run_dir = results_dir / spec.name
    console.print(comparison_table(record, title=f"{spec.data.name}: test split"))

    console.rule("2. the trained QFL circuit on IBM devices")
    label = quantum[0].display
    model, saved = load_model(run_dir / label / "model.pt")
    tspec = validate(TranspileSpec, {"backends": QUICKSTART_BACKENDS, "seeds": seeds}, source="quickstart")
    report = _report(model.spec, model.qnn, tspec, json_path=run_dir / f"transpile_{label}.json",
            plot_path=run_dir / f"transpile_{label}.png", isa_dir=isa_dir, results_dir=run_dir)

    console.rule(f"3. the trained QFL under {QUICKSTART_BACKENDS[0]} calibration noise")
    splits = prepare_data(saved["spec"])
    with console.status(f"transpiling for {QUICKSTART_BACKENDS[0]} and simulating {splits.sizes['test']} test "
                        f"samples with noise, {shots} shots per setting"):
        out = evaluate_noisy(model, splits.test, num_classes=splits.num_classes, backend=QUICKSTART_BACKENDS[0],
                             shots=shots, seed=spec.seed, transpile_seeds=seeds)
    console.print(noisy_table(label, out))
    path = run_dir / label / f"evaluate_{QUICKSTART_BACKENDS[0]}.json"
    noisy = make_record("noisy_evaluation", specs={"train": spec, "model": quantum[0]},
                        seeds={"seed": spec.seed, "aer_seed": spec.seed}, payload={"label": label, **out},
                        data=splits.provenance())
    save_record(noisy, path)
    console.print(f"wrote {run_dir}/ (records, learning curves, weights, transpilation report) and {isa_dir}/")
    if as_json:
        emit_json({"comparison": record, "transpile_report": report, "noisy_evaluation": noisy})
