"""Readout observables: seeded random Pauli strings and per-qubit Z."""

from __future__ import annotations

import numpy as np
from qiskit.quantum_info import SparsePauliOp


def random_pauli_strings(num_qubits: int, count: int, *, seed: int) -> tuple[SparsePauliOp, ...]:
    """``count`` distinct, non-identity Pauli strings, each qubit drawn uniformly from I, X, Y, Z.

    Fixed by ``seed`` (numpy PCG64), so a spec always reads out the same observables.

    Args:
        num_qubits: Width of the register.
        count: Number of strings K.
        seed: Random seed.

    Returns:
        K single-term ``SparsePauliOp`` with coefficient 1.

    Raises:
        ValueError: More strings asked for than exist (4^n - 1).
    """
    available = 4**num_qubits - 1
    if count > available:
        raise ValueError(f"{num_qubits} qubits have only {available} non-identity Pauli strings, asked for {count}")
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[SparsePauliOp] = []
    while len(out) < count:
        label = "".join(rng.choice(list("IXYZ"), size=num_qubits))
        if set(label) == {"I"} or label in seen:
            continue
        seen.add(label)
        out.append(SparsePauliOp(label))  # label is big-endian: its last letter acts on qubit 0
    return tuple(out)


def z_on_each_qubit(num_qubits: int) -> tuple[SparsePauliOp, ...]:
    """Z on qubit i for i = 0..n-1."""
    return tuple(SparsePauliOp.from_sparse_list([("Z", [i], 1.0)], num_qubits) for i in range(num_qubits))
