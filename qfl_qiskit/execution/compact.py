"""Compact a transpiled (ISA) circuit to the physical qubits it uses, and restrict laid-out observables to them.

An ISA circuit for a 156-qubit backend has 156 qubits, of which a small circuit touches a handful; simulating all
of them is impossible. :func:`compact_circuit` keeps the active physical qubits (plus every qubit a logical qubit
ends on, so an observable on an idle logical qubit still has a home) and renumbers them ``0 .. m-1`` in ascending
physical order; laid-out observables (on the physical qubits, Qiskit's convention) are restricted to them with
:meth:`CompactCircuit.restrict`. Results are cached per circuit object (:class:`CircuitCache`): bind many times, compact once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import PauliList, SparsePauliOp


T = TypeVar("T")


@dataclass(frozen=True)
class CompactCircuit:
    """A circuit ready to simulate, with the map from the original's logical qubits to its qubits.

    Attributes:
        circuit: The circuit to simulate (the original itself when nothing was dropped).
        physical: Physical qubit of each simulated qubit (an ISA circuit), or None for a circuit without layout,
            whose qubits are simulated as they are.
        positions: Simulated qubit of each logical qubit.
    """

    circuit: QuantumCircuit
    physical: tuple[int, ...] | None
    positions: tuple[int, ...]

    def restrict(self, observables: Sequence[SparsePauliOp]) -> list[SparsePauliOp]:
        """Observables on the original circuit's qubits (laid out, Qiskit's convention for ISA circuits), as
        operators on the simulated qubits.

        A dropped qubit is never touched, so it stays in |0>: a Pauli term with X or Y there has expectation 0 and
        is left out, and I or Z there contribute a factor 1.
        """
        if self.physical is None:
            return list(observables)
        kept = np.asarray(self.physical, dtype=int)
        width = len(kept)
        out = []
        for op in observables:
            paulis = op.paulis
            dropped = np.ones(op.num_qubits, dtype=bool)
            dropped[kept] = False
            alive = ~paulis.x[:, dropped].any(axis=1)
            if not alive.any():
                out.append(SparsePauliOp("I" * width, coeffs=[0.0]))
                continue
            sub = PauliList.from_symplectic(paulis.z[alive][:, kept], paulis.x[alive][:, kept],
                                            paulis.phase[alive])
            out.append(SparsePauliOp(sub, op.coeffs[alive]))
        return out


def compact_circuit(circuit: QuantumCircuit) -> CompactCircuit:
    """Compact an ISA circuit to its active physical qubits (see the module docstring).

    A circuit without ``layout`` is returned as is. The compacted circuit keeps the original's parameters (same
    objects, same order), global phase, classical bits, name and metadata; barriers keep only their kept qubits.

    Equivalent observable mapping: ``op.apply_layout(final_index_layout, num_qubits=circuit.num_qubits)``
    restricted to the kept qubits equals ``op.apply_layout(positions, num_qubits=len(kept))``.
    """
    n = circuit.num_qubits
    if circuit.layout is None:
        return CompactCircuit(circuit, None, tuple(range(n)))
    final = [int(q) for q in circuit.layout.final_index_layout()]
    # delays alone do not make a qubit active: a scheduled circuit pads every idle qubit of the device with them
    busy = {circuit.find_bit(q).index for inst in circuit.data
            if inst.operation.name not in ("barrier", "delay") for q in inst.qubits}
    kept = sorted(busy | set(final))
    index = {phys: i for i, phys in enumerate(kept)}
    positions = tuple(index[q] for q in final)
    if len(kept) == n:
        return CompactCircuit(circuit, tuple(kept), positions)
    out = QuantumCircuit(len(kept), circuit.num_clbits, name=circuit.name, global_phase=circuit.global_phase,
                         metadata=dict(circuit.metadata or {}))
    for inst in circuit.data:
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        clbits = [circuit.find_bit(c).index for c in inst.clbits]
        if inst.operation.name == "barrier":
            qubits = [q for q in qubits if q in index]
            if qubits:
                out.barrier([index[q] for q in qubits])
            continue
        if inst.operation.name == "delay" and qubits[0] not in index:
            continue
        out.append(inst.operation, [index[q] for q in qubits], clbits, copy=False)
    if list(out.parameters) != list(circuit.parameters):  # cannot happen: every instruction is kept
        raise RuntimeError(f"compacting '{circuit.name}' changed its parameters")
    return CompactCircuit(out, tuple(kept), positions)


class CircuitCache:
    """Values computed from circuit objects, kept while each circuit lives.

    Circuits are unhashable, so entries are keyed by object identity and dropped when the circuit is garbage
    collected. A circuit is treated as immutable once seen: changing it in place afterwards is not noticed.
    """

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref, Any]] = {}

    def get(self, circuit: QuantumCircuit, factory: Callable[[QuantumCircuit], T]) -> T:
        """The cached value for ``circuit``, computing it with ``factory(circuit)`` on first use."""
        key = id(circuit)
        entry = self._items.get(key)
        if entry is not None and entry[0]() is circuit:
            return entry[1]
        value = factory(circuit)
        items = self._items
        self._items[key] = (weakref.ref(circuit, lambda _ref, k=key: items.pop(k, None)), value)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def __getstate__(self) -> dict[str, Any]:
        return {}  # weak references do not pickle; a copy (e.g. torch.save of a model) starts empty

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._items = {}
