"""Frozen pydantic specs, loaded from TOML, identified by content hash."""

from __future__ import annotations

from qfl_qiskit.specs.base import Spec, read_toml, validate
from qfl_qiskit.specs.circuit import CircuitSpec, MMASpec, QFLSpec, load_circuit_spec
from qfl_qiskit.specs.job import JobSpec
from qfl_qiskit.specs.mitigation import MitigationSpec
from qfl_qiskit.specs.noise import BackendNoiseSpec, NoiseSpec, ParametricNoiseSpec, load_noise_spec
from qfl_qiskit.specs.transpile import TranspileSpec

__all__ = [
    "BackendNoiseSpec",
    "CircuitSpec",
    "JobSpec",
    "MMASpec",
    "MitigationSpec",
    "NoiseSpec",
    "ParametricNoiseSpec",
    "QFLSpec",
    "Spec",
    "TranspileSpec",
    "load_circuit_spec",
    "load_noise_spec",
    "read_toml",
    "validate",
]
