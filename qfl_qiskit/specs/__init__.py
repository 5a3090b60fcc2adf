"""Frozen pydantic specs, loaded from TOML, identified by content hash."""

from __future__ import annotations

from qfl_qiskit.specs.base import Spec, read_toml, validate
from qfl_qiskit.specs.circuit import CircuitSpec, MMASpec, QFLSpec, load_circuit_spec
from qfl_qiskit.specs.transpile import TranspileSpec

__all__ = [
    "CircuitSpec",
    "MMASpec",
    "QFLSpec",
    "Spec",
    "TranspileSpec",
    "load_circuit_spec",
    "read_toml",
    "validate",
]
