"""Quantum Fusion Layer circuit: qubit-efficient index/value encoding S(x) alternated with U(theta).

|psi(x, theta)> = U(theta_P) S(x) ... U(theta_1) S(x) |init>, with |init> = H on the index register, |0> on the
value qubit. S(x) rotates the value qubit by RY(x_i) controlled on index |i> for the M*D feature slots; the extra
slot(s) hold a constant angle, so products of fewer than P features (lower-degree terms) also appear.
Each expectation value is a trigonometric polynomial of degree P across the features, with P*L*3*n weights: linear
in P. In each feature its frequencies are multiples of 1/2 up to P: RY(x) carries x/2, and the ket and the bra each
hold up to P uploads, so half-integer frequencies appear too (measured by FFT over a 4 pi period for P = 1..4).
"""

from __future__ import annotations

import math

from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit import ParameterVector

from qfl_qiskit.circuits.ansatz import append_layers, entangler_pairs
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


def gray_angles(angles: list, order: tuple[int, ...]) -> list:
    """The per-branch angles of the same uniformly controlled rotation when its controls are listed in ``order``.

    With controls ``[q_order[0], q_order[1], ...]`` branch i' has bit j = the state of qubit ``order[j]``; it is the
    branch i of the original listing whose bit ``order[j]`` is bit j of i'.
    """
    k = len(order)
    return [angles[sum(((ip >> j) & 1) << order[j] for j in range(k))] for ip in range(1 << k)]


def _entangler_order(spec: QFLSpec, k: int) -> list[int]:
    # "star": the value qubit first, so entangler_pairs gives CX(value, index j) for every j
    return [k, *range(k)] if spec.entanglement == "star" else list(range(k + 1))


def qfl_interactions(spec: QFLSpec, control_order: tuple[int, ...] | None = None) -> dict[tuple[int, int], int]:
    """Two-qubit gate counts per sorted qubit pair of ``build_qfl(spec, control_order=...)``, without building it
    (building costs 0.1 s at M=12, D=4, P=3; a transpiler scores dozens of orders). Equal to
    :func:`qfl_qiskit.transpile.native.interactions` of the built circuit (tested)."""
    k, n = qfl_layout(spec)
    order = tuple(control_order) if control_order is not None else tuple(range(k))
    out: dict[tuple[int, int], int] = {}

    def add(a: int, b: int, times: int) -> None:
        key = (min(a, b), max(a, b))
        out[key] = out.get(key, 0) + times

    for j in range(k):  # S(x): control j of the Gray code flips 2^(k-1-j) times (the last one twice)
        add(order[j], k, spec.degree * (1 << (k - 1 - j) if j < k - 1 else 2))
    for a, b in entangler_pairs(_entangler_order(spec, k), spec.entanglement):
        add(a, b, spec.degree * spec.layers)
    return out


def build_qfl(spec: QFLSpec, *, control_order: tuple[int, ...] | None = None,
              parameters: tuple[ParameterVector, ParameterVector] | None = None) -> QnnCircuit:
    """Build the parameterized QFL circuit for a spec.

    Args:
        spec: The QFL spec.
        control_order: The index qubits in the Gray-code order of each S(x)'s decomposition: the first is the
            control of half its CX, the second of a quarter... Every order gives the same unitary (the angles are
            permuted to match); the native transpilation picks the one that fits the device. Default: 0, 1, ...
        parameters: The input and weight vectors to use (default: new ``x`` and ``theta``), so a circuit rebuilt in
            another order binds exactly like the first (``assign_parameters`` on its 2^k-term angles takes 1.2 s at
            M=12, D=4, P=3).

    Returns:
        A :class:`QnnCircuit` with inputs ``x`` (M*D, modality-major: x[m*D + d]), weights ``theta``
        (P*L*3*n) and K random Pauli observables.
    """
    k, n = qfl_layout(spec)
    num_features = spec.modalities * spec.features
    index = QuantumRegister(k, "idx")
    value = QuantumRegister(1, "val")
    qc = QuantumCircuit(index, value, name=f"qfl_{spec.spec_id}")
    if parameters is None:
        parameters = (ParameterVector("x", num_features), ParameterVector("theta", spec.degree * spec.layers * 3 * n))
    x, theta = parameters
    if len(x) != num_features or len(theta) != spec.degree * spec.layers * 3 * n:
        raise ValueError(f"parameters need {num_features} inputs and {spec.degree * spec.layers * 3 * n} weights")
    angles = [x[i] for i in range(num_features)] + [CONSTANT_SLOT_ANGLE] * ((1 << k) - num_features)

    order = tuple(control_order) if control_order is not None else tuple(range(k))
    if sorted(order) != list(range(k)):
        raise ValueError(f"control_order must be a permutation of 0..{k - 1}, got {order}")
    angles = gray_angles(angles, order)
    qc.h(range(k))
    weights = iter(theta)
    qubit_order = _entangler_order(spec, k)
    for _ in range(spec.degree):
        append_ucry(qc, angles, controls=list(order), target=k)
        append_layers(
            qc, weights, qubit_order, layers=spec.layers, rotations=("rx", "ry", "rz"),
            entanglement=spec.entanglement
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
        "control_order": list(order),
    }
    # the spec travels with the circuit, so a transpiler can rebuild it in another Gray-code order (same unitary)
    # (next to append_ucry's spans of the S(x) chains, which the exact simulator runs as one operation each)
    qc.metadata = {**qc.metadata, "qfl_spec": spec.model_dump(mode="json"), "control_order": list(order)}
    return QnnCircuit(qc, x, theta, observables, metadata)
