"""Hardware runs of circuits and trained models as Runtime jobs, and one training step as ONE job.

- :func:`job_inputs`: the logical PUBs of a job spec: a circuit spec with seeded (or file) bindings, or a trained
  model's quantum layer(s) on samples of a data split (captured by running the model with a recording estimator).
- :func:`interpret`: what a fetched result means: expectation values, or for a model job the model's head applied
  to the hardware expectation values (replayed through the same forward pass) and the classification metrics.
- :func:`step_pubs` / :func:`step_counts`: one training step of a ``QuantumLayer`` (forward + every parameter-shift
  binding, or SPSA's two) as one PUB list, and its jobs / circuits / shots against qiskit-machine-learning's
  ``EstimatorQNN`` with its default ``ParamShiftEstimatorGradient``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from qfl_qiskit.errors import DataError, SpecError
from qfl_qiskit.execution.base import Estimate, QflEstimator, Task
from qfl_qiskit.execution.exact import ExactEstimator
from qfl_qiskit.runtime.jobs import JobInputs
from qfl_qiskit.qnn import QuantumLayer


class _Recording(QflEstimator):
    """An exact estimator that keeps every task it is given (the model's quantum evaluations, in order)."""

    name = "recording"

    def __init__(self) -> None:
        self.pubs: list[tuple] = []
        self._exact = ExactEstimator()

    def _estimate(self, tasks: list[Task]) -> list[Estimate]:
        self.pubs.extend((t.circuit, t.observables, t.values) for t in tasks)
        return self._exact._estimate(tasks)


class _Replay(QflEstimator):
    """An estimator that answers each call with the next stored results (hardware values, same order)."""

    name = "replay"

    def __init__(self, results: list[Estimate]) -> None:
        self._results = list(results)

    def _estimate(self, tasks: list[Task]) -> list[Estimate]:
        out, self._results = self._results[: len(tasks)], self._results[len(tasks):]
        return out


def _read_values(path: Path, p: int) -> np.ndarray:
    """A job's ``values`` file: a ``.npy`` array of finite numbers, shape (B, p) with B <= MAX_BINDINGS."""
    from qfl_qiskit.limits import MAX_BINDINGS

    if path.suffix != ".npy":
        raise SpecError(f"{path}: values must be a .npy file of shape (B, {p}) (np.save), not '{path.suffix}'")
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # pickled object arrays, text or truncated files
        raise SpecError(f"{path}: not a numeric .npy array ({' '.join(str(exc).split())[:120]}); save the values "
                        "with np.save as floats") from None
    if values.ndim != 2 or values.shape[1] != p:
        raise SpecError(f"{path}: values of shape {values.shape}; the circuit needs (B, {p})")
    if values.shape[0] > MAX_BINDINGS or values.shape[0] < 1:
        raise SpecError(f"{path}: {values.shape[0]} bindings; give 1 to {MAX_BINDINGS:,}")
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise SpecError(f"{path}: values of dtype {values.dtype}; they must be real numbers")
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise SpecError(f"{path}: row {row} holds NaN or infinity; every value must be a finite angle")
    return values


def job_inputs(spec: Any) -> JobInputs:
    """The logical PUBs of a job spec (see module docstring).

    Raises:
        SpecError: A missing circuit spec or values file, or values of the wrong shape.
        DataError: A model folder without ``model.pt``.
    """
    if spec.circuit is not None:
        return _circuit_inputs(spec)
    model, saved, data = _model_and_samples(spec.model)
    rec = _Recording()
    _forward(model, rec, data)
    mspec = saved["spec"]
    info = {"kind": "model", "folder": spec.model.folder, "split": spec.model.split, "samples": len(data.labels),
            "label": saved["label"], "train_spec_id": mspec.spec_id,
            "data_files": (saved.get("data") or {}).get("files", [])}  # as trained on (checked unchanged)
    return JobInputs([(c, tuple(o), np.asarray(v)) for c, o, v in rec.pubs], {"job": spec, "train": mspec}, info)


def _circuit_inputs(spec: Any) -> JobInputs:
    from qfl_qiskit.circuits import build_circuit
    from qfl_qiskit.specs.circuit import load_circuit_spec

    cspec = load_circuit_spec(spec.circuit.spec)
    qnn = build_circuit(cspec)
    p = qnn.circuit.num_parameters
    if spec.circuit.values:
        path = Path(spec.circuit.values)
        if not path.is_file():
            raise SpecError(f"values file not found: {path}")
        values = _read_values(path, p)
    else:
        rng = np.random.default_rng(spec.circuit.seed)
        values = rng.uniform(-np.pi, np.pi, (spec.circuit.bindings, p))
    info = {"kind": "circuit", "circuit_spec": spec.circuit.spec, "bindings": int(values.shape[0]),
            "values_source": spec.circuit.values or f"uniform(-pi, pi), seed {spec.circuit.seed}"}
    return JobInputs([(qnn.circuit, tuple(qnn.observables), values)], {"job": spec, "circuit": cspec}, info)


def _model_and_samples(minput: Any) -> tuple[torch.nn.Module, dict[str, Any], Any]:
    from qfl_qiskit.data.tensors import TensorData
    from qfl_qiskit.training.experiment import load_model, prepare_data

    model, saved = load_model(Path(minput.folder) / "model.pt")
    if not hasattr(model, "layers"):
        raise DataError(f"{minput.folder}: model '{saved['label']}' has no quantum layer to run on hardware")
    test = prepare_data(saved["spec"]).test
    n = min(minput.samples, len(test.labels))
    data = TensorData([x[:n] for x in test.modalities], test.labels[:n], test.presence[:n])
    return model, saved, data


def _forward(model: torch.nn.Module, estimator: Any, data: Any) -> torch.Tensor:
    model.use_estimator(estimator, gradient="param_shift")
    model.eval()
    with torch.no_grad():
        return model(data.modalities, data.presence)


def interpret(record: dict[str, Any], results: list[Estimate]) -> dict[str, Any]:
    """Expectation values per PUB; for a model job also predictions and metrics on the samples."""
    out: dict[str, Any] = {"pubs": [{"evs": r.evs.tolist(), "stds": r.stds.tolist()} for r in results]}
    if record.get("inputs", {}).get("kind") != "model":
        return out
    from qfl_qiskit.specs.job import ModelInput
    from qfl_qiskit.training.metrics import classification_metrics

    info = record["inputs"]
    model, saved, data = _model_and_samples(ModelInput(folder=info["folder"], samples=info["samples"]))
    logits = _forward(model, _Replay(results), data)
    probs = torch.softmax(logits.double(), dim=-1).numpy()
    exact = torch.softmax(_forward(model, ExactEstimator(), data).double(), dim=-1).numpy()
    labels = data.labels.numpy()
    out["metrics"] = classification_metrics(labels, probs, num_classes=saved["num_classes"])
    out["exact_metrics"] = classification_metrics(labels, exact, num_classes=saved["num_classes"])
    out["predictions"] = probs.argmax(axis=1).tolist()
    return out


def step_pubs(layer: QuantumLayer, inputs: torch.Tensor) -> list[tuple]:
    """The PUBs of one training step of ``layer`` on a batch: forward + every shifted binding (or SPSA's +/-).

    This is what ``layer`` itself sends in its one estimator call per forward; submitted as one job.
    """
    values = layer.circuit_values(inputs).detach().to(torch.float64).numpy()
    pubs: list[tuple] = [(layer.circuit, layer.observables, values)]
    if layer.gradient == "spsa":
        delta = np.random.default_rng(0).choice([-1.0, 1.0], size=values.shape[-1])
        pubs.append((layer.circuit, layer.observables,
                     np.stack([values + layer.spsa_epsilon * delta, values - layer.spsa_epsilon * delta])))
    else:
        plan = layer._plan_for()
        pubs.append((plan.circuit, layer.observables, plan.shifted(values)))
    return pubs


def step_job_inputs(layer: QuantumLayer, inputs: torch.Tensor, spec: Any) -> JobInputs:
    """:func:`step_pubs` as job inputs: ``jobs.submit(spec, step_job_inputs(layer, x, spec))`` is ONE job.

    Client-side ZNE (``resilience = {zne_mitigation = true, ...}`` in the job spec) stays inside that one job: the
    executor Estimator folds and extrapolates the PUBs itself.
    """
    from qfl_qiskit.specs.circuit import MMASpec, QFLSpec

    pubs = step_pubs(layer, inputs)
    cspec = layer.qnn.metadata.get("spec")
    specs: dict[str, Any] = {"job": spec}
    if isinstance(cspec, (QFLSpec, MMASpec)):
        specs["circuit"] = cspec
    info = {"kind": "training_step", "gradient": layer.gradient, "batch": int(inputs.shape[0]),
            "circuit_spec_id": layer.qnn.metadata.get("spec_id"),
            "shift_rows": int(np.asarray(pubs[1][2]).shape[0])}
    return JobInputs([(c, tuple(o), np.asarray(v)) for c, o, v in pubs], specs, info)


def step_counts(layer: QuantumLayer, batch: int, *, shots: int) -> dict[str, dict[str, int]]:
    """Jobs, PUBs, circuit executions and shots of one training step: ours vs qiskit-machine-learning's EstimatorQNN.

    Ours (:func:`step_pubs`): ONE job of 2 PUBs; B * (1 + 2G) bindings (G parameterized gates of the shift plan,
    inputs included; SPSA: B * 3), the K observables of a binding measured together in their qubit-wise
    commuting bases. EstimatorQNN 0.9.1 with its default ``ParamShiftEstimatorGradient`` (measured by
    ``tests/runtime/test_jobs.py`` with a counting V2 estimator): TWO jobs per step: the forward as one run
    of K PUBs holding B*K bindings, the weight gradient as one run of B*K*2*p_w single-binding PUBs (one per
    sample, observable and shift); each PUB has one observable, so one basis per execution.

    Args:
        layer: The quantum layer.
        batch: Samples B in the step.
        shots: Shots per binding and measurement basis.

    Returns:
        ``{"ours": {...}, "estimator_qnn": {...}}`` with ``jobs``, ``pubs``, ``executions`` (binding x basis)
        and ``shots``.
    """
    from qiskit.quantum_info import SparsePauliOp

    k, p_w = layer.num_outputs, layer.qnn.num_weights
    groups = len(SparsePauliOp.sum(list(layer.observables)).paulis.group_qubit_wise_commuting())
    bindings = batch * 3 if layer.gradient == "spsa" else batch * (1 + 2 * layer._plan_for().num_gates)
    qnn_exec = batch * k * (1 + 2 * p_w)
    return {
        "ours": {"jobs": 1, "pubs": 2, "executions": bindings * groups, "shots": bindings * groups * shots},
        "estimator_qnn": {"jobs": 2, "pubs": k + batch * k * 2 * p_w, "executions": qnn_exec,
                          "shots": qnn_exec * shots},
    }
