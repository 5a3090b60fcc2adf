"""One estimator-shaped interface (V2 PUBs in, ``evs`` (..., K) out) over three backends: exact torch
statevector (differentiable), Aer (noisy, CPU/GPU, exact or shots) and IBM Runtime (local testing mode or QPUs)."""

from __future__ import annotations

from qfl_qiskit.execution.aer import AerEstimator
from qfl_qiskit.execution.base import Estimator, Pub, PubResult, as_pub
from qfl_qiskit.execution.exact import ExactEstimator
from qfl_qiskit.execution.runtime import RuntimeEstimator
from qfl_qiskit.execution.torch_sv import CompiledCircuit, UnsupportedGateError, compile_circuit

__all__ = [
    "AerEstimator",
    "CompiledCircuit",
    "Estimator",
    "ExactEstimator",
    "Pub",
    "PubResult",
    "RuntimeEstimator",
    "UnsupportedGateError",
    "as_pub",
    "compile_circuit",
]
