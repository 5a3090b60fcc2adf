from __future__ import annotations

import itertools

import numpy as np
import pytest
from qiskit.quantum_info import Statevector

from qfl_qiskit.circuits import build_mma, mma_weight_groups
from qfl_qiskit.errors import CircuitError
from qfl_qiskit.specs import MMASpec


def _evs(qnn, x, w):
    sv = Statevector(qnn.bind(x, w))
    return np.array([sv.expectation_value(op).real for op in qnn.observables])


def _random(qnn, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-np.pi, np.pi, qnn.num_inputs), rng.uniform(-np.pi, np.pi, qnn.num_weights)


PATTERNS = [p for p in itertools.product([True, False], repeat=3) if any(p)]


@pytest.mark.parametrize("present", PATTERNS)
@pytest.mark.parametrize("spec", [MMASpec(), MMASpec(entangler="full", context="plus", readout="pauli",
                                                     encoding_layers=2, fusion_layers=2),
                                  MMASpec(entangler="chain", fusion_layers=2)])
def test_absent_modality_inputs_and_weights_have_no_effect(spec, present):
    qnn = build_mma(spec, present)
    x, w = _random(qnn, 7)
    base = _evs(qnn, x, w)
    q = spec.qubits_per_modality
    for m, here in enumerate(present):
        lo, hi = qnn.metadata["weight_groups"][f"modality_{m}"]
        x2, w2 = x.copy(), w.copy()
        x2[m * q : (m + 1) * q] += 1.3
        w2[lo:hi] += 0.9
        delta_x = np.abs(_evs(qnn, x2, w) - base).max()
        delta_w = np.abs(_evs(qnn, x, w2) - base).max()
        if here:
            assert delta_x > 1e-6 and delta_w > 1e-6, f"present modality {m} has no effect"
        else:
            # the absent block is not in the circuit at all: outputs are bit-for-bit unchanged
            assert delta_x == 0.0 and delta_w == 0.0
            assert not set(qnn.weights[lo:hi]) & set(qnn.circuit.parameters)
            assert not set(qnn.inputs[m * q : (m + 1) * q]) & set(qnn.circuit.parameters)


def test_absent_weights_have_exactly_zero_parameter_shift_gradient():
    spec = MMASpec()
    qnn = build_mma(spec, (True, False, True))
    x, w = _random(qnn, 3)
    lo, hi = qnn.metadata["weight_groups"]["modality_1"]
    grads = []
    for i in range(qnn.num_weights):
        plus, minus = w.copy(), w.copy()
        plus[i] += np.pi / 2
        minus[i] -= np.pi / 2
        grads.append((_evs(qnn, x, plus) - _evs(qnn, x, minus)) / 2)
    grads = np.array(grads)
    assert np.all(grads[lo:hi] == 0.0)
    for name in ("modality_0", "modality_2", "fusion"):  # the present blocks and the fusion layer do train
        a, b = qnn.metadata["weight_groups"][name]
        assert np.abs(grads[a:b]).max() > 1e-3, name


def test_presence_patterns_share_the_weight_layout():
    spec = MMASpec(modalities=4, qubits_per_modality=2)
    full = build_mma(spec)
    partial = build_mma(spec, (False, True, True, False))
    assert full.num_weights == partial.num_weights == mma_weight_groups(spec)["fusion"][1]
    assert [p.name for p in full.weights] == [p.name for p in partial.weights]
    assert full.metadata["weight_groups"] == partial.metadata["weight_groups"]
    assert full.metadata["presence"] == [True] * 4
    assert partial.metadata["presence"] == [False, True, True, False]
    # fusion weights are in both circuits; the absent modalities' are only in the full one
    assert len(partial.circuit.parameters) < len(full.circuit.parameters)


def test_context_state_of_absent_register():
    for context, expected in (("zero", 1.0), ("plus", 0.0)):
        spec = MMASpec(modalities=2, qubits_per_modality=1, fusion_layers=1, context=context)
        qnn = build_mma(spec, (True, False))
        # before fusion the absent register (qubit 1) holds the context state
        prefix = qnn.circuit.copy_empty_like()
        for inst in qnn.circuit.data:
            if inst.operation.name == "cx" and len({qnn.circuit.find_bit(q).index for q in inst.qubits} & {1}):
                break
            prefix.append(inst)
        x, w = _random(qnn, 0)
        bound = prefix.assign_parameters({p: v for p, v in zip(qnn.circuit.parameters,
                                                                 qnn.parameter_values(x, w)) if p in prefix.parameters})
        z1 = Statevector(bound).expectation_value(qnn.observables[1]).real
        assert z1 == pytest.approx(expected, abs=1e-12)


def test_weight_groups_cover_the_vector_without_overlap():
    spec = MMASpec(modalities=3, qubits_per_modality=3, encoding_layers=2, trainable_layers=2, fusion_layers=3)
    groups = mma_weight_groups(spec)
    spans = sorted(groups.values())
    assert spans[0][0] == 0
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert groups["modality_0"][1] - groups["modality_0"][0] == 2 * 2 * 2 * 3
    assert groups["fusion"][1] - groups["fusion"][0] == 3 * 2 * 3 * 3


def test_wrong_presence_length():
    with pytest.raises(CircuitError, match="presence pattern has 2 flags but the spec has 3"):
        build_mma(MMASpec(), (True, False))


@pytest.mark.parametrize(("pattern", "pairs"), [("linear", 2), ("circular", 3), ("full", 3), ("star", 2)])
def test_entangler_patterns_between_registers(pattern, pairs):
    spec = MMASpec(modalities=3, qubits_per_modality=2, entangler=pattern, trainable_layers=1)
    qnn = build_mma(spec)
    within = 3 * 1  # one CX per register per trainable layer (2 qubits, linear)
    assert qnn.circuit.count_ops()["cx"] == within + pairs * 2


def test_chain_entangler_makes_the_circuit_one_path():
    spec = MMASpec(modalities=3, qubits_per_modality=2, entangler="chain")
    qnn = build_mma(spec)
    pairs = {tuple(sorted(qnn.circuit.find_bit(q).index for q in inst.qubits))
             for inst in qnn.circuit.data if inst.operation.num_qubits == 2}
    assert pairs == {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)}  # a path: embeds in heavy-hex without SWAPs
    assert qnn.circuit.count_ops()["cx"] == 3 + 2  # one CX in each register, one between neighbouring registers
