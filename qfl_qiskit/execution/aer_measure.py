"""Measurement helpers of the Aer estimator: honest shot estimation and exact readout error on observables.

Shots: the Pauli terms of a PUB's K observables are split into qubit-wise commuting groups; each group is one
measurement setting (basis rotations, then measurements of the qubits it touches), sampled ``shots`` times.
Every observable is estimated from the same samples: per shot, the sum of its terms' parities in each group; the
estimate is the mean and its standard error the sample standard deviation over sqrt(shots), summed in quadrature
over the (independent) groups. Readout errors of the noise model act on these measurements as on hardware.

Exact values: Aer's expectation-value snapshots ignore readout errors, so they are applied exactly to the
observable instead. Measuring Pauli P_q on qubit q (rotate, then measure Z) with readout error probabilities
p01 = P(read 1 | 0), p10 = P(read 0 | 1) turns the eigenvalue (-1)^b into a noisy one with mean
``alpha + beta * (-1)^b``, alpha = p10 - p01, beta = 1 - p01 - p10. With independent errors per qubit, the
expectation a shot estimator converges to is that of the observable with each factor P_q replaced by
``alpha_q I + beta_q P_q`` (a plain product of ``beta_q`` for symmetric errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit
from qiskit.quantum_info import PauliList, SparsePauliOp

from qfl_qiskit.errors import ExecutionError

#: Name of the classical register the measurement settings write to.
MEAS_REGISTER = "qfl_meas"


@dataclass(frozen=True)
class MeasurementGroup:
    """One measurement setting: qubit ``qubits[j]`` is measured in basis ``bases[j]`` into clbit j.

    ``masks[t, j]`` says whether term t acts on ``qubits[j]``; ``coeffs[k, t]`` is term t's coefficient in
    observable k.
    """

    qubits: tuple[int, ...]
    bases: str
    masks: np.ndarray  # (T, m) bool
    coeffs: np.ndarray  # (K, T) float


@dataclass(frozen=True)
class MeasurementPlan:
    """The measurement settings of K observables and the constant (identity) part of each."""

    groups: tuple[MeasurementGroup, ...]
    constants: np.ndarray  # (K,)


def measurement_plan(observables: Sequence[SparsePauliOp]) -> MeasurementPlan:
    """Group the Pauli terms of K observables into qubit-wise commuting measurement settings.

    Raises:
        ExecutionError: An observable has a non-real coefficient (not Hermitian).
    """
    k_total = len(observables)
    constants = np.zeros(k_total)
    terms: dict[str, np.ndarray] = {}
    for k, op in enumerate(observables):
        if np.any(np.abs(np.imag(op.coeffs)) > 1e-12):
            raise ExecutionError(f"observable {k} has complex coefficients; an expectation value needs a Hermitian "
                                 "observable")
        for pauli, coeff in zip(op.paulis, np.real(op.coeffs)):
            if not (pauli.x.any() or pauli.z.any()):
                constants[k] += coeff
                continue
            terms.setdefault(pauli.to_label(), np.zeros(k_total))[k] += coeff
    if not terms:
        return MeasurementPlan((), constants)
    groups = []
    for group in PauliList(list(terms)).group_qubit_wise_commuting():
        support = group.x | group.z  # (T, n)
        qubits = tuple(int(q) for q in np.flatnonzero(support.any(axis=0)))
        bases = ""
        for q in qubits:
            row = int(np.flatnonzero(support[:, q])[0])
            x, z = bool(group.x[row, q]), bool(group.z[row, q])
            bases += "Y" if x and z else ("X" if x else "Z")
        coeffs = np.stack([terms[p.to_label()] for p in group], axis=1)
        groups.append(MeasurementGroup(qubits, bases, support[:, list(qubits)], coeffs))
    return MeasurementPlan(tuple(groups), constants)


def measurement_circuit(circuit: QuantumCircuit, group: MeasurementGroup) -> QuantumCircuit:
    """``circuit`` followed by the basis rotations and measurements of one setting (register ``qfl_meas``)."""
    out = circuit.copy()
    creg = ClassicalRegister(len(group.qubits), MEAS_REGISTER)
    out.add_register(creg)
    for j, (q, basis) in enumerate(zip(group.qubits, group.bases)):
        if basis == "X":
            out.h(q)
        elif basis == "Y":
            out.sdg(q)
            out.h(q)
        out.measure(q, creg[j])
    return out


def estimate(plan: MeasurementPlan, samples: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Expectation values and standard errors from the samples of each group.

    Args:
        plan: The measurement plan.
        samples: One qiskit ``BitArray`` (register ``qfl_meas``) per group, each of batch shape (...).

    Returns:
        ``(evs, stds)``, both of shape (..., K).
    """
    evs: Any = plan.constants.copy()
    var: Any = 0.0
    for group, bits in zip(plan.groups, samples):
        m = len(group.qubits)
        unpacked = np.unpackbits(bits.array, axis=-1)[..., ::-1][..., :m]  # column j = clbit j
        ones = unpacked.astype(np.int64) @ group.masks.T.astype(np.int64)  # (..., shots, T)
        parity = 1.0 - 2.0 * (ones & 1)
        per_shot = parity @ group.coeffs.T  # (..., shots, K)
        shots = per_shot.shape[-2]
        evs = evs + per_shot.mean(axis=-2)
        var = var + per_shot.var(axis=-2, ddof=1) / shots
    evs = np.asarray(evs, dtype=float)
    return evs, np.broadcast_to(np.sqrt(var), evs.shape).copy()


def readout_factors(noise_model: Any, num_qubits: int) -> list[tuple[float, float]] | None:
    """Per simulated qubit ``(alpha, beta)`` of the model's readout errors, or None if it has none.

    Raises:
        ExecutionError: The model has correlated multi-qubit readout errors (only shots can simulate those).
    """
    local = dict(getattr(noise_model, "_local_readout_errors", {}) or {})
    default = getattr(noise_model, "_default_readout_error", None)
    if any(len(qubits) != 1 for qubits in local):
        raise ExecutionError("the noise model has multi-qubit (correlated) readout errors; exact values cannot "
                             "include them: give shots")
    factors, found = [], False
    for q in range(num_qubits):
        error = local.get((q,), default)
        if error is None:
            factors.append((0.0, 1.0))
            continue
        probs = np.asarray(error.probabilities, dtype=float)
        p01, p10 = probs[0, 1], probs[1, 0]
        factors.append((p10 - p01, 1.0 - p01 - p10))
        found = True
    return factors if found else None


def apply_readout(op: SparsePauliOp, factors: Sequence[tuple[float, float]]) -> SparsePauliOp:
    """The observable whose exact expectation equals the readout-noisy expectation of ``op`` (module docstring)."""
    labels: list[str] = []
    coeffs: list[complex] = []
    n = op.num_qubits
    for label, coeff in zip(op.paulis.to_labels(), op.coeffs):
        variants = [("", complex(coeff))]
        for pos, letter in enumerate(label):  # label position pos is qubit n-1-pos
            alpha, beta = factors[n - 1 - pos]
            if letter == "I":
                variants = [(s + "I", c) for s, c in variants]
            elif alpha == 0.0:
                variants = [(s + letter, c * beta) for s, c in variants]
            else:
                variants = [v for s, c in variants for v in ((s + "I", c * alpha), (s + letter, c * beta))]
        for s, c in variants:
            labels.append(s)
            coeffs.append(c)
    out = SparsePauliOp(labels, np.asarray(coeffs)).simplify(atol=0.0, rtol=0.0)
    if not out.size or not np.any(out.coeffs):  # fully random readout: the expectation is exactly 0
        return SparsePauliOp("I" * n, 0.0)
    return out
