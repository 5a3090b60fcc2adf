"""``measurement``: the QFL read-out. Z on every qubit (computational basis) against K random Pauli strings and
against every weight-1 and weight-2 Pauli, on one circuit and one cross-modal task.

The QFL paper reads out fixed random Pauli strings: they are informationally complete as K grows (the Pauli
strings span the operators) and, the paper says, beat a computational-basis read-out. Each cell trains the same
QFL circuit (bare layer, linear head) with one read-out on a degree-2 cross-modal
:func:`~qfl_qiskit.data.synthetic_polynomial` task and reports held-out accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import time
from itertools import combinations, product
from typing import Any

import numpy as np

NAME = "measurement"
CLAIM = ("random Pauli measurements are informationally complete and beat computational-basis (Z) read-out; "
         "accuracy grows with the number K of Pauli strings")

#: Settings that only choose which cells exist (left out of the cells' fingerprints).
PLAN_KEYS = ("readouts",)

def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"modalities": 3, "features": 1, "degree": 2, "target": 2, "samples": 300, "terms": 3,
                "readouts": ["z", "pauli-4", "pauli-16", "local"], "epochs": 20, "batch_size": 32, "lr": 0.05,
                "seeds": [0, 1]}
    return {"modalities": 3, "features": 2, "degree": 2, "target": 2, "samples": 1000, "terms": 4,
            "readouts": ["z", "pauli-4", "pauli-8", "pauli-16", "pauli-32", "pauli-64", "local"], "epochs": 60,
            "batch_size": 32, "lr": 0.05, "seeds": [0, 1, 2, 3, 4]}


def describe(s: dict[str, Any]) -> str:
    """The setting in one line, for the claims table."""
    return (f"degree-{s['target']} cross-modal synthetic task, {s['modalities']} modalities x {s['features']} "
            f"features, QFL P = {s['degree']}; read-outs {', '.join(s['readouts'])}; {len(s['seeds'])} seeds")


def plan(settings: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    return [{"id": f"{r}-seed{s}", "readout": r, "seed": s} for s in seeds for r in settings["readouts"]]


def local_paulis(num_qubits: int) -> tuple[Any, ...]:
    """Every Pauli string of weight 1 and 2 (3n + 9 n(n-1)/2 of them)."""
    from qiskit.quantum_info import SparsePauliOp

    out = [SparsePauliOp.from_sparse_list([(p, [q], 1.0)], num_qubits) for q in range(num_qubits) for p in "XYZ"]
    out += [SparsePauliOp.from_sparse_list([(a + b, [q0, q1], 1.0)], num_qubits)
            for q0, q1 in combinations(range(num_qubits), 2) for a, b in product("XYZ", repeat=2)]
    return tuple(out)


def readout(name: str, num_qubits: int, *, seed: int) -> tuple[Any, ...]:
    """The observables of a read-out named ``z``, ``pauli-K`` or ``local``."""
    from qfl_qiskit.circuits.observables import random_pauli_strings, z_on_each_qubit

    if name == "z":
        return z_on_each_qubit(num_qubits)
    if name == "local":
        return local_paulis(num_qubits)
    return random_pauli_strings(num_qubits, int(name.split("-")[1]), seed=seed)


def run_cell(settings_json: str, cell: dict[str, Any]) -> dict[str, Any]:
    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.data import synthetic_polynomial
    from qfl_qiskit.specs import QFLSpec
    from qfl_qiskit.studies.reproduce.common import train_layer

    s = json.loads(settings_json)
    t0 = time.perf_counter()
    data = synthetic_polynomial(num_modalities=s["modalities"], features=s["features"], degree=s["target"],
                                n=s["samples"], seed=cell["seed"], terms=s["terms"])
    qnn = build_qfl(QFLSpec(modalities=s["modalities"], features=s["features"], degree=s["degree"]))
    qnn = dataclasses.replace(qnn, observables=readout(cell["readout"], qnn.circuit.num_qubits, seed=1234))
    result = train_layer(qnn, data, epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=cell["seed"])
    return {**cell, "result": {**result, "seconds": time.perf_counter() - t0}}


def summarize(settings: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for r in settings["readouts"]:
        vals = [c["result"]["test_accuracy"] for c in cells if c["readout"] == r]
        outputs = next(c["result"]["outputs"] for c in cells if c["readout"] == r)
        rows.append({"readout": r, "outputs": outputs, "test_accuracy_mean": float(np.mean(vals)),
                     "test_accuracy_std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                     "values": vals})
    qubits = cells[0]["result"]["qubits"]
    return {"rows": rows, "qubits": qubits, "seeds": len(settings["seeds"])}


#: The gain over Z that counts, in held-out accuracy.
MARGIN = 0.03


def verdict(summary: dict[str, Any]) -> dict[str, str]:
    """Holds when the best random-Pauli read-out beats Z by at least :data:`MARGIN` and by more than twice the
    larger seed spread; does not hold when Z is at least as good as every random-Pauli read-out; inconclusive
    otherwise, and with one seed."""
    rows = {r["readout"]: r for r in summary["rows"]}
    z = rows.get("z")
    paulis = [r for name, r in rows.items() if name.startswith("pauli-")]
    if z is None or not paulis:
        return {"verdict": "inconclusive", "why": "needs the z read-out and at least one pauli-K read-out"}
    best = max(paulis, key=lambda r: r["test_accuracy_mean"])
    gain = best["test_accuracy_mean"] - z["test_accuracy_mean"]
    spread = 2 * max(best["test_accuracy_std"], z["test_accuracy_std"])
    text = (f"best random Pauli read-out {best['readout']} {best['test_accuracy_mean']:.3f} against Z on "
            f"{summary['qubits']} qubits {z['test_accuracy_mean']:.3f} (gain {gain:+.3f}, 2 std {spread:.3f})")
    if summary["seeds"] < 2:
        return {"verdict": "inconclusive", "why": f"one seed, no spread to judge against; {text}"}
    if gain >= MARGIN and gain > spread:
        return {"verdict": "holds", "why": text}
    if gain <= 0:
        return {"verdict": "does not hold", "why": text}
    return {"verdict": "inconclusive", "why": text}
