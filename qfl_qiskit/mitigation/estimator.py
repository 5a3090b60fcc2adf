"""``MitigatedEstimator``: ZNE, readout-error mitigation and their combination around any noisy estimator.

A ``BaseEstimatorV2`` itself (PUBs in, a job out), wrapping any V2 estimator that reports its noise where a
technique needs it (REM: ``readout_factors``). One call of the wrapper is ONE call of the wrapped estimator,
whatever the batch: every PUB is
expanded into one PUB per ZNE scale factor (the circuit folded once per factor, see :mod:`.folding`; all bindings,
including every parameter-shift binding of a training step, travel inside those PUBs), results are combined with
mitiq's extrapolation factories afterwards (mitiq's construct / combine split).

Readout-error mitigation (REM) inverts the per-qubit confusion model the wrapped estimator reports
(``readout_factors``: a measured Z has expectation a + c <Z>). For tensored confusion matrices the inverse acts on
Pauli strings term by term: E[P_S] = sum over subsets T of S of prod_{S\\T}(-a/c) prod_T(1/c) E_measured[P_T], so
each observable is replaced by that Pauli sum before the wrapped estimator measures it. Its extra terms are
qubit-wise commuting with the original ones, so they come from the same measurement settings: no extra circuits.
This is mitiq.rem's tensored inverse confusion matrix applied in the Pauli basis, which keeps the one-call path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.aer_measure import apply_readout
from qfl_qiskit.execution.base import Estimate, QflEstimator, Task, estimate
from qfl_qiskit.execution.compact import CircuitCache
from qfl_qiskit.mitigation.folding import scale_noise
from qfl_qiskit.specs.mitigation import MitigationSpec


class MitigationError(ExecutionError):
    """A mitigation the wrapped estimator cannot support."""


def invert_readout(op: SparsePauliOp, factors: Sequence[tuple[float, float]]) -> SparsePauliOp:
    """The Pauli sum whose readout-noisy expectation equals the noise-free expectation of ``op``.

    Raises:
        MitigationError: A qubit whose readout carries no information (c = 0).
    """
    inverse = []
    for a, c in factors:
        if abs(c) < 1e-9:
            raise MitigationError("a qubit's readout error is 50% (c = 0): readout-error mitigation cannot invert it")
        inverse.append((-a / c, 1.0 / c))
    return apply_readout(op, inverse)


def extrapolation_weights(scale_factors: Sequence[float], factory: str, *, order: int = 2) -> np.ndarray | None:
    """Weights w with zero-noise value = w . values, for the factories that are linear in the values
    (Richardson, linear and polynomial least-squares fits); None for "exp". Computed by mitiq itself, by
    extrapolating each unit vector, so they are mitiq's numbers."""
    from mitiq.zne.inference import LinearFactory, PolyFactory, RichardsonFactory

    s = list(scale_factors)
    if factory == "exp":
        return None
    eye = np.eye(len(s))
    if factory == "richardson":
        return np.array([RichardsonFactory.extrapolate(s, list(e)) for e in eye])
    if factory == "linear":
        return np.array([LinearFactory.extrapolate(s, list(e)) for e in eye])
    if factory == "poly":
        return np.array([PolyFactory.extrapolate(s, list(e), order) for e in eye])
    raise MitigationError(f"unknown factory '{factory}'; use richardson, linear, poly or exp")


def _exp_extrapolate(scales: Sequence[float], values: np.ndarray) -> float:
    import warnings

    from mitiq.zne.inference import ExpFactory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(ExpFactory.extrapolate(list(scales), list(values), asymptote=0.0))
        except Exception:  # noqa: BLE001  (mitiq raises on fits that do not converge)
            return float("nan")


class MitigatedEstimator(QflEstimator):
    """Wrap a noisy estimator (Aer or Runtime) with client-side mitigation; a ``BaseEstimatorV2`` too.

    Args:
        estimator: The wrapped estimator.
        spec: Techniques and their settings.
        target: The backend's ``Target`` (gate durations): needed for DDD and for ``schedule``.
        schedule: Schedule every circuit with explicit idle delays even without DDD (the fair baseline for DDD:
            Aer's device noise acts on delays of scheduled circuits only).

    Raises:
        MitigationError: Mitigation on the exact simulator (nothing to mitigate), REM on an estimator that reports no
            readout model, or DDD / scheduling without a target.
    """

    name = "mitigated"

    def __init__(self, estimator: Any, spec: MitigationSpec, *, target: Any = None, schedule: bool = False) -> None:
        if getattr(estimator, "name", "") == "exact" and spec.techniques:
            raise MitigationError(f"mitigation '{spec.label}' needs a noisy estimator; the exact simulator has no "
                                  "noise to mitigate (use the aer or runtime estimator)")
        if "rem" in spec.techniques and not hasattr(estimator, "readout_factors"):
            raise MitigationError(f"REM needs an estimator that reports its readout errors; "
                                  f"'{getattr(estimator, 'name', type(estimator).__name__)}' does not")
        if ("ddd" in spec.techniques or schedule) and target is None:
            raise MitigationError("DDD and idle-time scheduling need the backend's target (gate durations); "
                                  "pass target=backend.target")
        if "ddd" in spec.techniques:
            from qfl_qiskit.mitigation.ddd import rule_sequence

            try:
                rule_sequence(spec.ddd_rule)
            except Exception as exc:  # noqa: BLE001  (CircuitError with the reason)
                raise MitigationError(str(exc)) from None
        self.target, self.schedule = target, schedule
        self._prepared = CircuitCache()
        self.estimator = estimator
        self.spec = spec
        self.zne = "zne" in spec.techniques
        self.rem = "rem" in spec.techniques
        self.scales = tuple(spec.scale_factors) if self.zne else (1.0,)
        self._weights = extrapolation_weights(self.scales, spec.factory, order=spec.poly_order) if self.zne else None
        self._folded = {s: CircuitCache() for s in self.scales}
        self.calls = 0

    def prepared_circuit(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """``circuit`` with DD sequences in its idle windows (DDD), or scheduled with plain delays (``schedule``),
        or as given; cached per circuit object."""
        from qfl_qiskit.mitigation.ddd import insert_dd, schedule_idle

        if "ddd" in self.spec.techniques:
            return self._prepared.get(circuit, lambda c: insert_dd(c, self.target, self.spec.ddd_rule))
        if self.schedule:
            return self._prepared.get(circuit, lambda c: schedule_idle(c, self.target))
        return circuit

    def scaled_circuit(self, circuit: QuantumCircuit, scale: float) -> QuantumCircuit:
        """``circuit`` (prepared) folded to noise scale ``scale`` (cached per circuit object)."""
        circuit = self.prepared_circuit(circuit)
        if scale == 1.0:
            return circuit
        return self._folded[scale].get(circuit, lambda c: scale_noise(c, scale, method=self.spec.folding,
                                                                       seed=self.spec.fold_seed))

    def _estimate(self, tasks: list[Task]) -> list[Estimate]:
        """Mitigated expectation values for every task, from one call of the wrapped estimator."""
        inner: list[Task] = []
        for task in tasks:
            observables = list(task.observables)
            if self.rem:
                factors = self.estimator.readout_factors(task.circuit)
                if factors is not None:
                    observables = [invert_readout(op, factors) for op in observables]
            for s in self.scales:
                inner.append(Task(self.scaled_circuit(task.circuit, s), tuple(observables), task.values,
                                  task.precision))
        results = estimate(self.estimator, inner)
        self.calls += 1
        out, n = [], len(self.scales)
        for i in range(len(tasks)):
            out.append(self._combine(results[i * n:(i + 1) * n]))
        return out

    def _combine(self, results: list[Estimate]) -> Estimate:
        evs = np.stack([r.evs for r in results])  # (S, ..., K)
        stds = np.stack([r.stds for r in results])
        meta = dict(results[0].metadata)
        settings = meta.get("measurement_settings", 1)
        shots = meta.get("shots")
        meta.update({"mitigation": self.spec.label, "mitigation_spec": self.spec.model_dump(mode="json"),
                     "scale_factors": list(self.scales),
                     "overhead": {"circuits_per_value": len(self.scales) * settings,
                                  "shots_per_value": None if shots is None else len(self.scales) * settings * shots},
                     "unmitigated_scale_1": evs[0].tolist() if evs[0].size <= 64 else None})
        if not self.zne:
            return Estimate(evs[0], stds[0], meta)
        if self._weights is not None:
            w = self._weights
            value = np.tensordot(w, evs, axes=1)
            std = np.sqrt(np.tensordot(w ** 2, stds ** 2, axes=1))
            return Estimate(value, std, meta)
        flat = evs.reshape(len(self.scales), -1)
        value = np.array([_exp_extrapolate(self.scales, flat[:, j]) for j in range(flat.shape[1])])
        value = value.reshape(evs.shape[1:])
        # no closed form for the exp fit's error: propagate with the Richardson weights' magnitude as a bound
        w = extrapolation_weights(self.scales, "richardson")
        std = np.sqrt(np.tensordot(w ** 2, stds ** 2, axes=1))
        return Estimate(value, std, meta)

    def describe(self) -> dict[str, Any]:
        """Settings for records."""
        inner = self.estimator.describe() if hasattr(self.estimator, "describe") else {}
        return {"estimator": self.name, "mitigation": self.spec.model_dump(mode="json"), "inner": inner}
