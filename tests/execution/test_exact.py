from __future__ import annotations

from qfl_qiskit.execution import estimate

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, ParameterVector
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from qfl_qiskit.circuits import build_mma, build_qfl
from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.exact import ExactEstimator
from qfl_qiskit.execution.torch_sv import UnsupportedGateError, compile_circuit, pauli_expectations
from qfl_qiskit.specs import MMASpec, QFLSpec


def _reference_evs(circuit, observables, values):
    out = []
    for v in values.reshape(-1, values.shape[-1]):
        sv = Statevector(circuit.assign_parameters(v) if circuit.num_parameters else circuit)
        out.append([sv.expectation_value(op).real for op in observables])
    return np.array(out).reshape(*values.shape[:-1], len(observables))


@pytest.mark.parametrize("seed", range(12))
def test_random_circuits_match_statevector(seed):
    qc = random_circuit(5, 7, max_operands=3, seed=seed)  # includes 3-qubit gates unrolled by definition
    state = compile_circuit(qc).statevector(torch.zeros(0, dtype=torch.float64))
    assert np.allclose(state.numpy(), Statevector(qc).data, atol=1e-10)


@pytest.mark.parametrize(
    "qnn",
    [build_qfl(QFLSpec(modalities=2, features=2, degree=2)), build_qfl(QFLSpec(modalities=3, features=3, degree=3,
                                                                             entanglement="full")),
     build_mma(MMASpec()), build_mma(MMASpec(readout="pauli", context="plus"), (False, True, True))],
    ids=["qfl", "qfl-full", "mma", "mma-partial"],
)
def test_builder_circuits_match_statevector(qnn):
    rng = np.random.default_rng(0)
    values = qnn.parameter_values(rng.uniform(-np.pi, np.pi, (3, qnn.num_inputs)),
                                  rng.uniform(-np.pi, np.pi, qnn.num_weights))
    res = estimate(ExactEstimator(), [(qnn.circuit, qnn.observables, values)])[0]
    assert res.evs.shape == (3, len(qnn.observables))
    assert np.allclose(res.evs, _reference_evs(qnn.circuit, qnn.observables, values), atol=1e-10)
    assert np.all(res.stds == 0)


GATES_1Q = ["rx", "ry", "rz", "p", "h", "s", "t", "sx", "y", "x", "sdg"]
GATES_2Q = ["cx", "cz", "rzz", "rxx", "ryy", "crx", "cry", "crz", "cp", "swap", "ecr", "cy"]


@st.composite
def param_circuits(draw):
    n = draw(st.integers(1, 4))
    p = draw(st.integers(1, 4))
    theta = ParameterVector("t", p)
    qc = QuantumCircuit(n)
    for _ in range(draw(st.integers(1, 14))):
        two = n > 1 and draw(st.booleans())
        name = draw(st.sampled_from(GATES_2Q if two else GATES_1Q))
        qubits = draw(st.permutations(range(n)))[: 2 if two else 1]
        gate = getattr(qc, name)
        if name in {"rx", "ry", "rz", "p", "rzz", "rxx", "ryy", "crx", "cry", "crz", "cp"}:
            coeffs = draw(st.lists(st.sampled_from([-2.0, -0.5, 0.25, 1.0, 3.0]), min_size=p, max_size=p))
            angle = sum(c * t for c, t in zip(coeffs, theta)) + draw(st.floats(-3, 3))
            gate(angle, *qubits)
        else:
            gate(*qubits)
    for t in theta:  # make sure every parameter is in the circuit
        qc.ry(t, 0)
    values = np.array(draw(st.lists(st.floats(-4, 4), min_size=p, max_size=p)))
    return qc, values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(param_circuits())
def test_property_linear_combination_angles_match_statevector(case):
    qc, values = case
    state = compile_circuit(qc).statevector(torch.tensor(values))
    ref = Statevector(qc.assign_parameters(values)).data
    assert np.allclose(state.numpy(), ref, atol=1e-10)


def test_multi_term_observables_with_y_and_complex_coefficients():
    qc = random_circuit(4, 5, seed=11)
    ops = [SparsePauliOp.from_list([("XYZI", 0.3), ("YYIX", 0.5 - 1.2j), ("ZZZZ", 2.0)]),
           SparsePauliOp("IYIY"), SparsePauliOp.from_list([("XIII", 1.0), ("IIIX", -1.0)])]
    state = torch.tensor(Statevector(qc).data).unsqueeze(0)
    ours = pauli_expectations(state, ops, 4).numpy()[0]
    ref = [Statevector(qc).expectation_value(op).real for op in ops]
    assert np.allclose(ours, ref, atol=1e-12)


def test_batch_shapes_agree():
    qnn = build_mma(MMASpec())
    est = ExactEstimator()
    rng = np.random.default_rng(3)
    values = qnn.parameter_values(rng.uniform(-1, 1, (2, 3, qnn.num_inputs)), rng.uniform(-1, 1, qnn.num_weights))
    full = estimate(est, [(qnn.circuit, qnn.observables, values)])[0].evs
    assert full.shape == (2, 3, len(qnn.observables))
    flat = estimate(est, [(qnn.circuit, qnn.observables, values.reshape(6, -1))])[0].evs
    single = estimate(est, [(qnn.circuit, qnn.observables, values[1, 2])])[0].evs
    assert np.allclose(full.reshape(6, -1), flat) and np.allclose(full[1, 2], single)
    assert single.shape == (len(qnn.observables),)


def test_complex64_is_close():
    qnn = build_qfl(QFLSpec(modalities=2, features=2))
    values = qnn.parameter_values(np.full(qnn.num_inputs, 0.3), np.linspace(-1, 1, qnn.num_weights))
    a = estimate(ExactEstimator(), [(qnn.circuit, qnn.observables, values)])[0].evs
    b = estimate(ExactEstimator(precision="complex64"), [(qnn.circuit, qnn.observables, values)])[0].evs
    assert np.allclose(a, b, atol=1e-5) and not np.array_equal(a, b)


def test_unsupported_operations_are_named():
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with pytest.raises(UnsupportedGateError, match="'measure'"):
        compile_circuit(qc)
    opaque = QuantumCircuit(1)
    opaque.append(Gate("foo", 1, []), [0])
    with pytest.raises(UnsupportedGateError, match="cannot simulate gate 'foo'"):
        compile_circuit(opaque)


def test_bad_values_and_observables():
    qnn = build_qfl(QFLSpec(modalities=2, features=2))
    est = ExactEstimator()
    p = qnn.circuit.num_parameters
    with pytest.raises(ExecutionError, match=f"circuit '{qnn.circuit.name}' has {p} parameters"):
        estimate(est, [(qnn.circuit, qnn.observables, np.zeros(p + 1))])
    with pytest.raises(ExecutionError, match="NaN or inf"):
        estimate(est, [(qnn.circuit, qnn.observables, np.full(p, np.nan))])
    with pytest.raises(ExecutionError, match="observable on 3 qubits for circuit .* of 4 qubits"):
        estimate(est, [(qnn.circuit, [SparsePauliOp("ZZZ")], np.zeros(p))])
    with pytest.raises(ExecutionError, match="unknown precision"):
        ExactEstimator(precision="float16")


def test_real_gate_circuits_run_in_real_arithmetic_with_the_same_values():
    from benchmarks.bench_gradients import reference

    qnn = reference(5, 2)
    compiled = compile_circuit(qnn.circuit)
    assert compiled.real_path
    assert not compile_circuit(build_qfl(QFLSpec(modalities=2, features=2)).circuit).real_path  # has rx, rz
    values = qnn.parameter_values(np.random.default_rng(9).uniform(-2, 2, (3, 5)), np.linspace(-2, 2, qnn.num_weights))
    ops = [SparsePauliOp("IIIIZ"), SparsePauliOp.from_list([("XYYZI", 0.5j), ("YIIIY", 1.0), ("XXIII", -0.3)])]
    evs = compiled.expectations(torch.tensor(values), ops).numpy()
    assert np.allclose(evs, _reference_evs(qnn.circuit, ops, values), atol=1e-12)
    state = compiled.statevector(torch.tensor(values[0]))
    assert state.is_complex()
    assert np.allclose(state.numpy(), Statevector(qnn.circuit.assign_parameters(values[0])).data, atol=1e-12)
