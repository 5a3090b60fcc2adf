"""The object every builder returns: a parameterized circuit with its inputs, weights and observables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp


@dataclass(frozen=True)
class QnnCircuit:
    """A parameterized QNN circuit.

    Attributes:
        circuit: The logical circuit (no measurements; expectation values are read through ``observables``).
        inputs: Input (feature) parameters, in feature order.
        weights: Trainable parameters in the model's weight layout. A weight may be absent from ``circuit``
            (e.g. an absent modality's block in an MMA circuit); it then has no effect and zero gradient.
        observables: One ``SparsePauliOp`` per output, over ``circuit.num_qubits`` qubits.
        metadata: Builder facts (kind, spec id, registers, weight groups, presence...), JSON-serialisable.
    """

    circuit: QuantumCircuit
    inputs: ParameterVector
    weights: ParameterVector
    observables: tuple[SparsePauliOp, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_inputs(self) -> int:
        """Number of input features."""
        return len(self.inputs)

    @property
    def num_weights(self) -> int:
        """Number of trainable weights in the layout (including ones absent from the circuit)."""
        return len(self.weights)

    def parameter_values(self, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Arrange inputs and weights in the order of ``circuit.parameters``, as V2 primitives expect.

        Args:
            inputs: Array of shape (..., num_inputs).
            weights: Array of shape (num_weights,) or broadcastable to (..., num_weights).

        Returns:
            Array of shape (..., len(circuit.parameters)).

        Raises:
            ValueError: Last dimensions do not match the circuit.
        """
        x = np.asarray(inputs, dtype=float)
        w = np.asarray(weights, dtype=float)
        if x.shape[-1:] != (self.num_inputs,) or w.shape[-1:] != (self.num_weights,):
            raise ValueError(
                f"expected inputs (..., {self.num_inputs}) and weights (..., {self.num_weights}), "
                f"got {x.shape} and {w.shape}"
            )
        batch = np.broadcast_shapes(x.shape[:-1], w.shape[:-1])
        x = np.broadcast_to(x, (*batch, self.num_inputs))
        w = np.broadcast_to(w, (*batch, self.num_weights))
        source = {p: x[..., i] for i, p in enumerate(self.inputs)}
        source.update({p: w[..., i] for i, p in enumerate(self.weights)})
        columns = [source[p] for p in self.circuit.parameters]
        return np.stack(columns, axis=-1) if columns else np.zeros((*batch, 0))

    def bind(self, inputs: np.ndarray, weights: np.ndarray) -> QuantumCircuit:
        """Return the circuit with one set of inputs (num_inputs,) and weights (num_weights,) assigned."""
        values = self.parameter_values(inputs, weights)
        return self.circuit.assign_parameters(values.tolist())
