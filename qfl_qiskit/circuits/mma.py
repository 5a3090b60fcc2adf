"""Multimodal QNN with a missing-modality-agnostic (MMA) mechanism.

One register per modality. A present modality's register gets angle encoding RY(x) and its trainable block
(Ry/Rz + CX layers), repeated ``encoding_layers`` times (data re-uploading). An absent modality's encoding and
block are left out of the circuit (no-op gating): its register stays in the fixed context state, its inputs have no
effect and its weights have exactly zero gradient. Fusion layers then entangle the registers and apply trainable
Rz/Ry on every qubit. The weight layout is the same for every presence pattern, so models and federated
aggregation can address modality blocks by ``metadata["weight_groups"]``.
"""

from __future__ import annotations

from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit import ParameterVector

from qfl_qiskit.circuits.ansatz import append_layers, entangler_pairs
from qfl_qiskit.circuits.observables import random_pauli_strings, z_on_each_qubit
from qfl_qiskit.circuits.types import QnnCircuit
from qfl_qiskit.errors import CircuitError
from qfl_qiskit.specs.circuit import MMASpec

_ROT = ("ry", "rz")
# Fusion layers end the circuit: a final Rz would commute with Z read-out and its weight would be dead, so the
# fusion rotations are Rz then Ry (every fusion weight moves every read-out).
_FUSION_ROT = ("rz", "ry")


def mma_weight_groups(spec: MMASpec) -> dict[str, tuple[int, int]]:
    """Half-open weight ranges: ``modality_m`` for each per-modality block, then ``fusion``."""
    q = spec.qubits_per_modality
    per_mod = spec.encoding_layers * spec.trainable_layers * len(_ROT) * q
    groups = {f"modality_{m}": (m * per_mod, (m + 1) * per_mod) for m in range(spec.modalities)}
    start = spec.modalities * per_mod
    groups["fusion"] = (start, start + spec.fusion_layers * len(_FUSION_ROT) * spec.modalities * q)
    return groups


def build_mma(spec: MMASpec, present: tuple[bool, ...] | None = None) -> QnnCircuit:
    """Build the MMA circuit for one presence pattern.

    Args:
        spec: The MMA spec.
        present: One flag per modality; ``None`` means all present.

    Returns:
        A :class:`QnnCircuit` with inputs ``x`` (M*q, modality-major) and weights ``w`` in the layout of
        :func:`mma_weight_groups`; ``metadata["presence"]`` holds the pattern for the classical head.

    Raises:
        CircuitError: ``present`` has the wrong length.
    """
    m_count, q = spec.modalities, spec.qubits_per_modality
    present = tuple(bool(p) for p in present) if present is not None else (True,) * m_count
    if len(present) != m_count:
        raise CircuitError(f"presence pattern has {len(present)} flags but the spec has {m_count} modalities")
    regs = [QuantumRegister(q, f"m{m}") for m in range(m_count)]
    qc = QuantumCircuit(*regs, name=f"mma_{spec.spec_id}")
    x = ParameterVector("x", m_count * q)
    groups = mma_weight_groups(spec)
    w = ParameterVector("w", groups["fusion"][1])
    qubits = [[m * q + j for j in range(q)] for m in range(m_count)]

    for m in range(m_count):
        if not present[m]:
            if spec.context == "plus":
                qc.h(qubits[m])
            continue
        block = iter(w[groups[f"modality_{m}"][0] : groups[f"modality_{m}"][1]])
        for _ in range(spec.encoding_layers):
            for j, qubit in enumerate(qubits[m]):
                qc.ry(x[m * q + j], qubit)
            append_layers(qc, block, qubits[m], layers=spec.trainable_layers, rotations=_ROT, entanglement="linear")

    fusion = iter(w[groups["fusion"][0] : groups["fusion"][1]])
    chain = spec.entangler == "chain"  # registers fused along one path: last qubit of m to first of m + 1
    register_pairs = entangler_pairs(range(m_count), "linear" if chain else spec.entangler) if m_count > 1 else []
    for _ in range(spec.fusion_layers):
        for a, b in register_pairs:
            for j in ([q - 1] if chain else range(q)):
                qc.cx(qubits[a][j], qubits[b][0 if chain else j])
        append_layers(qc, fusion, range(m_count * q), layers=1, rotations=_FUSION_ROT, entanglement="none")

    n = m_count * q
    if spec.readout == "z":
        observables = z_on_each_qubit(n)
    else:
        observables = random_pauli_strings(n, spec.observables, seed=spec.observable_seed)
    metadata = {
        "kind": "mma",
        "spec_id": spec.spec_id,
        "num_qubits": n,
        "presence": list(present),
        "registers": {f"modality_{m}": qubits[m] for m in range(m_count)},
        "weight_groups": {k: list(v) for k, v in groups.items()},
        "observables": [op.paulis[0].to_label() for op in observables],
    }
    return QnnCircuit(qc, x, w, observables, metadata)
