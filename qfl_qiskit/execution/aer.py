"""Aer estimator: noiseless or noisy expectation values from qiskit-aer, on CPU or GPU, exact or with shots.

What a run does with each PUB:

1. An ISA circuit (one with a ``layout``) is compacted to its active physical qubits (:mod:`.compact`), cached per
   circuit object, so a 156-qubit backend costs what the few qubits it uses cost. Its observables are laid out
   (on the physical qubits, Qiskit's convention) and restricted to the simulated qubits here. A circuit without
   layout runs as it is.
2. The noise model is built for exactly the simulated qubits: a :class:`BackendNoiseSpec` gives the calibration
   noise of the kept physical qubits (remapped, cached per qubit set by :func:`qfl_qiskit.noise.noise_model`);
   a :class:`ParametricNoiseSpec` is the same on every qubit. A ready ``NoiseModel`` object is used as given,
   which works for circuits that need no remapping or for models without qubit-specific errors.
3. Exact mode (``shots=None``): ``qiskit_aer.primitives.EstimatorV2`` with precision 0. Its values are exact
   expectation values of the simulated state: noiseless with a statevector, noisy only with a density matrix
   (the statevector and MPS methods average random noise trajectories, so they are refused for noisy exact
   values). Aer's expectation snapshots skip readout errors, so the model's readout errors are applied exactly
   to the observables (:func:`.aer_measure.apply_readout`). Standard errors are zeros.
4. Shot mode (``shots=N``, or a PUB / ``run`` precision p > 0, which takes ceil(1/p^2) shots): honest sampling, not Aer's precision option (Aer's EstimatorV2 only adds Gaussian
   noise N(0, precision) to exact values, ignoring the actual measurement statistics and readout errors).
   Each PUB is measured in qubit-wise commuting Pauli settings with ``qiskit_aer.primitives.SamplerV2``, N shots
   per setting; values are sample means and stds their standard errors (:mod:`.aer_measure`). With a noise
   model and the statevector method each shot is one noise trajectory.

All PUBs that share a noise model and method go to the Aer primitive in one ``.run([...])`` call; PUBs on
different active-qubit sets need different noise models and so make one call each.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.aer_measure import (
    apply_readout,
    estimate,
    measurement_circuit,
    measurement_plan,
    readout_factors,
)
from qfl_qiskit.execution.base import Estimate, QflEstimator, Task, from_v2, v2_observables
from qfl_qiskit.execution.compact import CircuitCache, CompactCircuit, compact_circuit
from qfl_qiskit.noise import noise_model
from qfl_qiskit.specs.noise import BackendNoiseSpec, ParametricNoiseSpec

Method = Literal["automatic", "statevector", "density_matrix", "matrix_product_state"]
Device = Literal["CPU", "GPU", "auto"]
_METHODS = ("automatic", "statevector", "density_matrix", "matrix_product_state")
#: Widest circuit for which ``method="automatic"`` simulates noise with a density matrix (16 * 4**12 B = 268 MB).
DENSITY_MATRIX_MAX_QUBITS = 12
_gpu_warned = False


@cache
def available_devices() -> tuple[str, ...]:
    """Devices the installed Aer can simulate on (``("CPU", "GPU")`` with qiskit-aer-gpu and a CUDA GPU)."""
    from qiskit_aer import AerSimulator

    return tuple(AerSimulator().available_devices())


def resolve_device(device: str) -> str:
    """"CPU" or "GPU": "auto" takes the GPU where there is one; "GPU" without one warns once and gives "CPU"."""
    global _gpu_warned
    if device not in ("CPU", "GPU", "auto"):
        raise ExecutionError(f"unknown device '{device}'; use CPU, GPU or auto")
    if device == "CPU":
        return "CPU"
    if "GPU" in available_devices():
        return "GPU"
    if device == "GPU" and not _gpu_warned:
        _gpu_warned = True
        warnings.warn("AerEstimator: no GPU simulator here (needs qiskit-aer-gpu and a CUDA GPU); running on CPU",
                      RuntimeWarning, stacklevel=3)
    return "CPU"


@dataclass
class _Plan:
    """One PUB prepared for Aer."""

    task: Task
    circuit: QuantumCircuit
    observables: list[SparsePauliOp]
    model: Any
    method: str
    metadata: dict[str, Any] = field(default_factory=dict)
    zero: list[bool] = field(default_factory=list)  # observables that are exactly 0 (fully random readout)
    shots: int | None = None


_NO_RUNTIME_BIND = frozenset({"u", "u1", "u2", "u3"})


def _runtime_binding_ok(circuit: QuantumCircuit) -> bool:
    """Whether Aer's runtime parameter binding can run ``circuit`` (no parameterized u-family gate)."""
    return not any(inst.operation.name in _NO_RUNTIME_BIND and any(
        getattr(p, "parameters", None) for p in inst.operation.params) for inst in circuit.data)


class AerEstimator(QflEstimator):
    """Expectation values from qiskit-aer (see the module docstring for what happens to each PUB).

    Args:
        noise: A noise spec (built per simulated qubit set, cached), an Aer ``NoiseModel``, or None (noiseless).
            With a :class:`BackendNoiseSpec`, pass ISA circuits (transpiled for that backend); a circuit without
            layout is taken as already on the backend's physical qubits 0..n-1 and must use its gates only.
        method: "automatic" (statevector when noiseless; density matrix when noisy up to
            ``DENSITY_MATRIX_MAX_QUBITS`` simulated qubits; statevector noise trajectories above, shots only),
            or an Aer method. With noise and ``shots=None`` only "density_matrix" (or "automatic") is exact.
        shots: None for exact values; else shots per measurement setting (>= 2, for a standard error).
        seed: Simulator seed (shot sampling and noise trajectories) for reproducible values.
        device: "auto" (GPU when qiskit-aer-gpu finds one, else CPU), "CPU" or "GPU" (falls back to CPU with
            one warning per process when there is no GPU). The MPS method always runs on CPU.

    Raises:
        ExecutionError: Unknown method or device, or shots below 2.
    """

    name = "aer"

    def __init__(
        self,
        *,
        noise: BackendNoiseSpec | ParametricNoiseSpec | Any | None = None,
        method: Method = "automatic",
        shots: int | None = None,
        seed: int | None = None,
        device: Device = "auto",
    ) -> None:
        if method not in _METHODS:
            raise ExecutionError(f"unknown method '{method}'; use one of {', '.join(_METHODS)}")
        if shots is not None and (isinstance(shots, bool) or not isinstance(shots, (int, np.integer))
                                  or shots < 2):
            raise ExecutionError(f"shots must be an integer >= 2 (got {shots!r}), or None for exact values")
        self.noise = noise
        self.method = method
        self.shots = None if shots is None else int(shots)
        self.seed = seed
        self.requested_device = device
        self.device = resolve_device(device)
        self._compacted = CircuitCache()
        self._measured = CircuitCache()
        self._readout: dict[tuple[int, int], tuple[Any, list[tuple[float, float]] | None]] = {}

    def _estimate(self, tasks: list[Task]) -> list[Estimate]:
        """Evaluate every task; evs and stds of shape (..., K) for values (..., p) and K observables.

        Raises:
            ExecutionError: A circuit the backend noise cannot describe, a noisy exact run with a trajectory method,
                or an Aer failure (e.g. out of memory).
            NoiseError: The noise spec cannot be built for the circuit's qubits.
        """
        plans = [self._plan(t) for t in tasks]
        groups: dict[tuple[int, str, int | None], list[int]] = {}
        for i, plan in enumerate(plans):
            groups.setdefault((id(plan.model), plan.method, plan.shots), []).append(i)
        out: list[Estimate | None] = [None] * len(plans)
        for (_, _, shots), members in groups.items():
            batch = [plans[i] for i in members]
            results = self._run_exact(batch) if shots is None else self._run_shots(batch, shots)
            for i, result in zip(members, results):
                out[i] = result
        return out  # type: ignore[return-value]

    def readout_factors(self, circuit: QuantumCircuit) -> list[tuple[float, float]] | None:
        """Per qubit of ``circuit`` (its physical qubits for an ISA circuit, the index of laid-out observables),
        ``(a, c)`` of its read-out error model: a measured Z has expectation ``a + c * <Z>`` (a = p10 - p01,
        c = 1 - p01 - p10); qubits the circuit never touches get (0, 1). None when the noise has no readout
        errors. What readout-error mitigation inverts (:mod:`qfl_qiskit.mitigation`).

        Raises:
            ExecutionError: Correlated multi-qubit readout errors (no per-qubit model exists).
        """
        compact = self._compacted.get(circuit, compact_circuit)
        model = self._model(compact, circuit)
        if model is None:
            return None
        factors = self._readout_factors(model, compact.circuit.num_qubits)
        if factors is None:
            return None
        if compact.physical is None:
            return list(factors)
        out = [(0.0, 1.0)] * circuit.num_qubits
        for i, phys in enumerate(compact.physical):
            out[phys] = factors[i]
        return out

    def describe(self) -> dict[str, Any]:
        """Settings for records."""
        return {"estimator": self.name, "method": self.method, "device": self.device, "shots": self.shots,
                "seed": self.seed, "noise": _describe_noise(self.noise)}

    # -- preparation ---------------------------------------------------------------------------------------------

    def _plan(self, task: Task) -> _Plan:
        compact = self._compacted.get(task.circuit, compact_circuit)
        width = compact.circuit.num_qubits
        model = self._model(compact, task.circuit)
        shots = self.shots
        if task.precision:  # a target standard error: sample, with the shots Runtime would take for it
            shots = max(2, int(np.ceil(1.0 / task.precision**2)))
        method = self._method(width, model, shots)
        ops = compact.restrict(task.observables)
        readout = "none"
        if model is not None:
            if shots is None:
                factors = self._readout_factors(model, width)
                if factors is not None:
                    ops = [apply_readout(op, factors) for op in ops]
                    readout = "exact (observable transform)"
            else:
                readout = "sampled"
        # Qiskit's observable containers refuse an all-zero observable: simulate the identity, report 0 (_zeroed)
        zero = [not np.any(op.coeffs) for op in ops]
        ops = [SparsePauliOp("I" * width) if z else op for op, z in zip(ops, zero)]
        device = "CPU" if method == "matrix_product_state" else self.device
        meta = {"estimator": self.name, "method": method, "device": device, "shots": shots,
                "noise": _describe_noise(self.noise), "readout_error": readout,
                "physical_qubits": None if compact.physical is None else list(compact.physical),
                "simulated_qubits": width}
        return _Plan(task, compact.circuit, ops, model, method, meta, zero, shots)

    def _model(self, compact: CompactCircuit, original: QuantumCircuit) -> Any:
        noise = self.noise
        if noise is None:
            return None
        width = compact.circuit.num_qubits
        if isinstance(noise, (BackendNoiseSpec, ParametricNoiseSpec)):
            qubits = compact.physical if compact.physical is not None else tuple(range(width))
            model = noise_model(noise, qubits=qubits)
            if model is not None and isinstance(noise, BackendNoiseSpec) and compact.physical is None:
                _check_basis(original, model, noise.backend)
            return model
        if compact.circuit is not original and getattr(noise, "noise_qubits", None):
            raise ExecutionError(f"circuit '{original.name}' is compacted to its {width} active qubits, which a "
                                 "ready NoiseModel with qubit-specific errors cannot follow; pass the noise spec "
                                 "(BackendNoiseSpec) instead, so the model is built for those qubits")
        return noise

    def _method(self, width: int, model: Any, shots: int | None) -> str:
        if self.method == "automatic":
            if model is None:
                return "statevector"
            if width <= DENSITY_MATRIX_MAX_QUBITS:
                return "density_matrix"
            if shots is None:
                raise ExecutionError(
                    f"exact noisy values need a density matrix, too large at {width} qubits "
                    f"(automatic stops at {DENSITY_MATRIX_MAX_QUBITS}); give shots, or method='density_matrix'")
            return "statevector"
        if model is not None and shots is None and self.method != "density_matrix":
            raise ExecutionError(f"method '{self.method}' samples noise trajectories and gives no exact noisy "
                                 "values; use method='density_matrix' or 'automatic', or give shots")
        return self.method

    def _readout_factors(self, model: Any, width: int) -> list[tuple[float, float]] | None:
        key = (id(model), width)
        cached = self._readout.get(key)
        if cached is None or cached[0] is not model:  # the model is kept in the entry, so its id stays unique
            cached = (model, readout_factors(model, width))
            self._readout[key] = cached
        return cached[1]

    # -- running -------------------------------------------------------------------------------------------------

    def _options(self, batch: list[_Plan]) -> dict[str, Any]:
        plan = batch[0]  # a batch shares its noise model, method and device
        # runtime parameter binding: Aer binds every parameter set inside one compiled experiment instead of one
        # experiment per binding; about 3x faster for the thousands of bindings of a batched parameter shift
        # ... except for parameterized u/u1/u2/u3 gates (old IBM bases: fake_burlington, fake_essex), which Aer
        # 0.18 refuses at runtime binding ("instruction param position out of range"): bound per experiment there
        backend = {"method": plan.method, "device": plan.metadata["device"],
                   "runtime_parameter_bind_enable": all(_runtime_binding_ok(p.circuit) for p in batch)}
        if plan.model is not None:
            backend["noise_model"] = plan.model
        return backend

    def _run_exact(self, batch: list[_Plan]) -> list[Estimate]:
        from qiskit_aer.primitives import EstimatorV2

        run_options = {} if self.seed is None else {"seed_simulator": self.seed}
        estimator = EstimatorV2(options={"backend_options": self._options(batch), "run_options": run_options,
                                         "default_precision": 0.0})
        v2_pubs = [(p.circuit, v2_observables(p.observables, len(p.task.batch_shape)), p.task.values) for p in batch]
        results = _aer_call(lambda: estimator.run(v2_pubs).result())
        out = []
        for plan, res in zip(batch, results):
            evs = _zeroed(from_v2(res.data.evs), plan.zero)
            out.append(Estimate(evs, np.zeros_like(evs), dict(plan.metadata)))
        return out

    def _run_shots(self, batch: list[_Plan], shots: int) -> list[Estimate]:
        from qiskit_aer.primitives import SamplerV2

        sampler = SamplerV2(default_shots=shots, seed=self.seed,
                            options={"backend_options": self._options(batch)})
        plans, sampler_pubs = [], []
        for plan in batch:
            mplan = measurement_plan(plan.observables)
            plans.append(mplan)
            settings = self._measured.get(plan.circuit, lambda _c: {})
            for group in mplan.groups:
                key = (group.qubits, group.bases)
                if key not in settings:
                    settings[key] = measurement_circuit(plan.circuit, group)
                values = plan.task.values
                sampler_pubs.append((settings[key], values) if plan.circuit.num_parameters else (settings[key],))
        results = _aer_call(lambda: sampler.run(sampler_pubs).result()) if sampler_pubs else []
        out, start = [], 0
        for plan, mplan in zip(batch, plans):
            stop = start + len(mplan.groups)
            samples = [getattr(res.data, "qfl_meas") for res in results[start:stop]]
            start = stop
            evs, stds = estimate(mplan, samples)
            evs, stds = _zeroed(evs, plan.zero), _zeroed(stds, plan.zero)
            shape = plan.task.batch_shape + (len(plan.observables),)
            out.append(Estimate(np.broadcast_to(evs, shape).copy(), np.broadcast_to(stds, shape).copy(),
                                 {**plan.metadata, "measurement_settings": len(mplan.groups)}))
        return out


def _zeroed(values: np.ndarray, zero: list[bool]) -> np.ndarray:
    if any(zero):
        values = np.array(values, dtype=float)
        values[..., np.asarray(zero)] = 0.0
    return values


def _check_basis(circuit: QuantumCircuit, model: Any, backend: str) -> None:
    """Backend noise only sits on the backend's gates: a logical circuit would run almost noiseless."""
    used = {inst.operation.name for inst in circuit.data} - {"barrier"}
    foreign = sorted(used - set(model.basis_gates))
    if foreign:
        raise ExecutionError(f"circuit '{circuit.name}' uses gates {foreign} that {backend} noise does not cover; "
                             f"transpile it for {backend} first (qfl_qiskit.transpile.transpile_sweep) and pass the "
                             "ISA circuit with laid-out observables (layout_observables)")


def _aer_call(fn: Any) -> Any:
    from qiskit.exceptions import QiskitError
    from qiskit_aer import AerError

    try:
        return fn()
    except (AerError, QiskitError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        hint = ("; simulate fewer qubits (pass an ISA circuit to compact it), a smaller batch, or "
                "method='matrix_product_state'" if "memory" in text.lower() else "")
        raise ExecutionError(f"Aer simulation failed: {text}{hint}") from None


def _describe_noise(noise: Any) -> Any:
    if noise is None:
        return None
    if hasattr(noise, "spec_id"):
        return {"spec_id": noise.spec_id, **noise.model_dump(mode="json")}
    return {"noise_model": type(noise).__name__, "basis_gates": list(getattr(noise, "basis_gates", []))}
