from __future__ import annotations


import numpy as np
import pytest
from qiskit import QuantumCircuit, qasm3, qpy
from qiskit.circuit.library import UCRYGate
from qiskit.quantum_info import Statevector

from qfl_qiskit.circuits import build_qfl, export_circuit, qfl_layout
from qfl_qiskit.circuits.qfl import CONSTANT_SLOT_ANGLE
from qfl_qiskit.specs import QFLSpec


def _expectations(qnn, x, w):
    sv = Statevector(qnn.bind(x, w))
    return np.array([sv.expectation_value(op).real for op in qnn.observables])


@pytest.mark.parametrize(("m", "d", "k"), [(1, 1, 1), (2, 2, 3), (6, 2, 4), (3, 5, 4), (4, 4, 5), (1, 7, 3)])
def test_register_sizes(m, d, k):
    spec = QFLSpec(modalities=m, features=d)
    assert qfl_layout(spec) == (k, k + 1)
    assert 2**k >= m * d + 1 > 2 ** (k - 1)  # room for every slot plus the constant slot, and no more qubits
    qnn = build_qfl(spec)
    assert qnn.circuit.num_qubits == k + 1
    assert qnn.num_inputs == m * d


@pytest.mark.parametrize(("p", "l", "ent"), [(1, 1, "linear"), (2, 1, "full"), (3, 2, "circular"), (4, 3, "linear")])
def test_weight_count_is_linear_in_degree(p, l, ent):
    spec = QFLSpec(modalities=2, features=3, degree=p, layers=l, entanglement=ent)
    qnn = build_qfl(spec)
    n = qnn.circuit.num_qubits
    assert qnn.num_weights == p * l * 3 * n
    assert set(qnn.weights) <= set(qnn.circuit.parameters)  # every weight is used
    assert set(qnn.inputs) <= set(qnn.circuit.parameters)
    groups = qnn.metadata["weight_groups"]
    assert len(groups) == p and groups[f"U{p}"][1] == qnn.num_weights


def test_encoding_matches_ucrygate_on_the_value_qubit(small_qfl):
    """One S(x) with no trainable layers equals H on the index register then UCRYGate over the slots."""
    qnn = build_qfl(small_qfl.model_copy(update={"degree": 1}))
    x = np.random.default_rng(0).uniform(-np.pi, np.pi, qnn.num_inputs)
    k = len(qnn.metadata["index_qubits"])
    angles = list(x) + [CONSTANT_SLOT_ANGLE] * (2**k - len(x))
    ref = QuantumCircuit(k + 1)
    ref.h(range(k))
    ref.append(UCRYGate(angles), [k, *range(k)])
    # state right after S(x): zero the trainable block's angles and drop its CX chain by comparing slot marginals
    enc = QuantumCircuit(k + 1)
    enc.h(range(k))
    from qfl_qiskit.circuits.ucry import append_ucry

    append_ucry(enc, angles, controls=list(range(k)), target=k)
    assert Statevector(enc).equiv(Statevector(ref))
    # and the builder's circuit starts with exactly that encoding
    prefix = qnn.bind(x, np.zeros(qnn.num_weights)).copy_empty_like()
    for inst in qnn.bind(x, np.zeros(qnn.num_weights)).data[: len(enc.data)]:
        prefix.append(inst)
    assert Statevector(prefix).equiv(Statevector(ref))


def test_observables_are_fixed_by_the_seed_and_distinct():
    a, b = build_qfl(QFLSpec()), build_qfl(QFLSpec())
    c = build_qfl(QFLSpec(observable_seed=7))
    labels = a.metadata["observables"]
    assert labels == b.metadata["observables"] != c.metadata["observables"]
    assert len(set(labels)) == len(labels) == 8
    assert all(set(lbl) != {"I"} and len(lbl) == a.circuit.num_qubits for lbl in labels)


def test_builder_is_deterministic_and_outputs_depend_on_every_modality(small_qfl):
    qnn = build_qfl(small_qfl)
    rng = np.random.default_rng(1)
    x, w = rng.uniform(-np.pi, np.pi, qnn.num_inputs), rng.uniform(-np.pi, np.pi, qnn.num_weights)
    base = _expectations(qnn, x, w)
    assert np.allclose(base, _expectations(build_qfl(small_qfl), x, w))
    for i in range(qnn.num_inputs):
        x2 = x.copy()
        x2[i] += 0.7
        assert np.max(np.abs(_expectations(qnn, x2, w) - base)) > 1e-4, f"feature {i} has no effect"


@pytest.mark.parametrize("degree", [1, 2, 3, 4])
def test_expectations_are_trigonometric_polynomials_of_degree_p(degree):
    """Vary one feature over [0, 4*pi) (RY(x) gives half-integer frequencies, so 4*pi is one period).

    Frequency f in x sits at FFT index 2f. Frequency P must carry power; nothing above P may.
    """
    spec = QFLSpec(modalities=2, features=2, degree=degree, layers=1, observables=4, observable_seed=3)
    qnn = build_qfl(spec)
    rng = np.random.default_rng(100 + degree)
    x0 = rng.uniform(-np.pi, np.pi, qnn.num_inputs)
    w = rng.uniform(-np.pi, np.pi, qnn.num_weights)
    grid = np.arange(32) * 4 * np.pi / 32
    samples = []
    for t in grid:
        x = x0.copy()
        x[1] = t
        samples.append(_expectations(qnn, x, w))
    spectrum = np.abs(np.fft.rfft(np.array(samples), axis=0) / len(grid)) ** 2  # (freq index, observable)
    power = spectrum.sum(axis=1)
    assert power[2 * degree] > 1e-20, f"no power at frequency P={degree}"
    assert power[2 * degree + 1 :].max() < 1e-26, "power above frequency P"


def test_export_round_trips(tmp_path, small_qfl):
    qnn = build_qfl(small_qfl)
    qpy_path, qasm_path = export_circuit(qnn.circuit, tmp_path / qnn.metadata["spec_id"])
    with open(qpy_path, "rb") as f:
        (back,) = qpy.load(f)
    assert back == qnn.circuit
    assert set(p.name for p in back.parameters) == set(p.name for p in qnn.circuit.parameters)
    text = qasm_path.read_text()
    assert text.startswith("OPENQASM 3") and "input float[64] _theta_0_" in text
    assert qasm3.loads(text).num_qubits == qnn.circuit.num_qubits
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([qpy_path.name, qasm_path.name])  # no temp files


def test_parameter_values_follow_circuit_order(small_qfl):
    qnn = build_qfl(small_qfl)
    x = np.arange(qnn.num_inputs) + 0.5
    w = -np.arange(qnn.num_weights) - 0.25
    vals = qnn.parameter_values(np.stack([x, 2 * x]), w)
    assert vals.shape == (2, len(qnn.circuit.parameters))
    lookup = {**{p: x[i] for i, p in enumerate(qnn.inputs)}, **{p: w[i] for i, p in enumerate(qnn.weights)}}
    assert np.allclose(vals[0], [lookup[p] for p in qnn.circuit.parameters])
    with pytest.raises(ValueError, match="expected inputs"):
        qnn.parameter_values(np.zeros(qnn.num_inputs + 1), w)


def _interactions(circuit):
    return {tuple(sorted(circuit.find_bit(q).index for q in inst.qubits))
            for inst in circuit.data if inst.operation.num_qubits == 2}


def test_star_entanglement_keeps_the_whole_circuit_a_star_on_the_value_qubit():
    spec = QFLSpec(modalities=3, features=2, degree=2, entanglement="star")
    qnn = build_qfl(spec)
    value = qnn.metadata["value_qubit"]
    pairs = _interactions(qnn.circuit)
    assert pairs == {(i, value) for i in qnn.metadata["index_qubits"]}  # every CX touches the value qubit
    linear = build_qfl(QFLSpec(modalities=3, features=2, degree=2))
    assert _interactions(linear.circuit) > pairs  # the chain adds index-index pairs
    assert qnn.num_weights == linear.num_weights
