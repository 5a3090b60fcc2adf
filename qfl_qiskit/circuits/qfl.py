"""Quantum Fusion Layer circuit: qubit-efficient index/value encoding S(x) alternated with U(theta).

|psi(x, theta)> = U(theta_P) S(x) ... U(theta_1) S(x) |init>, with |init> = H on the index register, |0> on the
value qubit. S(x) rotates the value qubit by RY(x_i) controlled on index |i> for the M*D feature slots; the extra
slot(s) hold a constant angle, so products of fewer than P features (lower-degree terms) also appear.
Each expectation value is a trigonometric polynomial of degree P in every feature (frequencies up to P/2 in x,
since RY(x) carries x/2), with P*L*3*n weights: linear in P.
"""

from __future__ import annotations

import math

from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit import ParameterVector

from qfl_qiskit.circuits.ansatz import append_layers
from qfl_qiskit.circuits.observables import random_pauli_strings
from qfl_qiskit.circuits.types import QnnCircuit
from qfl_qiskit.circuits.ucry import append_ucry
from qfl_qiskit.specs.circuit import QFLSpec

#: Angle loaded in the constant slot(s) of the index register (|+> on the value qubit for that branch).
CONSTANT_SLOT_ANGLE = math.pi / 2


def qfl_layout(spec: QFLSpec) -> tuple[int, int]:
    """(index qubits k, total qubits n) for a spec: k = ceil(log2(M*D + 1)), n = k + 1."""
    slots = spec.modalities * spec.features + 1
    k = max(1, math.ceil(math.log2(slots)))
    return k, k + 1


def build_qfl(spec: QFLSpec) -> QnnCircuit:
    """Build the parameterized QFL circuit for a spec.

    Args:
        spec: The QFL spec.

    Returns:
        A :class:`QnnCircuit` with inputs ``x`` (M*D, modality-major: x[m*D + d]), weights ``theta``
        (P*L*3*n) and K random Pauli observables.
    """
    k, n = qfl_layout(spec)
    num_features = spec.modalities * spec.features
    index = QuantumRegister(k, "idx")
    value = QuantumRegister(1, "val")
    qc = QuantumCircuit(index, value, name=f"qfl_{spec.spec_id}")
    x = ParameterVector("x", num_features)
    theta = ParameterVector("theta", spec.degree * spec.layers * 3 * n)
    angles = [x[i] for i in range(num_features)] + [CONSTANT_SLOT_ANGLE] * ((1 << k) - num_features)

    qc.h(range(k))
    weights = iter(theta)
    # "star": the value qubit first, so entangler_pairs gives CX(value, index j) for every j
    order = [k, *range(k)] if spec.entanglement == "star" else list(range(n))
    for _ in range(spec.degree):
        append_ucry(qc, angles, controls=list(range(k)), target=k)
        append_layers(
            qc, weights, order, layers=spec.layers, rotations=("rx", "ry", "rz"), entanglement=spec.entanglement
        )
    observables = random_pauli_strings(n, spec.observables, seed=spec.observable_seed)
    metadata = {
        "kind": "qfl",
        "spec_id": spec.spec_id,
        "num_qubits": n,
        "index_qubits": list(range(k)),
        "value_qubit": k,
        "slots": 1 << k,
        "constant_slot_angle": CONSTANT_SLOT_ANGLE,
        "degree": spec.degree,
        "weight_groups": {f"U{p + 1}": [p * spec.layers * 3 * n, (p + 1) * spec.layers * 3 * n] for p in range(spec.degree)},
        "observables": [op.paulis[0].to_label() for op in observables],
    }
    return QnnCircuit(qc, x, theta, observables, metadata)
