from __future__ import annotations

from qfl_qiskit.execution import estimate

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.quantum_info import SparsePauliOp, Statevector

from qfl_qiskit.circuits import QnnCircuit, build_mma, build_qfl
from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.exact import ExactEstimator
from qiskit.primitives import BaseEstimatorV2

from qfl_qiskit.qnn import QuantumLayer, shift_plan
from qfl_qiskit.specs import MMASpec, QFLSpec
from qfl_qiskit.transpile import resolve_backend, transpile_sweep


class CountingEstimator(BaseEstimatorV2):
    """A V2 estimator wrapping another; counts run calls and bindings (what a hardware job would hold)."""

    name = "counting"

    def __init__(self, inner):
        self.inner, self.calls, self.bindings = inner, 0, 0

    def run(self, pubs, *, precision=None):
        pubs = list(pubs)
        self.calls += 1
        self.bindings += sum(int(np.prod(np.shape(p[2])[:-1])) for p in pubs)
        return self.inner.run(pubs, precision=precision)


def _grads(layer, x):
    xs = torch.tensor(x, requires_grad=True)
    layer.zero_grad()
    out = layer(xs)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return out.detach().numpy(), layer.weights.grad.numpy().copy(), xs.grad.numpy().copy()


@pytest.fixture(scope="module")
def qfl():
    return build_qfl(QFLSpec(modalities=2, features=2, degree=2, observables=4))


def test_param_shift_equals_autograd_for_weights_and_inputs(qfl):
    x = np.random.default_rng(0).uniform(-np.pi, np.pi, (5, qfl.num_inputs))
    auto = _grads(QuantumLayer(qfl), x)
    counter = CountingEstimator(ExactEstimator())
    shift = _grads(QuantumLayer(qfl, estimator=counter, gradient="param_shift"), x)
    for a, b in zip(auto, shift):
        assert np.allclose(a, b, atol=1e-8)
    assert np.abs(auto[2]).max() > 1e-3  # the input gradient is not trivially zero
    assert counter.calls == 1  # forward and every shifted binding of the batch: one estimator call
    g = shift_plan(qfl.circuit).num_gates
    assert counter.bindings == 5 * (1 + 2 * g)


def test_autograd_matches_central_differences(qfl):
    layer = QuantumLayer(qfl, weight_seed=3)
    x = np.random.default_rng(1).uniform(-1, 1, (2, qfl.num_inputs))
    _, gw, _ = _grads(layer, x)
    eps = 1e-6
    w0 = layer.weights.detach().clone()
    weights_out = torch.linspace(-1, 1, len(qfl.observables), dtype=torch.float64)
    for j in range(0, qfl.num_weights, 5):
        vals = []
        for sgn in (1, -1):
            with torch.no_grad():
                layer.weights.copy_(w0)
                layer.weights[j] += sgn * eps
                vals.append((layer(torch.tensor(x)) * weights_out).sum().item())
        assert (vals[0] - vals[1]) / (2 * eps) == pytest.approx(gw[j], abs=1e-6)


def test_param_shift_handles_shared_parameters_with_coefficients():
    """A parameter feeding several gates with coefficients != 1: a per-parameter shift rule would be wrong."""
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2)
    qc.ry(2 * a + 0.3, 0)
    qc.rx(a - 0.5 * b, 1)
    qc.cx(0, 1)
    qc.rz(3 * b, 1)
    qc.ry(a, 1)
    obs = (SparsePauliOp("ZZ"), SparsePauliOp("XI"), SparsePauliOp("YX"))
    w = ParameterVector("w", 2)  # a and b become the layer's two weights
    qc2 = qc.assign_parameters({a: w[0], b: w[1]})
    qnn = QnnCircuit(qc2, ParameterVector("x", 0), w, obs)
    auto = _grads(QuantumLayer(qnn), np.zeros((1, 0)))[1]
    shift = _grads(QuantumLayer(qnn, estimator=ExactEstimator(), gradient="param_shift"), np.zeros((1, 0)))[1]
    assert np.allclose(auto, shift, atol=1e-10) and np.abs(auto).max() > 1e-2


def test_param_shift_on_a_transpiled_circuit(qfl):
    """On an ISA circuit one logical angle becomes several rz gates; the gradient must not change."""
    isa, _ = transpile_sweep(qfl.circuit, resolve_backend("fake_manila"), seeds=1)
    plan = shift_plan(isa)
    w = np.random.default_rng(5).uniform(-1, 1, isa.num_parameters)
    sv = Statevector(isa.assign_parameters(w))
    sv_plan = Statevector(plan.circuit.assign_parameters(plan.angles(w)))
    assert sv.equiv(sv_plan)
    assert plan.matrix.shape == (plan.num_gates, isa.num_parameters)


def test_spsa_is_seeded_and_points_downhill(qfl):
    x = np.random.default_rng(2).uniform(-1, 1, (8, qfl.num_inputs))
    exact = _grads(QuantumLayer(qfl), x)[1]
    a = _grads(QuantumLayer(qfl, estimator=ExactEstimator(), gradient="spsa", spsa_seed=7, spsa_epsilon=1e-3), x)
    b = _grads(QuantumLayer(qfl, estimator=ExactEstimator(), gradient="spsa", spsa_seed=7, spsa_epsilon=1e-3), x)
    assert np.array_equal(a[1], b[1])  # same seed, same estimate
    # averaged over many directions SPSA is unbiased: its mean correlates strongly with the true gradient
    layer = QuantumLayer(qfl, estimator=ExactEstimator(), gradient="spsa", spsa_seed=1, spsa_epsilon=1e-3)
    mean = np.mean([_grads(layer, x)[1] for _ in range(200)], axis=0)
    cos = mean @ exact / np.linalg.norm(mean) / np.linalg.norm(exact)
    assert cos > 0.8


def test_mma_absent_modality_weights_get_exactly_zero_gradient():
    spec = MMASpec()
    qnn = build_mma(spec, (True, False, True))
    x = np.random.default_rng(4).uniform(-1, 1, (3, qnn.num_inputs))
    for layer in (QuantumLayer(qnn), QuantumLayer(qnn, estimator=ExactEstimator(), gradient="param_shift")):
        _, gw, gx = _grads(layer, x)
        lo, hi = qnn.metadata["weight_groups"]["modality_1"]
        assert np.all(gw[lo:hi] == 0.0) and np.all(gx[:, 2:4] == 0.0)
        assert np.abs(gw[:lo]).max() > 1e-3 and np.abs(gw[hi:]).max() > 1e-3


def test_bad_layer_input(qfl):
    with pytest.raises(ExecutionError, match="unknown gradient 'adjoint'"):
        QuantumLayer(qfl, gradient="adjoint")
    with pytest.raises(ExecutionError, match="needs the exact estimator"):
        QuantumLayer(qfl, estimator=CountingEstimator(ExactEstimator()), gradient="autograd")
    layer = QuantumLayer(qfl)
    with pytest.raises(ExecutionError, match="expected inputs with 4 features"):
        layer(torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ExecutionError, match="NaN or inf"):
        layer(torch.full((2, 4), float("nan"), dtype=torch.float64))
    other = build_qfl(QFLSpec(modalities=1, features=3))
    with pytest.raises(ExecutionError, match="parameters the QNN does not know"):
        QuantumLayer(qfl, circuit=other.circuit)


def test_param_shift_with_shots_on_aer_is_within_four_standard_errors(qfl):
    """Noiseless Aer with shots: every weight's shifted-gradient estimate lies within 4 standard errors of exact."""
    from qfl_qiskit.execution.aer import AerEstimator

    x = np.random.default_rng(8).uniform(-1, 1, (1, qfl.num_inputs))
    exact_w = _grads(QuantumLayer(qfl, weight_seed=2), x)[1]
    est = AerEstimator(shots=4000, seed=123)
    layer = QuantumLayer(qfl, estimator=est, gradient="param_shift", weight_seed=2)
    shot_w = _grads(layer, x)[1]
    # standard error of each gradient entry from the shifted values' own standard errors (same seed, same shots)
    plan = shift_plan(qfl.circuit)
    values = layer.circuit_values(torch.tensor(x)).detach().numpy()
    stds = estimate(est, [(plan.circuit, qfl.observables, plan.shifted(values))])[0].stds[:, 0, :]  # (2G, K)
    g = plan.num_gates
    out_weights = np.linspace(-1, 1, len(qfl.observables))  # the weighting _grads applies to the outputs
    var_phi = ((stds[:g] ** 2 + stds[g:] ** 2) / 4) @ out_weights**2  # (G,)
    cols = layer._perm.numpy()
    se = np.sqrt(var_phi @ plan.matrix**2)  # per circuit parameter
    se_w = np.zeros(qfl.num_weights)
    for pos, col in enumerate(cols):
        if col >= qfl.num_inputs:
            se_w[col - qfl.num_inputs] = se[pos]
    assert np.all(se_w > 0)
    z = np.abs(shot_w - exact_w) / se_w
    assert z.max() < 4, z
    assert np.abs(shot_w - exact_w).max() > 0  # shots do make it differ: not an exact run in disguise
