from __future__ import annotations

import io

import numpy as np
import pytest
from qiskit import QuantumCircuit, qpy
from qiskit.quantum_info import Statevector

from qfl_qiskit.circuits import build_mma, build_qfl
from qfl_qiskit.errors import BackendError
from qfl_qiskit.specs import MMASpec, TranspileSpec
from qfl_qiskit.transpile import (
    circuit_metrics,
    compare_backends,
    estimated_success_probability,
    rank_backends,
    resolve_backend,
    transpile_sweep,
)


def test_esp_by_hand_on_a_tiny_isa_circuit():
    backend = resolve_backend("fake_manila")
    t = backend.target
    qc = QuantumCircuit(5)
    qc.sx(0)
    qc.cx(0, 1)
    qc.rz(0.3, 1)
    qc.x(1)
    expected = (1 - t["sx"][(0,)].error) * (1 - t["cx"][(0, 1)].error) * (1 - t["rz"][(1,)].error)
    expected *= (1 - t["x"][(1,)].error)
    no_measure = expected * (1 - t["measure"][(0,)].error) * (1 - t["measure"][(1,)].error)
    assert estimated_success_probability(qc, t) == pytest.approx(no_measure, rel=1e-12)
    qc.measure_all()  # measured qubits count now: all five
    five = expected * np.prod([1 - t["measure"][(q,)].error for q in range(5)])
    assert estimated_success_probability(qc, t) == pytest.approx(five, rel=1e-12)
    m = QuantumCircuit(5, 1)
    m.sx(0)
    m.measure(0, 0)
    assert estimated_success_probability(m, t) == pytest.approx(
        (1 - t["sx"][(0,)].error) * (1 - t["measure"][(0,)].error), rel=1e-12
    )


def test_sweep_never_worse_than_default_and_counts_are_consistent(small_qfl):
    from qfl_qiskit.circuits import build_qfl

    qnn = build_qfl(small_qfl)
    backend = resolve_backend("fake_torino")
    isa, rep = transpile_sweep(qnn.circuit, backend, optimization_level=3, seeds=4)
    assert rep.esp >= rep.baseline_esp and rep.esp_gain >= 1.0
    assert rep.esp == max(c.esp for c in rep.candidates)
    assert {(c.optimization_level, c.seed) for c in rep.candidates} == {(3, s) for s in range(4)}
    again = circuit_metrics(isa, backend.target)
    assert again["two_qubit_count"] == rep.two_qubit_count == isa.count_ops().get("cz", 0)
    assert rep.one_qubit_count + rep.two_qubit_count == sum(rep.op_counts.values())
    assert len(rep.qubits_used) >= qnn.circuit.num_qubits and rep.calibration_time
    assert rep.estimated_duration_s and rep.estimated_duration_s > 0
    assert set(isa.parameters) == set(qnn.circuit.parameters)  # transpiled once, still parameterized
    assert set(isa.count_ops()) <= set(backend.operation_names)


def test_sweep_at_level_one_still_includes_the_default(small_qfl):
    qnn = build_qfl(small_qfl)
    _, rep = transpile_sweep(qnn.circuit, resolve_backend("fake_fez"), optimization_level=1, seeds=2)
    keys = {(c.optimization_level, c.seed) for c in rep.candidates}
    assert keys == {(1, 0), (1, 1), (3, 0)}
    assert rep.esp >= rep.baseline_esp


def test_isa_circuit_computes_the_same_expectations(small_mma):
    """The ISA circuit, bound and restricted to its layout, gives the logical circuit's expectation values."""
    qnn = build_mma(small_mma)
    backend = resolve_backend("generic_7")
    isa, rep = transpile_sweep(qnn.circuit, backend, seeds=2)
    rng = np.random.default_rng(0)
    x, w = rng.uniform(-1, 1, qnn.num_inputs), rng.uniform(-1, 1, qnn.num_weights)
    values = dict(zip(qnn.circuit.parameters, qnn.parameter_values(x, w)))
    logical = Statevector(qnn.circuit.assign_parameters(values))
    physical = Statevector(isa.assign_parameters({p: values[p] for p in isa.parameters}))
    layout = isa.layout.final_index_layout()
    for op in qnn.observables:
        mapped = op.apply_layout(layout, num_qubits=isa.num_qubits)
        assert physical.expectation_value(mapped).real == pytest.approx(logical.expectation_value(op).real,
                                                                        abs=1e-9)
    buf = io.BytesIO()
    qpy.dump(isa, buf)
    buf.seek(0)
    (back,) = qpy.load(buf)
    assert back.layout is not None and back.count_ops() == isa.count_ops()


def test_compare_ranks_by_esp_and_checks_everything_first(small_qfl):
    qnn = build_qfl(small_qfl)
    pairs = compare_backends(qnn.circuit, TranspileSpec(backends=("fake_manila", "fake_torino"), seeds=2))
    reports = [r for _, r in pairs]
    assert reports == rank_backends(reports)
    assert reports[0].esp >= reports[1].esp
    seen = []
    with pytest.raises(BackendError, match="circuit needs 4 qubits but generic_2 has 2"):
        compare_backends(qnn.circuit, TranspileSpec(backends=("fake_manila", "generic_2")),
                         on_backend_done=seen.append)
    assert seen == []  # failed before transpiling anything
    with pytest.raises(BackendError, match="named twice"):
        compare_backends(qnn.circuit, TranspileSpec(backends=("fake_fez", "fake_fez")))


def test_too_wide_circuit():
    qnn = build_mma(MMASpec(modalities=4, qubits_per_modality=2))
    with pytest.raises(BackendError, match="needs 8 qubits but fake_manila has 5"):
        transpile_sweep(qnn.circuit, resolve_backend("fake_manila"))
