"""Exact estimator: the batched torch statevector simulator behind the common estimator interface.

``ExactEstimator.run`` takes and returns numpy like every estimator; ``ExactEstimator.evaluate`` takes a torch
tensor of parameter values and returns a differentiable tensor, which is what the ``autograd`` gradient of
``QuantumLayer`` uses. Compiled circuits are cached per circuit object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.base import Pub, PubResult, as_pub
from qfl_qiskit.execution.compact import CircuitCache
from qfl_qiskit.execution.torch_sv import CompiledCircuit, compile_circuit

_DTYPES = {"complex128": torch.complex128, "complex64": torch.complex64}


class ExactEstimator:
    """Exact expectation values from a batched, differentiable torch statevector.

    Args:
        precision: "complex128" (agrees with Qiskit to ~1e-12) or "complex64" (about twice as fast).
    """

    name = "exact"

    def __init__(self, *, precision: str = "complex128") -> None:
        if precision not in _DTYPES:
            raise ExecutionError(f"unknown precision '{precision}'; use complex128 or complex64")
        self.precision = precision
        self._dtype = _DTYPES[precision]
        self._real = torch.float64 if precision == "complex128" else torch.float32
        self._cache = CircuitCache()

    def compiled(self, circuit: QuantumCircuit) -> CompiledCircuit:
        """The compiled form of ``circuit`` (compiled on first use, then cached while the circuit lives)."""
        return self._cache.get(circuit, lambda c: compile_circuit(c, dtype=self._dtype))

    def evaluate(
        self, circuit: QuantumCircuit, observables: Sequence[SparsePauliOp], values: torch.Tensor, *,
        shared: Sequence[int] = (),
    ) -> torch.Tensor:
        """Differentiable expectation values.

        Args:
            circuit: The parameterized circuit.
            observables: K observables on the circuit's qubits.
            values: Tensor (..., p) in ``circuit.parameters`` order (may require grad).
            shared: Columns of ``values`` that are the same in every row (weights broadcast over a batch): their
                gates are built once per batch; see :meth:`CompiledCircuit.expectations`.

        Returns:
            Tensor (..., K) of real expectation values, in the estimator's real dtype.
        """
        return self.compiled(circuit).expectations(values.to(self._real), list(observables), shared=shared)

    def run(self, pubs: Sequence[Pub | tuple]) -> list[PubResult]:
        """Evaluate every PUB exactly (standard errors are zero)."""
        out = []
        for raw in pubs:
            pub = as_pub(raw)
            with torch.no_grad():
                evs = self.evaluate(pub.circuit, pub.observables, torch.as_tensor(pub.parameter_values))
            evs_np = evs.detach().to(torch.float64).numpy()
            out.append(PubResult(evs_np, np.zeros_like(evs_np), {"estimator": self.name,
                                                                   "precision": self.precision}))
        return out

    def describe(self) -> dict[str, Any]:
        """Settings for records."""
        return {"estimator": self.name, "precision": self.precision}
