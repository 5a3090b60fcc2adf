"""What a Runtime job costs: shots per binding, QPU seconds from the backend's timing, the budget check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError


#: Repetition delay (s) when the backend configuration gives no ``default_rep_delay`` (IBM's usual 250 us).
DEFAULT_REP_DELAY = 250e-6
class CostLimitError(ExecutionError):
    """The estimated QPU time exceeds ``--max-qpu-seconds``; nothing was submitted or written."""


def shots_per_binding(precision: float | None, shots: int | None) -> int:
    """Shots Runtime takes per binding and measurement basis: ``shots``, else ceil(1 / precision^2)."""
    if shots is not None:
        return int(shots)
    return int(math.ceil(1.0 / (precision if precision is not None else 1 / 64) ** 2))


def estimate_cost(v2_pubs: Sequence[tuple], backend: Any, *, shots: int,
                  executed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts and an estimate of QPU seconds for ISA PUBs, with the shots Runtime really runs.

    Formula: ``qpu_seconds = sum over PUBs and noise factors f of B * G * S * (rep_delay + f * T)`` with B the
    bindings of the PUB, G the qubit-wise commuting groups of its observables' Pauli terms (one measurement basis
    each), S the shots Runtime runs per binding and basis (``executed["per_binding"]``, see
    :func:`~qfl_qiskit.runtime.service.executed_shots`: twirling rounds the requested shots up to whole
    randomizations), T the ISA circuit's scheduled duration on the backend target plus the longest read-out of
    its active qubits (folded f times under ZNE), and ``rep_delay`` the backend configuration's
    ``default_rep_delay`` (else :data:`DEFAULT_REP_DELAY`). It leaves out Runtime's per-job overhead
    (compilation, loading: seconds per job) and TREX's calibration circuits, so it is a lower bound.

    Args:
        v2_pubs: ISA PUBs ``(circuit, observables, values)``.
        backend: The backend (durations, repetition delay).
        shots: Shots requested per binding and basis.
        executed: :func:`~qfl_qiskit.runtime.service.executed_shots` of the job's resolved options (default:
            exactly ``shots``, one noise factor).
    """
    executed = executed or {"requested": shots, "num_randomizations": 1, "shots_per_randomization": shots,
                            "per_binding": shots, "noise_factors": [1.0], "per_binding_all_factors": shots}
    per_shot = executed["per_binding"]
    factors = executed["noise_factors"]
    rep_delay = _rep_delay(backend)
    rows, total = [], 0.0
    for isa, obs, values in v2_pubs:
        bindings = int(np.prod(np.asarray(values).shape[:-1], dtype=int))
        ops = [op for op in np.asarray(obs, dtype=object).ravel()]
        paulis = SparsePauliOp.sum(ops).simplify(atol=0).paulis if ops else None
        groups = len(paulis.group_qubit_wise_commuting()) if paulis is not None else 1
        duration = _duration(isa, backend)
        seconds = sum(bindings * groups * per_shot * (rep_delay + f * (duration or 0.0)) for f in factors)
        total += seconds
        rows.append({"circuit": isa.name, "bindings": bindings, "observables": len(ops),
                     "measurement_groups": groups, "duration_s": duration, "qpu_seconds": seconds})
    return {"pubs": len(v2_pubs), "circuits": len({id(p[0]) for p in v2_pubs}),
            "bindings": sum(r["bindings"] for r in rows), "shots_per_binding": per_shot,
            "requested_shots_per_binding": shots, "shots_executed": executed,
            "total_shots": sum(r["bindings"] * r["measurement_groups"] for r in rows) * per_shot * len(factors),
            "rep_delay_s": rep_delay, "qpu_seconds": total, "per_pub": rows,
            "formula": "sum_pubs,noise_factors bindings * measurement_groups * executed_shots * "
                       "(rep_delay + factor * (circuit_duration + readout))"}


def _rep_delay(backend: Any) -> float:
    try:
        value = getattr(backend.configuration(), "default_rep_delay", None)
    except Exception:  # backends without a configuration (generic, custom)
        value = None
    return float(value) if value else DEFAULT_REP_DELAY


def _duration(isa: QuantumCircuit, backend: Any) -> float | None:
    from qfl_qiskit.transpile import active_qubits

    try:
        gates = float(isa.estimate_duration(backend.target, unit="s"))
    except Exception:  # targets without durations cannot be scheduled
        return None
    readout = 0.0
    if "measure" in backend.target.operation_names:
        for q in active_qubits(isa):
            props = backend.target["measure"].get((q,))
            if props is not None and props.duration:
                readout = max(readout, float(props.duration))
    return gates + readout


def check_budget(cost: dict[str, Any], max_qpu_seconds: float | None) -> None:
    """Refuse a job whose estimate (Runtime's own where it gave one, else the formula) exceeds the limit.

    Raises:
        CostLimitError: Over the limit; nothing was submitted or written.
    """
    limit_on = cost["runtime_estimate_s"] if cost.get("runtime_estimate_s") is not None else cost["qpu_seconds"]
    if max_qpu_seconds is not None and limit_on > max_qpu_seconds:
        raise CostLimitError(f"estimated QPU time {limit_on:.3f} s exceeds --max-qpu-seconds {max_qpu_seconds:g}; "
                             "nothing submitted (fewer bindings, fewer shots or a larger limit)")
