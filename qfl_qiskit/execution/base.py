"""The estimator-shaped interface every execution backend implements.

A PUB is ``(circuit, observables, parameter_values)`` as in Qiskit's V2 primitives, with one convention fixed so
model code never reshapes: ``observables`` is a sequence of K ``SparsePauliOp`` on the circuit's logical qubits
(for a transpiled circuit: the qubits before layout, see :func:`logical_num_qubits`) and
``parameter_values`` has shape ``(..., p)`` in the order of ``circuit.parameters``; the result's ``evs`` has shape
``(..., K)``. ``stds`` holds standard errors where shots are used (zeros for exact values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError


@dataclass(frozen=True)
class Pub:
    """One estimator task: a circuit, K observables and a batch of parameter bindings."""

    circuit: QuantumCircuit
    observables: tuple[SparsePauliOp, ...]
    parameter_values: np.ndarray  # (..., p)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Shape of the bindings without the parameter axis."""
        return self.parameter_values.shape[:-1]


@dataclass(frozen=True)
class PubResult:
    """Expectation values ``evs`` (..., K), their standard errors ``stds`` and run metadata."""

    evs: np.ndarray
    stds: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Estimator(Protocol):
    """What every execution backend offers: run many PUBs in one call."""

    name: str

    def run(self, pubs: Sequence[Pub | tuple]) -> list[PubResult]:
        """Evaluate every PUB; one call is one submission (one job on hardware)."""
        ...


def as_pub(pub: Pub | tuple) -> Pub:
    """Validate a PUB given as :class:`Pub` or ``(circuit, observables, values)``.

    Args:
        pub: The PUB. ``values`` may be omitted for a circuit without parameters.

    Returns:
        A :class:`Pub` with float64 values of shape (..., p).

    Raises:
        ExecutionError: Wrong parameter count, NaN/inf values, or observables on the wrong number of qubits.
    """
    if isinstance(pub, Pub):
        circuit, observables, values = pub.circuit, pub.observables, pub.parameter_values
    else:
        if not 2 <= len(pub) <= 3:
            raise ExecutionError("a PUB is (circuit, observables) or (circuit, observables, parameter_values)")
        circuit, observables = pub[0], pub[1]
        values = pub[2] if len(pub) == 3 else np.zeros((0,))
    if isinstance(observables, SparsePauliOp):
        observables = (observables,)
    observables = tuple(observables)
    if not observables:
        raise ExecutionError("a PUB needs at least one observable")
    width = logical_num_qubits(circuit)
    for op in observables:
        if not isinstance(op, SparsePauliOp):
            raise ExecutionError(f"observables must be SparsePauliOp, got {type(op).__name__}")
        if op.num_qubits != width:
            raise ExecutionError(
                f"observable on {op.num_qubits} qubits for a circuit of {width} logical qubits "
                f"('{circuit.name}'); build observables on the circuit's logical qubits"
            )
    values = np.asarray(values, dtype=float)
    if values.ndim == 0:
        values = values.reshape(1)
    p = circuit.num_parameters
    if values.shape[-1] != p:
        raise ExecutionError(
            f"parameter values have {values.shape[-1]} columns but circuit '{circuit.name}' has {p} parameters"
        )
    if not np.all(np.isfinite(values)):
        raise ExecutionError("parameter values contain NaN or inf; check the inputs and weights fed to the circuit")
    return Pub(circuit, observables, values)


def logical_num_qubits(circuit: QuantumCircuit) -> int:
    """Width of a PUB's observables: the logical qubits of a transpiled (ISA) circuit, else all its qubits.

    A transpiled circuit carries a ``layout``; its observables are given on the logical qubits and each estimator
    maps them with ``op.apply_layout(circuit.layout.final_index_layout(), num_qubits=circuit.num_qubits)``.
    """
    if circuit.layout is None:
        return circuit.num_qubits
    return len(circuit.layout.final_index_layout())


def v2_observables(pub: Pub, observables: Sequence[SparsePauliOp] | None = None) -> np.ndarray:
    """Observables shaped (K, 1, ..., 1) so that a V2 primitive broadcasts them against values (..., p).

    V2 primitives return evs of the broadcast shape (K, ...); :func:`from_v2` moves K last.
    """
    ops = list(observables if observables is not None else pub.observables)
    arr = np.empty(len(ops), dtype=object)
    arr[:] = ops
    return arr.reshape((len(ops),) + (1,) * len(pub.batch_shape))


def from_v2(array: np.ndarray) -> np.ndarray:
    """A V2 result array of shape (K, ...) as (..., K)."""
    return np.moveaxis(np.asarray(array, dtype=float), 0, -1)
