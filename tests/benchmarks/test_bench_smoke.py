"""The benchmark script runs end to end at tiny size, and every stack in it computes the same gradient.

This checks the benchmark's peers are set up to compute the same thing (a wrong PennyLane or
qiskit-machine-learning set-up would show as a gradient difference); it measures nothing.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
from qiskit.circuit.library import real_amplitudes
from qiskit.quantum_info import Operator

from benchmarks.bench_gradients import main, plain_gates, reference
from qfl_qiskit.circuits import build_qfl
from qfl_qiskit.specs import QFLSpec


def test_reference_is_real_amplitudes():
    qnn = reference(4, 2)
    lib = real_amplitudes(4, reps=2)
    w = np.random.default_rng(0).uniform(-1, 1, lib.num_parameters)
    ours = qnn.circuit.assign_parameters({**dict(zip(qnn.inputs, [0.0] * 4)), **dict(zip(qnn.weights, w))})
    assert Operator(ours).equiv(Operator(lib.assign_parameters(w)))


def test_quick_run_all_stacks_agree(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record = main(["--quick", "--out", str(tmp_path)])
    peers = record["payload"]["peers"]
    names = [p["stack"] for p in peers]
    assert any("exact" in n for n in names) and any("Aer" in n for n in names)
    assert any("qiskit-machine-learning" in n for n in names)
    for p in peers:
        assert p["max_grad_diff_vs_exact"] < 1e-5, p
        assert p["seconds"] > 0
    (written,) = tmp_path.glob("benchmark_gradients_*.json")
    assert json.loads(written.read_text())["record_type"] == "benchmark_gradients"
    out = capsys.readouterr().out
    assert "x slower than exact" in out and "QFL circuits" in out
    qfl = record["payload"]["qfl"]
    assert [(r["modalities"], r["features"], r["degree"]) for r in qfl] == [(2, 1, 1), (3, 2, 2)]
    try:
        import pennylane  # noqa: F401  (the bench extra)
    except ImportError:  # without it the table says so instead of a ratio
        assert all("ratio" not in r for r in qfl) and "not installed" in out
    else:  # lightning adjoint on the same gate list computes the same gradient
        for r in qfl:
            assert r["max_grad_diff"] < 1e-10 and r["ratio"] > 0, r


def test_plain_gates_are_the_circuit():
    """The QFL table's gate list (what PennyLane runs) rebuilds the circuit's operator at random parameters."""
    from qiskit import QuantumCircuit

    qnn = build_qfl(QFLSpec(modalities=3, features=2, degree=2))
    gates, p = plain_gates(qnn)
    assert len(gates) == len(qnn.circuit.data)
    values = np.random.default_rng(3).uniform(-np.pi, np.pi, p)
    rebuilt = QuantumCircuit(qnn.circuit.num_qubits)
    for name, qubits, row, const in gates:
        angles = [float(row @ values + const)] if name in ("rx", "ry", "rz") else []
        getattr(rebuilt, name)(*angles, *qubits)
    bound = qnn.circuit.assign_parameters(dict(zip([*qnn.inputs, *qnn.weights], values)))
    assert np.allclose(Operator(rebuilt).data, Operator(bound).data, atol=1e-12)
