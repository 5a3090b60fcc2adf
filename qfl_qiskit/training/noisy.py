"""Re-evaluate a trained quantum fusion model on a noisy Aer simulation of its circuit transpiled for a device."""

from __future__ import annotations

import time
from typing import Any

from qfl_qiskit.data.tensors import TensorData
from qfl_qiskit.errors import SpecError
from qfl_qiskit.training.loop import evaluate


def evaluate_noisy(model: Any, data: TensorData, *, num_classes: int, backend: str | None = None,
                   noise: Any = None, shots: int | None = 4000, seed: int = 0, transpile_seeds: int = 4,
                   batch_size: int = 512, mitigation: Any = None, schedule: bool = False,
                   strategy: str = "all") -> dict[str, Any]:
    """Metrics of a trained quantum model, exact and under noise, on the same data.

    With ``backend``, every circuit the model runs is transpiled for it (best of ``transpile_seeds`` seeds, see
    :func:`qfl_qiskit.transpile.transpile_sweep`) and simulated on its active physical qubits with the backend's
    calibration noise, unless ``noise`` names another model. Without ``backend``, the logical circuit runs under
    ``noise``. The model keeps the noisy estimator afterwards.

    Args:
        model: A trained :class:`~qfl_qiskit.models.QuantumFusionModel`.
        data: Evaluation data (e.g. the test split).
        num_classes: C.
        backend: Backend name for transpilation and default noise.
        noise: A noise spec (``BackendNoiseSpec`` / ``ParametricNoiseSpec``); default: ``backend``'s calibration.
        shots: Shots per Pauli setting (None: exact noisy expectation values).
        seed: Aer's sampling seed.
        transpile_seeds: Transpiler seeds tried per circuit.
        batch_size: Samples per estimator call.
        mitigation: A :class:`~qfl_qiskit.specs.mitigation.MitigationSpec` applied around the noisy estimator.
        schedule: Schedule the transpiled circuits with idle delays (idle-time noise; implied by DDD).
        strategy: Transpilation strategy (:data:`~qfl_qiskit.transpile.report.STRATEGIES`); the reports say which
            candidate was kept.

    Returns:
        ``{"exact": metrics, "noisy": metrics, "backend", "calibration_time", "noise", "shots",
        "transpile": [reports], "estimator_calls", "seconds"}``.

    Raises:
        SpecError: A classical model, or neither backend nor noise given.
    """
    from qfl_qiskit.execution import AerEstimator
    from qfl_qiskit.models.quantum import QuantumFusionModel
    from qfl_qiskit.specs.noise import BackendNoiseSpec

    if not isinstance(model, QuantumFusionModel):
        raise SpecError(f"model '{model.name}' has no quantum circuit; noisy evaluation applies to qfl and mma")
    if backend is None and noise is None:
        raise SpecError("give a backend (its calibration noise is used) or a noise spec, or both")
    from qfl_qiskit.execution import ExactEstimator

    model.use_estimator(ExactEstimator(), gradient="autograd")  # exact, even if an earlier call left a noisy one
    exact = evaluate(model, data, num_classes=num_classes, batch_size=batch_size)
    t0 = time.perf_counter()
    reports: list[dict[str, Any]] = []
    transpile = None
    calibration = None
    target: Any = None
    if backend is not None:
        from qfl_qiskit.transpile import resolve_backend, transpile_sweep
        from qfl_qiskit.transpile.metrics import calibration_time

        target = resolve_backend(backend)
        calibration = calibration_time(target)

        def transpile(circuit: Any) -> Any:
            isa, report = transpile_sweep(circuit, target, seeds=transpile_seeds, name=backend, strategy=strategy)
            reports.append(report.model_dump(mode="json"))
            return isa

        noise = noise if noise is not None else BackendNoiseSpec(backend=backend)
    estimator: Any = AerEstimator(noise=noise, shots=shots, seed=seed)
    if (mitigation is not None and mitigation.techniques) or schedule:
        from qfl_qiskit.mitigation import MitigatedEstimator
        from qfl_qiskit.specs.mitigation import MitigationSpec

        needs_target = schedule or (mitigation is not None and "ddd" in mitigation.techniques)
        if needs_target and backend is None:
            raise SpecError("DDD and idle-time scheduling need a backend (its gate durations); give --backend")
        estimator = MitigatedEstimator(estimator, mitigation or MitigationSpec(),
                                       target=target.target if needs_target else None, schedule=schedule)
    model.use_estimator(estimator, gradient="param_shift", transpile=transpile)
    noisy = evaluate(model, data, num_classes=num_classes, batch_size=batch_size)
    return {
        "exact": exact,
        "noisy": noisy,
        "backend": backend,
        "calibration_time": calibration,
        "noise": noise.model_dump(mode="json") if hasattr(noise, "model_dump") else str(noise),
        "shots": shots,
        "seed": seed,
        "mitigation": mitigation.model_dump(mode="json") if mitigation is not None else None,
        "transpile": reports,
        "transpile_strategy": strategy,
        "estimator_calls": sum(layer.calls for layer in model.layers()),
        "seconds": time.perf_counter() - t0,
    }
