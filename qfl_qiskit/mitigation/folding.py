"""Noise scaling for ZNE on parameterized (ISA) circuits: global folding, folding gates at random, identity layers.

Why not mitiq's scaling functions directly: they work on bound circuits only, converting each through Cirq
(about 0.3 s per 5-qubit ISA circuit here), so a batch of 300 bindings at three scale factors would spend 4.5 minutes
folding; and the folded circuits come back without the ISA layout, in a wider gate set. Folding the parameterized
ISA circuit once per scale factor, with the same definitions as mitiq (``fold_global``, ``fold_gates_at_random``,
``insert_id_layers``), keeps the layout and the backend's basis and costs about a millisecond; the folded circuit
then binds like any other. Tests check the folded circuits against mitiq's on bound copies (same gate counts, same
unitary).

Inverses stay in the basis of IBM devices: rz(t)^dag = rz(-t); sx^dag = rz(pi) sx rz(pi) up to a global phase
(rz is virtual on IBM hardware, so the folded sx^dag carries the noise of one sx); x, cx, cz, ecr and id are their
own inverses. Other gates use Qiskit's ``inverse()``.
"""

from __future__ import annotations

import math

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import CircuitInstruction
from qiskit.circuit.library import IGate, RZGate, SXGate

from qfl_qiskit.errors import CircuitError

_SELF_INVERSE = {"x", "y", "z", "h", "cx", "cz", "ecr", "swap", "id", "delay"}


def _inverse(inst: CircuitInstruction) -> list[CircuitInstruction]:
    op, qubits = inst.operation, inst.qubits
    if op.name in _SELF_INVERSE:
        return [inst]
    if op.name == "sx":
        return [CircuitInstruction(RZGate(math.pi), qubits), CircuitInstruction(SXGate(), qubits),
                CircuitInstruction(RZGate(math.pi), qubits)]
    return [CircuitInstruction(op.inverse(), qubits)]


def _gates(circuit: QuantumCircuit) -> list[CircuitInstruction]:
    gates = []
    for inst in circuit.data:
        name = inst.operation.name
        if name == "barrier":
            continue
        if name in ("measure", "reset") or inst.clbits:
            raise CircuitError(f"cannot fold '{name}': ZNE folds unitary circuits (observables are measured after)")
        gates.append(inst)
    return gates


def _rebuild(circuit: QuantumCircuit, data: list[CircuitInstruction]) -> QuantumCircuit:
    out = circuit.copy_empty_like()  # keeps registers, global phase and the ISA layout
    for inst in data:
        out._append(inst)
    return out


def fold_global(circuit: QuantumCircuit, scale: float) -> QuantumCircuit:
    """U (U^dag U)^k, then the last m gates folded, as ``mitiq.zne.scaling.fold_global``.

    k = floor((scale - 1) / 2) and m = round(fraction * d / 2) for the remaining fraction of (scale - 1) / 2 over d
    gates, so the folded circuit has about ``scale`` times the gates.

    Raises:
        CircuitError: scale < 1, or a non-unitary instruction.
    """
    _check_scale(scale)
    gates = _gates(circuit)
    d = len(gates)
    k, fraction = divmod(scale - 1, 2)
    inverse = [g for inst in reversed(gates) for g in _inverse(inst)]
    data = list(gates)
    for _ in range(int(k)):
        data += inverse + gates
    m = int(round(fraction * d / 2))
    if m:
        last = gates[d - m:]
        data += [g for inst in reversed(last) for g in _inverse(inst)] + last
    return _rebuild(circuit, data)


def fold_gates_at_random(circuit: QuantumCircuit, scale: float, *, seed: int = 0) -> QuantumCircuit:
    """Replace gates G by G G^dag G, as ``mitiq.zne.scaling.fold_gates_at_random``.

    Every gate is folded k = floor((scale - 1) / 2) times, and round((scale - 2k - 1) / 2 * d) of the d gates,
    chosen at random (seeded, without repetition), once more.

    Raises:
        CircuitError: scale < 1, or a non-unitary instruction.
    """
    _check_scale(scale)
    gates = _gates(circuit)
    d = len(gates)
    k = int((scale - 1) / 2)
    folds = np.full(d, k)
    extra = int(round((scale - 2 * k - 1) / 2 * d))
    if extra:
        folds[np.random.default_rng(seed).choice(d, size=extra, replace=False)] += 1
    data: list[CircuitInstruction] = []
    for inst, n in zip(gates, folds):
        data.append(inst)
        inverse = _inverse(inst)
        for _ in range(n):
            data += inverse + [inst]
    return _rebuild(circuit, data)


def insert_identity_layers(circuit: QuantumCircuit, scale: float, *, seed: int = 0) -> QuantumCircuit:
    """Insert layers of ``id`` gates on the active qubits so the depth grows by ``scale``, as
    ``mitiq.zne.scaling.insert_id_layers``: each of the L layers is followed by floor(scale - 1) identity layers,
    and round(fraction * L) layers chosen at random (seeded) by one more.

    Raises:
        CircuitError: scale < 1, or a non-unitary instruction.
    """
    from qiskit.converters import circuit_to_dag, dag_to_circuit

    _check_scale(scale)
    _gates(circuit)
    dag = circuit_to_dag(circuit)
    layers = [dag_to_circuit(layer["graph"]) for layer in dag.layers()]
    active = sorted({q for inst in circuit.data for q in inst.qubits}, key=lambda q: circuit.find_bit(q).index)
    whole, fraction = divmod(scale - 1, 1)
    count = np.full(len(layers), int(whole))
    extra = int(round(fraction * len(layers)))
    if extra:
        count[np.random.default_rng(seed).choice(len(layers), size=extra, replace=False)] += 1
    data: list[CircuitInstruction] = []
    for layer, n in zip(layers, count):
        data += [inst for inst in layer.data if inst.operation.name != "barrier"]
        for _ in range(n):
            data += [CircuitInstruction(IGate(), (q,)) for q in active]
    return _rebuild(circuit, data)


def scale_noise(circuit: QuantumCircuit, scale: float, *, method: str, seed: int = 0) -> QuantumCircuit:
    """Fold ``circuit`` to noise scale ``scale`` by ``method`` ("global", "random" or "identity")."""
    if method == "global":
        return fold_global(circuit, scale)
    if method == "random":
        return fold_gates_at_random(circuit, scale, seed=seed)
    if method == "identity":
        return insert_identity_layers(circuit, scale, seed=seed)
    raise CircuitError(f"unknown folding '{method}'; use global, random or identity")


def _check_scale(scale: float) -> None:
    if not scale >= 1:
        raise CircuitError(f"noise scale factors must be >= 1, got {scale}")
