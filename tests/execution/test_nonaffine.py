"""Angles that are not affine in the parameters (Qiskit's ``zz_feature_map``: (pi - x0)(pi - x1)): exact values
and autograd gradients equal Statevector and central differences; parameter shift gets them by the chain rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.circuit.library import real_amplitudes, zz_feature_map
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp, Statevector

from qfl_qiskit.execution import ExactEstimator, estimate
from qfl_qiskit.qnn import shift_plan

OPS = [SparsePauliOp("ZZI"), SparsePauliOp(["IXY", "ZIZ"], [0.5, -0.3])]


def _circuits():
    fm = zz_feature_map(3, reps=2).compose(real_amplitudes(3, reps=1))
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(3, name="mixed")
    qc.h(range(3))
    qc.ry(a * b, 0)
    qc.rz(a ** 2 - 0.5 * b, 1)
    qc.cx(0, 2)
    qc.rx((a + 1.0) * b - 2.0 * a, 2)
    qc.cx(1, 0)
    return {"zz_feature_map": fm, "products": qc}


CIRCUITS = _circuits()


def _reference(circuit, values):
    return np.array([[Statevector(circuit.assign_parameters(v)).expectation_value(op).real for op in OPS]
                     for v in values])


def _central(circuit, values, h=1e-6):
    out = np.zeros_like(values)
    for j in range(values.shape[1]):
        e = np.zeros(values.shape[1])
        e[j] = h
        out[:, j] = (_reference(circuit, values + e).sum(axis=1) - _reference(circuit, values - e).sum(axis=1)) / (2 * h)
    return out


@pytest.mark.parametrize("name", list(CIRCUITS))
def test_exact_values_and_autograd_gradients(name):
    circuit = CIRCUITS[name]
    values = np.random.default_rng(1).uniform(-1.5, 1.5, (4, circuit.num_parameters))
    vt = torch.tensor(values, requires_grad=True)
    evs = ExactEstimator().evaluate(circuit, OPS, vt)
    np.testing.assert_allclose(evs.detach().numpy(), _reference(circuit, values), atol=1e-10)
    evs.sum().backward()
    np.testing.assert_allclose(vt.grad.numpy(), _central(circuit, values), atol=1e-6)
    column = [[op] for op in OPS]  # (K, 1) against the bindings (B,)
    v2 = ExactEstimator().run([(circuit, column, values)]).result()[0]
    ref = StatevectorEstimator().run([(circuit, column, values)]).result()[0]
    np.testing.assert_allclose(v2.data.evs, ref.data.evs, atol=1e-10)


@pytest.mark.parametrize("name", list(CIRCUITS))
def test_parameter_shift_uses_the_chain_rule_per_binding(name):
    circuit = CIRCUITS[name]
    values = np.random.default_rng(2).uniform(-1.5, 1.5, (3, circuit.num_parameters))
    plan = shift_plan(circuit)
    assert plan.derived  # there are non-affine angles, each differentiated at its binding
    shifted = estimate(StatevectorEstimator(), [(plan.circuit, OPS, plan.shifted(values))])[0].evs
    jac = plan.jacobian(shifted, values)  # (B, K, p)
    np.testing.assert_allclose(jac.sum(axis=1), _central(circuit, values), atol=1e-6)
    with pytest.raises(Exception, match="pass the values"):
        plan.jacobian(shifted)
