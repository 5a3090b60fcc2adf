"""Figures of merit of an ISA circuit on a backend target: ESP, gate counts, depths, duration, calibration time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.providers import BackendV2
    from qiskit.transpiler import Target

_NON_GATES = {"barrier", "delay", "measure", "reset"}


def active_qubits(circuit: QuantumCircuit) -> list[int]:
    """Physical qubits that at least one instruction touches, in ascending order."""
    used = {circuit.find_bit(q).index for inst in circuit.data if inst.operation.name != "barrier" for q in inst.qubits}
    return sorted(used)


def estimated_success_probability(circuit: QuantumCircuit, target: Target) -> float:
    """ESP = prod over gates of (1 - error) * prod over read-out qubits of (1 - readout error).

    Errors come from the backend target; a gate or qubit the target gives no error for counts as error-free.
    The read-out qubits are the circuit's measured qubits, or, for a circuit without measurements (expectation
    values read by an estimator), every active qubit.

    Args:
        circuit: An ISA circuit (physical qubits).
        target: The backend target.

    Returns:
        The ESP in [0, 1].
    """
    esp = 1.0
    measured: set[int] = set()
    for inst in circuit.data:
        name = inst.operation.name
        qargs = tuple(circuit.find_bit(q).index for q in inst.qubits)
        if name == "measure":
            measured.update(qargs)
            continue
        if name in _NON_GATES:
            continue
        esp *= 1.0 - _error(target, name, qargs)
    for q in measured or set(active_qubits(circuit)):
        esp *= 1.0 - _error(target, "measure", (q,))
    return esp


def _error(target: Target, name: str, qargs: tuple[int, ...]) -> float:
    if name not in target.operation_names:
        return 0.0
    props = target[name].get(qargs)
    if props is None or props.error is None:
        return 0.0
    return float(props.error)


def circuit_metrics(circuit: QuantumCircuit, target: Target) -> dict[str, Any]:
    """Counts and depths of an ISA circuit, plus its ESP and estimated duration on ``target``."""
    ops = dict(circuit.count_ops())
    two_q = sum(1 for inst in circuit.data if inst.operation.num_qubits == 2 and inst.operation.name not in _NON_GATES)
    one_q = sum(1 for inst in circuit.data if inst.operation.num_qubits == 1 and inst.operation.name not in _NON_GATES)
    try:
        duration = float(circuit.estimate_duration(target, unit="s"))
    except Exception:  # targets without durations (some generic or custom targets) cannot be scheduled
        duration = None
    return {
        "depth": circuit.depth(lambda inst: inst.operation.name != "barrier"),
        "two_qubit_depth": circuit.depth(lambda inst: inst.operation.num_qubits == 2 and inst.operation.name != "barrier"),
        "two_qubit_count": two_q,
        "one_qubit_count": one_q,
        "op_counts": {str(k): int(v) for k, v in ops.items()},
        "estimated_duration_s": duration,
        "esp": estimated_success_probability(circuit, target),
    }


def calibration_time(backend: BackendV2) -> str | None:
    """ISO time of the backend's calibration data, where the backend says (fake and IBM backends do)."""
    props = getattr(backend, "properties", None)
    if callable(props):
        try:
            p = props()
        except Exception:  # backends without properties raise various errors
            return None
        stamp = getattr(p, "last_update_date", None)
        return stamp.isoformat() if stamp is not None else None
    return None


def broken_calibration(backend: BackendV2, *, threshold: float = 0.5) -> dict[str, int]:
    """How many two-qubit gates (couplers), one-qubit gates and read-outs the calibration gives an error of at
    least ``threshold``: marked broken (fake_kyoto has couplers at error 1.0, so its median 2q error reads 1.0)."""
    target = backend.target
    out = {"couplers": 0, "1q gates": 0, "read-outs": 0}
    couplers = set()
    for name in target.operation_names:
        if name in _NON_GATES - {"measure"} or name in {"rz", "id"}:
            continue
        for qargs, props in (target[name] or {}).items():
            if props is None or props.error is None or qargs is None or props.error < threshold:
                continue
            if name == "measure":
                out["read-outs"] += 1
            elif len(qargs) == 2:
                couplers.add(tuple(sorted(qargs)))
            elif len(qargs) == 1:
                out["1q gates"] += 1
    out["couplers"] = len(couplers)
    return out


def median_errors(backend: BackendV2) -> dict[str, float | None]:
    """Median 1q, 2q and readout errors over the target's qubits and pairs."""
    import numpy as np

    target = backend.target
    one, two, readout = [], [], []
    for name in target.operation_names:
        if name in _NON_GATES - {"measure"}:
            continue
        for qargs, props in (target[name] or {}).items():
            if props is None or props.error is None or qargs is None:
                continue
            if name == "measure":
                readout.append(props.error)
            elif len(qargs) == 1 and name not in {"rz", "id"}:
                one.append(props.error)
            elif len(qargs) == 2:
                two.append(props.error)

    def med(v: list[float]) -> float | None:
        return float(np.median(v)) if v else None

    return {"median_1q_error": med(one), "median_2q_error": med(two), "median_readout_error": med(readout)}
