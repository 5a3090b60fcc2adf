"""Circuit builders: QFL and MMA circuits, ansatz layers, observables, QPY/OpenQASM 3 export."""

from __future__ import annotations

from qfl_qiskit.circuits.export import export_circuit, load_qnn, sidecar
from qfl_qiskit.circuits.mma import build_mma, mma_weight_groups
from qfl_qiskit.circuits.qfl import build_qfl, qfl_layout
from qfl_qiskit.circuits.types import QnnCircuit
from qfl_qiskit.circuits.ucry import append_ucry
from qfl_qiskit.specs.circuit import MMASpec, QFLSpec

__all__ = [
    "QnnCircuit",
    "append_ucry",
    "build_circuit",
    "build_mma",
    "build_qfl",
    "export_circuit",
    "load_qnn",
    "sidecar",
    "mma_weight_groups",
    "qfl_layout",
]


def build_circuit(spec: QFLSpec | MMASpec, present: tuple[bool, ...] | None = None) -> QnnCircuit:
    """Build the circuit of any circuit spec (QFL ignores ``present``, which is an MMA notion)."""
    if spec.kind == "qfl":
        return build_qfl(spec)
    return build_mma(spec, present)
