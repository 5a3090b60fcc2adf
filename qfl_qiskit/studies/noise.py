"""Noise-robustness study: noise scale x mitigation x seed, (a) expectation-value error of circuits, (b) a trained
model's test metrics; plus the barren-plateau diagnostic. Cells run through the sweep executor (local processes, or
Ray tasks given a cluster address); each finished cell is written at once (atomically, by the driver) to
``<out>/cells/``, so an interrupted study resumes without recomputing them.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qfl_qiskit.atomic import atomic_write_json, atomic_write_text
from qfl_qiskit.specs.study import NoiseStudySpec

_CACHE: dict[tuple, Any] = {}  # per worker process: transpiled circuits, exact values


def check_study(spec: NoiseStudySpec) -> None:
    """Refuse, before any folder is made, a study whose files or backend cannot be used (one line each).

    Loads every circuit spec, the model's training spec and the parametric noise spec, and resolves the noise
    backend, so that a typo is reported at once instead of as a study whose every cell "failed".

    Raises:
        QflError: A missing or malformed file, a file of the wrong kind, or an unknown backend.
    """
    from qfl_qiskit import limits
    from qfl_qiskit.errors import SpecError
    from qfl_qiskit.specs import load_circuit_spec, load_noise_spec
    from qfl_qiskit.specs.train import load_train_spec
    from qfl_qiskit.transpile import resolve_backend

    width = resolve_backend(spec.noise.backend).num_qubits
    if spec.expectation is not None:
        for path in spec.expectation.circuits:
            cspec = load_circuit_spec(path)
            qubits = (limits.qfl_qubits(cspec.modalities, cspec.features) if cspec.kind == "qfl"
                      else cspec.modalities * cspec.qubits_per_modality)
            if qubits > width:
                raise SpecError(f"{path} needs {qubits} qubits but {spec.noise.backend} has {width}; choose a "
                                "larger [noise] backend")
    if spec.model is not None:
        train = load_train_spec(spec.model.train)
        if spec.model.label not in [m.display for m in train.models]:
            raise SpecError(f"[model] label '{spec.model.label}' is not a model of {spec.model.train} "
                            f"(its models: {', '.join(m.display for m in train.models)})")
    if spec.noise.parametric and load_noise_spec(spec.noise.parametric).kind != "parametric":
        raise SpecError(f"[noise] parametric = {spec.noise.parametric!r} is a backend noise spec; give a "
                        'kind = "parametric" spec there, or drop it to use the backend\'s calibration')


STUDY_OUTPUTS = ("cells", "model", "plateau.json", "study.json", "cells.csv", "failed.json")


def clear_study(out_dir: Path) -> None:
    """Remove a previous study's outputs from ``out_dir`` (``--fresh``); other files there are left alone."""
    import shutil

    for name in STUDY_OUTPUTS:
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    for png in out_dir.glob("*.png") if out_dir.is_dir() else ():
        png.unlink()


def _file_digest(path: str) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


#: How the study transpiles (``transpile_sweep``'s strategy); part of every cell's fingerprint, so cells of a study
#: begun with another transpilation are computed again rather than mixed with these.
STUDY_TRANSPILE = "all"


def cell_fingerprint(spec: NoiseStudySpec, cell: dict[str, Any]) -> str:
    """What a cell's result depends on: the spec's shared settings, the cell's own values and the content of the
    files it reads (circuit spec or training spec, parametric noise spec). Stored in every cell; a resumed cell
    with another fingerprint belongs to a different study and is refused."""
    import hashlib

    shared = spec.model_dump(mode="json", exclude={"name", "workers", "scales", "mitigations", "seeds", "plateau"})
    if shared.get("expectation"):
        shared["expectation"].pop("circuits", None)
        shared["expectation"].pop("observables", None)
    files = {}
    if cell["kind"] == "expectation":
        files["circuit"] = _file_digest(cell["target"])
    elif spec.model is not None:
        files["train"] = _file_digest(spec.model.train)
    if spec.noise.parametric:
        files["noise"] = _file_digest(spec.noise.parametric)
    own = {k: v for k, v in cell.items() if k not in ("id", "fingerprint")}
    text = json.dumps({"shared": shared, "cell": own, "files": files, "transpile": STUDY_TRANSPILE}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_json(path: Path, *, what: str) -> Any:
    from qfl_qiskit.errors import QflError

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QflError(f"{path}: damaged {what} ({type(exc).__name__}); run the study again with --fresh, "
                       "or delete that file to recompute it") from None


def plan_cells(spec: NoiseStudySpec) -> list[dict[str, Any]]:
    """Every cell of the sweep, each with a stable ``id`` (its file name)."""
    targets: list[tuple[str, str, str]] = []
    if spec.expectation is not None:
        targets += [("expectation", c, o) for c in spec.expectation.circuits for o in spec.expectation.observables]
    if spec.model is not None:
        targets.append(("model", spec.model.label, "circuit"))
    cells = []
    for kind, target, obs in targets:
        for scale in spec.scales:
            for mitigation in spec.mitigations:
                for seed in spec.seeds:
                    stem = Path(target).stem + ("" if obs == "circuit" else f"-{obs}")
                    cells.append({"id": f"{kind}-{stem}-s{scale:g}-{mitigation}-seed{seed}", "kind": kind,
                                  "target": target, "observables": obs, "scale": scale,
                                  "mitigation": mitigation, "seed": seed})
    return cells


def _noise(spec: NoiseStudySpec, scale: float) -> Any:
    from qfl_qiskit.specs import BackendNoiseSpec, load_noise_spec

    if spec.noise.parametric:
        return load_noise_spec(spec.noise.parametric).model_copy(update={"scale": scale})
    return BackendNoiseSpec(backend=spec.noise.backend, scale=scale)


def _estimator(spec: NoiseStudySpec, scale: float, mitigation: str, seed: int) -> Any:
    from qfl_qiskit.execution import AerEstimator
    from qfl_qiskit.mitigation import MitigatedEstimator

    aer = AerEstimator(noise=_noise(spec, scale), shots=spec.shots, seed=seed)
    target = _target(spec) if spec.scheduled else None
    return MitigatedEstimator(aer, spec.mitigation(mitigation), target=target, schedule=spec.scheduled)


def _target(spec: NoiseStudySpec) -> Any:
    from qfl_qiskit.transpile import resolve_backend

    key = ("__target__", spec.noise.backend)
    if key not in _CACHE:
        _CACHE[key] = resolve_backend(spec.noise.backend).target
    return _CACHE[key]


def _expectation_cell(spec: NoiseStudySpec, cell: dict[str, Any]) -> dict[str, Any]:
    from qfl_qiskit.circuits import build_circuit
    from qfl_qiskit.execution import ExactEstimator
    from qfl_qiskit.specs import load_circuit_spec
    from qfl_qiskit.transpile import resolve_backend, transpile_sweep

    key = (cell["target"], spec.noise.backend)
    if key not in _CACHE:
        qnn = build_circuit(load_circuit_spec(cell["target"]))
        isa, report = transpile_sweep(qnn.circuit, resolve_backend(spec.noise.backend), seeds=2,
                                      name=spec.noise.backend, strategy=STUDY_TRANSPILE)
        _CACHE[key] = (qnn, isa, report)
    qnn, isa, report = _CACHE[key]
    observables = list(qnn.observables)
    if cell.get("observables", "circuit") == "z":
        from qfl_qiskit.circuits.observables import z_on_each_qubit

        observables = list(z_on_each_qubit(qnn.circuit.num_qubits))
    rng = np.random.default_rng(cell["seed"])
    inputs = rng.uniform(-np.pi, np.pi, (spec.expectation.bindings, qnn.num_inputs))
    values = qnn.parameter_values(inputs, rng.uniform(-np.pi, np.pi, qnn.num_weights))
    from qfl_qiskit.execution import estimate, layout_observables

    exact = estimate(ExactEstimator(), [(qnn.circuit, observables, values)])[0].evs
    order = [list(qnn.circuit.parameters).index(p) for p in isa.parameters]
    t0 = time.perf_counter()
    result = estimate(_estimator(spec, cell["scale"], cell["mitigation"], cell["seed"]),
                      [(isa, layout_observables(isa, observables), values[:, order])])[0]
    err = np.abs(result.evs - exact)
    return {"mae": float(err.mean()), "max_error": float(err.max()), "mean_abs_exact": float(np.abs(exact).mean()),
            "overhead": result.metadata["overhead"], "seconds": time.perf_counter() - t0,
            "two_qubit_count": report.two_qubit_count, "depth": report.depth,
            "calibration_time": report.calibration_time}


def _model_cell(spec: NoiseStudySpec, cell: dict[str, Any], model_file: bytes) -> dict[str, Any]:
    import tempfile

    from qfl_qiskit.data.tensors import TensorData
    from qfl_qiskit.training import load_model, prepare_data
    from qfl_qiskit.training.noisy import evaluate_noisy

    with tempfile.TemporaryDirectory() as tmp:  # the model comes with the cell (object store on Ray)
        (Path(tmp) / "model.pt").write_bytes(model_file)
        model, saved = load_model(Path(tmp) / "model.pt")
    test = prepare_data(saved["spec"]).test
    n = min(spec.model.samples, len(test.labels))
    data = TensorData([x[:n] for x in test.modalities], test.labels[:n], test.presence[:n])
    noise = _noise(spec, cell["scale"])
    out = evaluate_noisy(model, data, num_classes=saved["num_classes"], backend=spec.noise.backend, noise=noise,
                         shots=spec.shots, seed=cell["seed"], transpile_seeds=2,
                         mitigation=spec.mitigation(cell["mitigation"]), schedule=spec.scheduled,
                         strategy=STUDY_TRANSPILE)
    result = {"exact": out["exact"], "noisy": out["noisy"], "samples": n, "seconds": out["seconds"],
              "calibration_time": out["calibration_time"]}
    if spec.model.finetune_epochs:
        result["noisy_finetuned"] = _finetune_under_noise(spec, model, saved, data, cell)
    return result


def _finetune_under_noise(spec: NoiseStudySpec, model: Any, saved: dict[str, Any], test: Any,
                          cell: dict[str, Any]) -> dict[str, float]:
    """Fine-tune the model (already on the noisy estimator) with SPSA through that estimator; test metrics after."""
    import torch.nn.functional as F

    from qfl_qiskit.data.tensors import TensorData
    from qfl_qiskit.training import evaluate, fit, prepare_data

    train = prepare_data(saved["spec"]).train
    m = min(spec.model.finetune_samples, len(train.labels))
    subset = TensorData([x[:m] for x in train.modalities], train.labels[:m], train.presence[:m])
    estimator = model.layers()[0].estimator
    model.use_estimator(estimator, gradient="spsa", transpile=model._transpile)
    fit(model, subset, subset, num_classes=saved["num_classes"], loss_fn=F.cross_entropy,
        lr=spec.model.finetune_lr, epochs=spec.model.finetune_epochs, batch_size=32, patience=0,
        monitor="loss", seed=cell["seed"])
    return evaluate(model, test, num_classes=saved["num_classes"])


def run_cell(spec_json: str, model: bytes | None, cell: dict[str, Any]) -> dict[str, Any]:
    """Compute one cell (in a worker: a local process or a Ray task); returns the cell with its ``result``.

    Args:
        spec_json: The study spec as JSON.
        model: The trained model's ``model.pt`` bytes for model cells (None for a study without a model).
        cell: The cell, as :func:`plan_cells` made it.
    """
    from qfl_qiskit.errors import QflError

    spec = NoiseStudySpec.model_validate_json(spec_json)
    try:
        if cell["kind"] == "expectation":
            result = _expectation_cell(spec, cell)
        else:
            result = _model_cell(spec, cell, model)
    except QflError as exc:  # e.g. REM where scaled readout is fully random: a finding, recorded, not a crash
        result = {"error": str(exc)}
    return {**cell, "result": result}


def barren_plateau(spec: NoiseStudySpec) -> dict[str, Any]:
    """Variance over random weights and inputs of d<O_0>/d theta_0 (and its mean over all weights) for QFL
    circuits, against P and against M: :func:`qfl_qiskit.studies.reproduce.plateaus.gradient_variance`, the
    implementation of ``qfl reproduce plateaus`` (which adds local and global costs, bootstrap intervals and
    training)."""
    from qfl_qiskit.studies.reproduce.plateaus import gradient_variance

    p = spec.plateau

    def variance(m: int, degree: int) -> dict[str, Any]:
        out = gradient_variance(m, degree, features=p.features, draws=p.samples, cost="circuit",
                                seed=1000 * m + degree)
        return {"modalities": m, "degree": degree, "qubits": out["qubits"], "weights": out["weights"],
                "variance": out["variance_first_weight"], "variance_mean_over_weights": out["variance"]}

    return {"vs_degree": [variance(p.fixed_modalities, d) for d in p.degrees],
            "vs_modalities": [variance(m, p.fixed_degree) for m in p.modalities]}


def run_study(spec: NoiseStudySpec, out_dir: Path, *, progress: Callable[[dict[str, Any]], None] | None = None,
              pool: bool = True, fresh: bool = False, ray_address: str | None = None) -> dict[str, Any]:
    """Run (or resume) the study into ``out_dir``; returns the study record (also written to ``study.json``).

    Args:
        spec: The study spec.
        out_dir: Output folder (``cells/`` inside holds one JSON per finished cell).
        progress: Callback with ``{"event": "start", "total", "done"}`` then ``{"event": "cell", "id"}`` or
            ``{"event": "failed", "id", "reason"}`` per cell.
        pool: Run cells in ``spec.workers`` processes (False: in this process, e.g. for tests).
        fresh: Discard the study's earlier outputs first (after the spec and its files are checked).
        ray_address: Run the cells as Ray tasks on this cluster instead (see :mod:`qfl_qiskit.studies.executor`).

    Raises:
        CellsFailed: Some cells failed (their reasons are in ``failed.json``; the finished ones are kept and a
            rerun computes only the rest).
    """
    from qfl_qiskit.errors import QflError
    from qfl_qiskit.studies.executor import Cell, CellsFailed, check_cluster, run_cells

    notify = progress or (lambda e: None)
    check_study(spec)
    check_cluster(ray_address)
    if fresh:
        clear_study(out_dir)
    cells = plan_cells(spec)
    for c in cells:
        c["fingerprint"] = cell_fingerprint(spec, c)
    cells_dir = out_dir / "cells"
    done = set()
    for c in cells:  # a finished cell is reused only if it was computed for exactly this cell of this spec
        path = cells_dir / f"{c['id']}.json"
        if path.exists():
            saved = _read_json(path, what="cell record")
            if not isinstance(saved, dict) or saved.get("fingerprint") != c["fingerprint"] or "result" not in saved:
                raise QflError(f"{out_dir} holds results of a different study spec (cell {c['id']} was computed "
                               "with other settings or files); use another study name, or --fresh to start over")
            done.add(c["id"])
    plateau_path = out_dir / "plateau.json"
    plateau = _stored_plateau(spec, plateau_path)  # all resume state is checked before any work
    model = None
    if spec.model is not None:  # first: a model whose data cannot load leaves no study folder behind
        model = _train_model(spec, out_dir).read_bytes()
    cells_dir.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells if c["id"] not in done]
    notify({"event": "start", "total": len(cells), "done": len(cells) - len(todo)})
    failed: dict[str, str] = {}

    def save(cid: str, result: dict[str, Any]) -> None:
        atomic_write_json(cells_dir / f"{cid}.json", result)

    def fail(cid: str, reason: str) -> None:
        failed[cid] = reason
        atomic_write_json(out_dir / "failed.json", {"failed": failed})

    run_cells(run_cell, [Cell(c["id"], (c,)) for c in todo], shared=(spec.model_dump_json(), model), save=save,
              fail=fail, workers=spec.workers if pool else 1, ray_address=ray_address, files=study_files(spec),
              progress=notify)
    if failed:
        first = next(iter(failed))
        raise CellsFailed(f"{len(failed)} of {len(cells)} cells failed (first: {first}: {failed[first]}); the "
                          f"reasons are in {out_dir / 'failed.json'}; run the same command again to retry them "
                          "(finished cells are kept)")
    (out_dir / "failed.json").unlink(missing_ok=True)
    if spec.plateau is not None and plateau is None:
        plateau = {"fingerprint": spec.plateau.spec_id, **barren_plateau(spec)}
        atomic_write_json(plateau_path, plateau)
    return _finish(spec, out_dir, [_read_json(cells_dir / f"{c['id']}.json", what="cell record") for c in cells],
                   plateau)


def study_files(spec: NoiseStudySpec) -> list[str]:
    """The files the study's cells read (circuit specs, the parametric noise spec, the model's training spec and
    data files): what a Ray cluster's workers are sent."""
    files = list(spec.expectation.circuits) if spec.expectation is not None else []
    if spec.noise.parametric:
        files.append(spec.noise.parametric)
    if spec.model is not None:
        from qfl_qiskit.specs.train import load_train_spec

        files.append(spec.model.train)
        path = load_train_spec(spec.model.train).data.options.get("path")
        if isinstance(path, str):
            files.append(path)
    return files


def _stored_plateau(spec: NoiseStudySpec, path: Path) -> dict[str, Any] | None:
    """The stored plateau diagnostic when it was computed for these settings (None: compute it)."""
    from qfl_qiskit.errors import QflError

    if spec.plateau is None or not path.exists():
        return None
    plateau = _read_json(path, what="plateau record")
    if not isinstance(plateau, dict) or plateau.get("fingerprint") != spec.plateau.spec_id:
        raise QflError(f"{path} was computed for other [plateau] settings; use another study name, or --fresh "
                       "to start over")
    return plateau


def _train_model(spec: NoiseStudySpec, out_dir: Path) -> Path:
    """Train the study's model once (or reuse it); returns its ``model.pt``."""
    from qfl_qiskit.specs.train import load_train_spec
    from qfl_qiskit.training import train_models

    from qfl_qiskit.errors import QflError
    from qfl_qiskit.training import load_model

    train = load_train_spec(spec.model.train)
    path = out_dir / "model" / train.name / spec.model.label / "model.pt"
    if path.exists():
        _, saved = load_model(path)
        if saved["spec"].spec_id != train.spec_id:
            raise QflError(f"{path} was trained from another version of {spec.model.train}; use another study "
                           "name, or --fresh to start over")
        return path
    train_models(train, out_dir=out_dir / "model", resume=True, only=[spec.model.label])
    return path


def _finish(spec: NoiseStudySpec, out_dir: Path, cells: list[dict[str, Any]], plateau: Any) -> dict[str, Any]:
    from qfl_qiskit.results import make_record, save_record
    from qfl_qiskit.results.study_plots import render_noise_study

    data = None
    if spec.model is not None:  # the model's data files (sha256, size, shapes), as its training records them
        from qfl_qiskit.data.files import data_files
        from qfl_qiskit.specs.train import load_train_spec

        data = {"files": data_files(load_train_spec(spec.model.train).data.options)}
    record = make_record("noise_study", specs={"study": spec}, seeds={"seeds": list(spec.seeds)},
                         payload={"cells": cells, "plateau": plateau, "summary": summarize(cells)}, data=data)
    pngs = render_noise_study(record)  # everything rendered before the first file is written
    save_record(record, out_dir / "study.json")
    atomic_write_text(out_dir / "cells.csv", _csv(cells))
    for name, data in pngs.items():
        from qfl_qiskit.atomic import atomic_write_bytes

        atomic_write_bytes(out_dir / f"{name}.png", data)
    return record


def summarize(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean over seeds per (kind, target, scale, mitigation)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for c in cells:
        target = c["target"] + ("" if c.get("observables", "circuit") == "circuit" else f" (obs {c['observables']})")
        groups.setdefault((c["kind"], target, c["scale"], c["mitigation"]), []).append(c)
    out = []
    for (kind, target, scale, mitigation), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        row: dict[str, Any] = {"kind": kind, "target": target, "scale": scale, "mitigation": mitigation,
                               "seeds": len(members)}
        ok = [m["result"] for m in members if "error" not in m["result"]]
        row["errors"] = [m["result"]["error"] for m in members if "error" in m["result"]]
        if kind == "expectation":
            row["mae"] = float(np.mean([r["mae"] for r in ok])) if ok else None
            row["circuits_per_value"] = ok[0]["overhead"]["circuits_per_value"] if ok else None
        else:
            for key in ("accuracy", "macro_auc"):
                row[key] = float(np.mean([r["noisy"][key] for r in ok])) if ok else None
                row[f"exact_{key}"] = float(np.mean([r["exact"][key] for r in ok])) if ok else None
                tuned = [r["noisy_finetuned"][key] for r in ok if "noisy_finetuned" in r]
                if tuned:
                    row[f"finetuned_{key}"] = float(np.mean(tuned))
        out.append(row)
    return out


def _csv(cells: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    fields = ["id", "kind", "target", "observables", "scale", "mitigation", "seed", "mae", "mean_abs_exact", "accuracy",
              "macro_auc", "exact_accuracy", "circuits_per_value", "shots_per_value", "seconds"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for c in cells:
        r = c["result"]
        if "error" in r:
            writer.writerow({"id": c["id"], "kind": c["kind"], "target": c["target"], "scale": c["scale"],
                             "mitigation": c["mitigation"], "seed": c["seed"]})
            continue
        writer.writerow({"id": c["id"], "kind": c["kind"], "target": c["target"],
                         "observables": c.get("observables"), "scale": c["scale"],
                         "mitigation": c["mitigation"], "seed": c["seed"], "mae": r.get("mae"),
                         "mean_abs_exact": r.get("mean_abs_exact"),
                         "accuracy": r.get("noisy", {}).get("accuracy"),
                         "macro_auc": r.get("noisy", {}).get("macro_auc"),
                         "exact_accuracy": r.get("exact", {}).get("accuracy"),
                         "circuits_per_value": r.get("overhead", {}).get("circuits_per_value"),
                         "shots_per_value": r.get("overhead", {}).get("shots_per_value"),
                         "seconds": r.get("seconds")})
    return buf.getvalue()
