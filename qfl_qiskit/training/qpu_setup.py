"""Setting up a device run: Runtime settings from a training spec, the starting weights, the ISA circuits
(transpiled once, fingerprinted for resume), the PEA layer-noise model, and what is refused before the data loads."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from qfl_qiskit.atomic import atomic_write_bytes
from qfl_qiskit.errors import SpecError
from qfl_qiskit.runtime import jobs
from qfl_qiskit.runtime import records as store
from qfl_qiskit.runtime import service as rt
from qfl_qiskit.training.loop import CheckpointError


def job_settings(execution: Any, backend: Any, *, seed: int) -> jobs.JobSettings:
    """The Runtime settings of a training spec's ``[execution]``: resilience level 0 with nothing on unless
    ``runtime_mitigation`` asks (mapped by ``to_runtime_options``), so the record says exactly what ran."""
    from qfl_qiskit.mitigation import to_runtime_options

    options = (to_runtime_options(execution.runtime_mitigation) if execution.runtime_mitigation is not None
               else {"resilience_level": 0})
    return jobs.JobSettings(backend=backend, mode=execution.mode, max_time=execution.max_time,
                            precision=execution.target_precision, shots=execution.shots,
                            seed=seed if rt.is_local(backend) else None, options=options)


def init_weights(model: Any, model_spec: Any, source: str, *, dims: Any, num_classes: int) -> dict[str, Any]:
    """Load the weights of a trained model (a run folder or a model folder) into ``model``.

    Raises:
        SpecError: No model with this label there, or one of another architecture or data shape.
    """
    from qfl_qiskit.training.experiment import load_model

    root = Path(source)
    candidates = [root / "model.pt", root / model_spec.display / "model.pt"]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise SpecError(f"init_from {source}: no model.pt there nor in {root / model_spec.display}; give a run "
                        "folder written by `qfl train` (results/<run>) or its model folder")
    trained, saved = load_model(path)
    theirs = {k: v for k, v in saved["model_spec"].items() if k != "label"}
    ours = {k: v for k, v in model_spec.model_dump(mode="json").items() if k != "label"}
    diffs = [f"{k} {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in sorted(set(theirs) | set(ours))
             if theirs.get(k) != ours.get(k)]
    if list(saved["dims"]) != list(dims):
        diffs.append(f"modality dims {list(saved['dims'])} there, {list(dims)} here")
    if saved["num_classes"] != num_classes:
        diffs.append(f"{saved['num_classes']} classes there, {num_classes} here")
    if diffs:
        raise SpecError(f"init_from {path}: that model is not the one this spec trains ({'; '.join(diffs[:3])}); "
                        "use the same [model] settings and data")
    model.load_state_dict(trained.state_dict())
    return {"path": str(path), "sha256": store.sha256(path.read_bytes()), "label": saved["label"],
            "train_spec_id": saved["spec"].spec_id}


class IsaCache:
    """Each logical circuit transpiled once (best ESP of the seed sweep); reports and QPY kept for the record."""

    def __init__(self, backend: Any, *, seeds: int, name: str) -> None:
        self.backend, self.seeds, self.name = backend, seeds, name
        self._cache: dict[int, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.circuits: list[Any] = []
        self.written = 0  # circuits in the last isa.qpy written (write_isa skips an unchanged set)

    def __call__(self, circuit: Any) -> Any:
        from qfl_qiskit.transpile import transpile_sweep

        if id(circuit) not in self._cache:
            isa, report = transpile_sweep(circuit, self.backend, seeds=self.seeds, name=self.name)
            self._cache[id(circuit)] = isa
            self.circuits.append(isa)
            self.entries.append({"circuit": circuit.name, "fingerprint": isa_fingerprint(isa),
                                 "report": report.model_dump(mode="json")})
        return self._cache[id(circuit)]


def isa_fingerprint(isa: Any) -> str:
    """A hash of an ISA circuit by its gates, parameter names and layout (QPY bytes hold random parameter ids)."""
    from qiskit import qasm3

    layout = isa.layout.final_index_layout() if isa.layout is not None else None
    return hashlib.sha256(f"{qasm3.dumps(isa)}|{layout}".encode()).hexdigest()[:16]


def check_isa(recorded: list[dict[str, Any]], now: list[dict[str, Any]]) -> None:
    for old, new in zip(recorded, now):
        if old["fingerprint"] != new["fingerprint"]:
            raise CheckpointError(f"circuit '{new['circuit']}' transpiles differently than when the run started "
                                  "(another qiskit version?); resume with the versions in the record, or train "
                                  "again without --resume")


def write_isa(folder: Path, isa: IsaCache) -> None:
    """Write the ISA circuits as ``isa.qpy`` (when a circuit was added since the last write: MMA transpiles a
    circuit per presence pattern when first seen) and name the file and its hash in every entry."""
    from qiskit import qpy

    if isa.written == len(isa.circuits) and (folder / "isa.qpy").is_file():
        return
    buf = io.BytesIO()
    qpy.dump(isa.circuits, buf)
    atomic_write_bytes(folder / "isa.qpy", buf.getvalue())
    digest = store.sha256(buf.getvalue())
    for entry in isa.entries:
        entry["qpy"], entry["qpy_sha256"] = "isa.qpy", digest
    isa.written = len(isa.circuits)


def check_device_model(model_spec: Any) -> None:
    """Refuse a classical model for a device run (only qfl and mma models have circuits).

    Raises:
        SpecError: A classical model.
    """
    if model_spec.name not in ("qfl", "mma"):
        raise SpecError(f"model '{model_spec.display}' is classical: estimator 'runtime' trains qfl and mma models "
                        "only; train classical ones in a spec with the exact estimator")


def precheck(spec: Any, *, only: list[str] | None = None) -> None:
    """What a device run can be refused for before its data is loaded: classical models, a missing ``init_from``,
    an unknown backend.

    Raises:
        SpecError: A classical model or a missing ``init_from`` folder.
        BackendError: The backend cannot be resolved.
    """
    from qfl_qiskit.transpile import resolve_backend

    for m in spec.models:
        if not only or m.display in only:
            check_device_model(m)
    source = spec.execution.init_from
    if source and not Path(source).is_dir():
        raise SpecError(f"init_from {source}: no such folder; train it first (e.g. `make quickstart` writes "
                        "results/quickstart) or give a run folder written by `qfl train`")
    resolve_backend(spec.execution.backend)


LEARNING_FILE = "noise_learning.json"


def needs_layer_noise(resolved: dict[str, Any]) -> bool:
    """Whether the resolved Runtime options amplify learned noise (PEA) or cancel it (PEC)."""
    res = resolved.get("resilience") or {}
    return bool(res.get("pec_mitigation")) or bool(res.get("zne_mitigation") and
                                                  (res.get("zne") or {}).get("amplifier") == "pea")


def learned_layer_noise(folder: Path, settings: Any, v2_pubs: list[tuple], mode_obj: Any,
                        runner: Any) -> dict[str, Any]:
    """The run's layer noise model for PEA: learned once by Runtime's NoiseLearnerV3 in its own job (id in
    ``noise_learning.json`` before the wait), then reused by every step; after a crash a finished model is read
    back, a real learning job is fetched by id (not submitted again), a local one is learned again.

    Raises:
        RunInterrupted: Ctrl-C while the learning job runs.
    """
    from qfl_qiskit.atomic import atomic_write_json
    from qfl_qiskit.runtime import records as store
    from qfl_qiskit.training.qpu_jobs import RunInterrupted

    path = folder / LEARNING_FILE
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if info is not None and info.get("status") == "DONE":
        return info
    if info is not None and info.get("job_id") and not settings.local:
        job = runner.service().job(info["job_id"])
    else:
        layers, job = rt.learn_layer_noise(settings.estimator(mode_obj), v2_pubs, mode_obj)
        info = {"job_id": job.job_id(), "status": "SUBMITTED", "backend": settings.backend.name,
                "layers": len(layers), "local": settings.local, "submitted": store.now()}
        atomic_write_json(path, info)
    try:
        result = job.result()
    except KeyboardInterrupt:
        raise RunInterrupted(f"interrupted while the noise-learning job {info['job_id']} runs; `--resume` "
                             f"{'learns again (local)' if settings.local else 'fetches it by id'}") from None
    info = {**info, "status": "DONE", "finished": store.now(),
            "maps": rt.maps_to_json(result.to_pauli_lindblad_maps()),
            "qpu_seconds_reported": rt.reported_seconds(job, local=settings.local)}
    atomic_write_json(path, info)
    return info
