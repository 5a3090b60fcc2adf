"""Noise scaling on parameterized ISA circuits agrees with mitiq's scaling on bound circuits."""

from __future__ import annotations

import numpy as np
import pytest
from mitiq.zne.scaling import fold_gates_at_random as mitiq_random
from mitiq.zne.scaling import fold_global as mitiq_global
from mitiq.zne.scaling import insert_id_layers as mitiq_identity
from qiskit.quantum_info import Operator

from qfl_qiskit.circuits import build_qfl
from qfl_qiskit.errors import CircuitError
from qfl_qiskit.mitigation import fold_gates_at_random, fold_global, insert_identity_layers
from qfl_qiskit.specs import QFLSpec
from qfl_qiskit.transpile import resolve_backend, transpile_sweep


@pytest.fixture(scope="module")
def isa():
    qnn = build_qfl(QFLSpec(modalities=2, features=1, observables=3))
    # the preset ISA circuit these mitiq comparisons were written for (a fixed circuit, not a transpiler test)
    circuit, _ = transpile_sweep(qnn.circuit, resolve_backend("fake_manila"), seeds=1, strategy="preset")
    return circuit


def noisy_gates(circuit):
    """Gates that carry noise on IBM devices (rz is virtual)."""
    return sum(v for k, v in circuit.count_ops().items() if k not in ("rz", "barrier"))


CASES = [
    (fold_global, lambda c, s: mitiq_global(c, s)),
    (lambda c, s: fold_gates_at_random(c, s, seed=3), lambda c, s: mitiq_random(c, s, seed=3)),
    (lambda c, s: insert_identity_layers(c, s, seed=3), lambda c, s: mitiq_identity(c, s)),
]


@pytest.mark.parametrize("case", range(3), ids=["global", "random", "identity"])
@pytest.mark.parametrize("scale", [1.0, 2.0, 3.0, 3.7, 5.0])
def test_same_unitary_and_gate_count_as_mitiq(isa, case, scale):
    ours_fn, mitiq_fn = CASES[case]
    values = np.random.default_rng(0).uniform(-2, 2, isa.num_parameters)
    bound = isa.assign_parameters(values)
    ours = ours_fn(isa, scale)
    assert ours.num_parameters == isa.num_parameters and ours.layout is not None  # folded once, binds later
    assert set(ours.count_ops()) <= {"rz", "sx", "x", "cx", "id"}  # still in the device basis
    ours_bound = ours.assign_parameters(values)
    assert Operator(ours_bound).equiv(Operator(bound))
    theirs = mitiq_fn(bound, scale)
    assert abs(noisy_gates(ours_bound) - noisy_gates(theirs)) <= 0.02 * noisy_gates(theirs) + 2
    if scale > 1:
        assert noisy_gates(ours_bound) > noisy_gates(bound)


def test_random_folding_is_seeded(isa):
    a, b = fold_gates_at_random(isa, 2.0, seed=1), fold_gates_at_random(isa, 2.0, seed=1)
    c = fold_gates_at_random(isa, 2.0, seed=2)
    assert [i.operation.name for i in a.data] == [i.operation.name for i in b.data]
    assert [i.operation.name for i in a.data] != [i.operation.name for i in c.data]


def test_scale_below_one_and_measurements_are_refused(isa):
    with pytest.raises(CircuitError, match=">= 1"):
        fold_global(isa, 0.5)
    measured = isa.copy()
    measured.measure_all()
    with pytest.raises(CircuitError, match="measure"):
        fold_gates_at_random(measured, 3.0)
