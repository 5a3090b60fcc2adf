from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import UCRYGate
from qiskit.quantum_info import Operator

from qfl_qiskit.circuits.ucry import append_ucry, ucry_coefficients


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_parameterized_ucry_equals_qiskit_ucrygate(k):
    rng = np.random.default_rng(k)
    angles = rng.uniform(-2 * np.pi, 2 * np.pi, 1 << k)
    theta = ParameterVector("a", 1 << k)
    ours = QuantumCircuit(k + 1)
    append_ucry(ours, list(theta), controls=list(range(k)), target=k)
    assert set(ours.parameters) == set(theta)  # stays parameterized for transpile-once/bind-many
    bound = ours.assign_parameters(dict(zip(theta, angles)))
    ref = QuantumCircuit(k + 1)
    ref.append(UCRYGate(list(angles)), [k, *range(k)])  # UCRYGate: target first, then controls
    assert Operator(bound).equiv(Operator(ref))
    assert np.allclose(Operator(bound).data, Operator(ref).data, atol=1e-10)


def test_ucry_uses_two_to_the_k_cnots_and_rotations():
    k = 3
    qc = QuantumCircuit(k + 1)
    append_ucry(qc, list(ParameterVector("a", 8)), controls=[0, 1, 2], target=3)
    ops = qc.count_ops()
    assert ops["cx"] == 8 and ops["ry"] == 8


def test_coefficients_invert_the_branch_map():
    for k in range(1, 5):
        c = ucry_coefficients(k)
        n = 1 << k
        gray = [t ^ (t >> 1) for t in range(n)]
        m = np.array([[(-1) ** bin(i & gray[t]).count("1") for t in range(n)] for i in range(n)])
        assert np.allclose(m @ c, np.eye(n))


def test_ucry_rejects_wrong_angle_count():
    with pytest.raises(ValueError, match="needs 4 angles"):
        append_ucry(QuantumCircuit(3), [0.1, 0.2, 0.3], controls=[0, 1], target=2)
