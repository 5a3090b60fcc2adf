"""Block-level view of a QFL or MMA circuit, for drawing: S(x) and U(theta) (QFL), or each modality's encoding
and trainable block and the fusion layers (MMA), as labelled boxes on the qubits they act on. The gate-level
QFL drawing is thousands of pixels of 2^k-term RY angles; this one fits a page. Only for drawing: the boxes are
opaque (no definition), so it does not run."""

from __future__ import annotations

from qiskit import QuantumCircuit
from qiskit.circuit import Gate

from qfl_qiskit.circuits.types import QnnCircuit


def _box(qc: QuantumCircuit, label: str, qubits: list[int]) -> None:
    qc.append(Gate(name=label, num_qubits=len(qubits), params=[], label=label), qubits)


def block_circuit(qnn: QnnCircuit, spec: object) -> QuantumCircuit:
    """The block view of ``qnn`` built from ``spec`` (its :class:`QFLSpec` or :class:`MMASpec`)."""
    meta = qnn.metadata
    qc = QuantumCircuit(*qnn.circuit.qregs, name=f"{qnn.circuit.name} (blocks)")
    if meta["kind"] == "qfl":
        index, value = meta["index_qubits"], meta["value_qubit"]
        everything = [*index, value]
        _box(qc, f"H^{len(index)}", index)
        layers = getattr(spec, "layers", 1)
        for p in range(meta["degree"]):
            _box(qc, f"S(x): UCRY, {len(index)} controls", everything)
            _box(qc, f"U(θ{p + 1}): {layers} layer{'s' if layers > 1 else ''}, "
                     f"{getattr(spec, 'entanglement', '')}", everything)
        return qc
    registers = meta["registers"]
    present = meta.get("presence") or [True] * len(registers)
    for m, (name, qubits) in enumerate(registers.items()):
        if present[m]:
            _box(qc, f"E{m}(x{m}) + W{m}", qubits)
        else:
            _box(qc, f"context ({getattr(spec, 'context', '')}): modality {m} absent", qubits)
    everything = [q for qubits in registers.values() for q in qubits]
    for f in range(getattr(spec, "fusion_layers", 1)):
        _box(qc, f"fusion {f + 1}: {getattr(spec, 'entangler', '')} CX + rotations", everything)
    return qc
