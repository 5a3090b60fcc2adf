"""Hardware-efficient layers: single-qubit rotations on every qubit, then CX entanglers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from qiskit import QuantumCircuit

_ROTATIONS = {"rx", "ry", "rz"}


def entangler_pairs(qubits: Sequence[int], pattern: str) -> list[tuple[int, int]]:
    """CX (control, target) pairs over ``qubits`` for a pattern.

    Args:
        qubits: Qubits in chain order.
        pattern: "linear" (chain), "circular" (chain closed when more than two qubits), "full" (every pair i<j),
            "star" (the first qubit to each other), or "none".

    Returns:
        The pairs, in application order.

    Raises:
        ValueError: Unknown pattern.
    """
    q = list(qubits)
    if pattern == "linear":
        return list(zip(q[:-1], q[1:]))
    if pattern == "circular":
        pairs = list(zip(q[:-1], q[1:]))
        return pairs + [(q[-1], q[0])] if len(q) > 2 else pairs
    if pattern == "full":
        return [(a, b) for i, a in enumerate(q) for b in q[i + 1 :]]
    if pattern == "none":
        return []
    if pattern == "star":
        return [(q[0], b) for b in q[1:]]
    raise ValueError(f"unknown entanglement pattern {pattern!r}; use linear, circular, full, star or none")


def append_layers(
    qc: QuantumCircuit,
    weights: Iterator,
    qubits: Sequence[int],
    *,
    layers: int,
    rotations: Sequence[str],
    entanglement: str,
) -> int:
    """Append ``layers`` layers of rotations on every qubit, then CX entanglers within ``qubits``.

    Args:
        qc: Circuit to append to.
        weights: Iterator yielding the next trainable parameter each time a rotation needs one.
        qubits: Qubits the block acts on.
        layers: Number of layers.
        rotations: Rotation gate names applied in order on each qubit ("rx", "ry", "rz").
        entanglement: Entangler pattern (see :func:`entangler_pairs`).

    Returns:
        Number of weights consumed: layers * len(rotations) * len(qubits).
    """
    unknown = set(rotations) - _ROTATIONS
    if unknown:
        raise ValueError(f"unknown rotations {sorted(unknown)}; use rx, ry, rz")
    pairs = entangler_pairs(qubits, entanglement)
    for _ in range(layers):
        for q in qubits:
            for name in rotations:
                getattr(qc, name)(next(weights), q)
        for a, b in pairs:
            qc.cx(a, b)
    return layers * len(rotations) * len(qubits)
