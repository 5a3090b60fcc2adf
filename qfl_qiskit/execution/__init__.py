"""Qiskit V2 estimators (``BaseEstimatorV2``) over three backends: exact torch statevector (differentiable),
Aer (noisy, CPU/GPU, exact or shots) and IBM Runtime (local testing mode or QPUs); :func:`estimate` runs batched
tasks on any V2 estimator in one call."""

from __future__ import annotations

from qfl_qiskit.execution.aer import AerEstimator
from qfl_qiskit.execution.base import (
    Estimate,
    QflEstimator,
    Task,
    as_task,
    estimate,
    layout_observables,
    logical_num_qubits,
)
from qfl_qiskit.execution.exact import ExactEstimator
from qfl_qiskit.execution.runtime import RuntimeEstimator
from qfl_qiskit.execution.torch_sv import CompiledCircuit, UnsupportedGateError, compile_circuit

__all__ = [
    "AerEstimator",
    "CompiledCircuit",
    "Estimate",
    "ExactEstimator",
    "QflEstimator",
    "RuntimeEstimator",
    "Task",
    "UnsupportedGateError",
    "as_task",
    "compile_circuit",
    "estimate",
    "layout_observables",
    "logical_num_qubits",
]
