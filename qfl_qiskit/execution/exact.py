"""Exact estimator: the batched torch statevector simulator as a Qiskit ``BaseEstimatorV2``.

``ExactEstimator.run`` is Qiskit's V2 interface (PUBs in, a job out; see :mod:`.base`); ``ExactEstimator.evaluate``
takes a torch tensor of parameter values and returns a differentiable tensor, which is what the ``autograd``
gradient of ``QuantumLayer`` uses. An ISA circuit is compacted to its active qubits first (so a 156-qubit ISA
circuit costs what its few used qubits cost) and its laid-out observables are restricted to them; the result is
correct for every layout. Compiled circuits are cached per circuit object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.base import Estimate, QflEstimator, Task
from qfl_qiskit.execution.compact import CircuitCache, CompactCircuit, compact_circuit
from qfl_qiskit.execution.torch_sv import CompiledCircuit, compile_circuit

_DTYPES = {"complex128": torch.complex128, "complex64": torch.complex64}


class ExactEstimator(QflEstimator):
    """Exact expectation values from a batched, differentiable torch statevector.

    Args:
        precision: "complex128" (agrees with Qiskit to ~1e-12) or "complex64" (about twice as fast).
        default_precision: Target standard error of ``run`` when a PUB gives none. 0 (the default) returns exact
            values with zero standard errors; a positive value adds seeded Gaussian noise of that size and
            reports it as ``stds``, as Qiskit's ``StatevectorEstimator`` does.
        seed: Seed of that Gaussian noise.
    """

    name = "exact"

    def __init__(self, *, precision: str = "complex128", default_precision: float = 0.0,
                 seed: int | None = None) -> None:
        if precision not in _DTYPES:
            raise ExecutionError(f"unknown precision '{precision}'; use complex128 or complex64")
        if not default_precision >= 0:
            raise ExecutionError(f"default_precision must be >= 0 (got {default_precision})")
        self.precision = precision
        self.default_precision = float(default_precision)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._dtype = _DTYPES[precision]
        self._real = torch.float64 if precision == "complex128" else torch.float32
        self._cache = CircuitCache()
        self._compacted = CircuitCache()

    def compact(self, circuit: QuantumCircuit) -> CompactCircuit:
        """The circuit to simulate: an ISA circuit's active qubits (cached), a logical circuit as it is."""
        return self._compacted.get(circuit, compact_circuit)

    def compiled(self, circuit: QuantumCircuit) -> CompiledCircuit:
        """The compiled form of ``circuit`` (compiled on first use, then cached while the circuit lives)."""
        return self._cache.get(circuit, lambda c: compile_circuit(c, dtype=self._dtype))

    def evaluate(
        self, circuit: QuantumCircuit, observables: Sequence[SparsePauliOp], values: torch.Tensor, *,
        shared: Sequence[int] = (),
    ) -> torch.Tensor:
        """Differentiable expectation values.

        Args:
            circuit: The parameterized circuit (logical, or ISA).
            observables: K observables on the circuit's qubits (laid out for an ISA circuit).
            values: Tensor (..., p) in ``circuit.parameters`` order (may require grad).
            shared: Columns of ``values`` that are the same in every row (weights broadcast over a batch): their
                gates are built once per batch; see :meth:`CompiledCircuit.expectations`.

        Returns:
            Tensor (..., K) of real expectation values, in the estimator's real dtype.
        """
        compact = self.compact(circuit)
        ops = compact.restrict(list(observables))
        return self.compiled(compact.circuit).expectations(values.to(self._real), ops, shared=shared)

    def _estimate(self, tasks: list[Task]) -> list[Estimate]:
        out = []
        for task in tasks:
            with torch.no_grad():
                evs = self.evaluate(task.circuit, task.observables, torch.as_tensor(task.values))
            evs_np = evs.detach().to(torch.float64).numpy()
            precision = task.precision or 0.0
            if precision > 0:  # StatevectorEstimator's convention: exact values plus N(0, precision^2)
                evs_np = self._rng.normal(evs_np, precision)
            stds = np.full_like(evs_np, precision)
            compact = self.compact(task.circuit)
            out.append(Estimate(evs_np, stds, {"estimator": self.name, "precision": self.precision,
                                               "simulated_qubits": compact.circuit.num_qubits}))
        return out

    def describe(self) -> dict[str, Any]:
        """Settings for records."""
        return {"estimator": self.name, "precision": self.precision, "default_precision": self.default_precision}
