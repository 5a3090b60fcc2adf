"""Backend resolution, seed-swept preset transpilation, ESP scoring and transpilation reports."""

from __future__ import annotations

from qfl_qiskit.transpile.compare import compare_backends
from qfl_qiskit.transpile.backends import fake_backend_classes, offline_backend_names, resolve_backend
from qfl_qiskit.transpile.metrics import (
    active_qubits,
    calibration_time,
    circuit_metrics,
    estimated_success_probability,
    median_errors,
)
from qfl_qiskit.transpile.report import Candidate, TranspileReport, rank_backends, transpile_sweep

__all__ = [
    "Candidate",
    "TranspileReport",
    "active_qubits",
    "compare_backends",
    "calibration_time",
    "circuit_metrics",
    "estimated_success_probability",
    "fake_backend_classes",
    "median_errors",
    "offline_backend_names",
    "rank_backends",
    "resolve_backend",
    "transpile_sweep",
]
