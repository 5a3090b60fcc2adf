"""Digital dynamical decoupling on scheduled ISA circuits, with mitiq's DDD rules as the pulse sequences.

mitiq's ``insert_ddd_sequences`` fills idle *moments* of a Cirq circuit; on a device what is idle is *time*. So the
ISA circuit is scheduled with the backend's gate durations (ALAP) and Qiskit's ``PadDynamicalDecoupling`` fills each
idle window with the sequence the mitiq rule defines (``mitiq.ddd.rules.xx`` -> X X, ``yy`` -> Y Y, ``xyxy`` ->
X Y X Y), spaced as the pass does. Y is not a basis gate of IBM devices, so rules with Y are refused here (they
map onto Runtime's XY4 on hardware, see :func:`to_runtime_options`).

Idle time only costs fidelity in a simulation that puts noise on it: Aer's device noise models do (thermal
relaxation on delays of scheduled circuits), so the fair baseline for DDD is the same circuit scheduled with plain
delays (:func:`schedule_idle`).
"""

from __future__ import annotations

from typing import Any

from qiskit import QuantumCircuit

from qfl_qiskit.errors import CircuitError


def rule_sequence(rule: str) -> list[Any]:
    """The gates of a mitiq DDD rule, as Qiskit gates (identities dropped: spacing is the scheduler's job)."""
    from mitiq.ddd import rules
    from qiskit.circuit.library import XGate

    fn = {"xx": rules.xx, "yy": rules.yy, "xyxy": rules.xyxy}.get(rule)
    if fn is None:
        raise CircuitError(f"unknown DDD rule '{rule}'; use xx, yy or xyxy")
    names = [str(op.gate) for op in fn(8).all_operations() if str(op.gate) != "I"]
    if any(n != "X" for n in names):
        raise CircuitError(f"DDD rule '{rule}' uses Y, which IBM devices do not have as a gate; use xx here "
                           "(on hardware, to_runtime_options maps xyxy onto Runtime's XY4)")
    return [XGate() for _ in names]


def _run(circuit: QuantumCircuit, target: Any, pad: Any) -> QuantumCircuit:
    from qiskit.transpiler import PassManager
    from qiskit.transpiler.passes import ALAPScheduleAnalysis

    out = PassManager([ALAPScheduleAnalysis(target=target), pad]).run(circuit)
    out._layout = circuit.layout  # scheduling does not move qubits; keep the ISA layout for observables
    return out


def schedule_idle(circuit: QuantumCircuit, target: Any) -> QuantumCircuit:
    """``circuit`` scheduled ALAP with explicit delays in its idle windows (the no-DD baseline)."""
    from qiskit.transpiler.passes import PadDelay

    return _run(circuit, target, PadDelay(target=target))


def insert_dd(circuit: QuantumCircuit, target: Any, rule: str = "xx") -> QuantumCircuit:
    """``circuit`` scheduled ALAP with the rule's decoupling sequence in every idle window long enough for it."""
    from qiskit.transpiler.passes import PadDynamicalDecoupling

    return _run(circuit, target, PadDynamicalDecoupling(target=target, dd_sequence=rule_sequence(rule)))
