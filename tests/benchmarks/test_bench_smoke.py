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

from benchmarks.bench_gradients import main, reference


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
    assert "x slower than exact" in capsys.readouterr().out
