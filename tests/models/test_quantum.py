"""QFL and MMA fusion models: the circuit sees the encoder outputs in the right order, patterns are batched
correctly, absent modalities are isolated, and the estimator can be swapped without changing the numbers."""

from __future__ import annotations

from qfl_qiskit.execution import estimate

import math

import numpy as np
import pytest
import torch

from qfl_qiskit.circuits import build_mma
from qfl_qiskit.execution import AerEstimator, ExactEstimator
from qfl_qiskit.models import MMAFusion, QFLFusion, build_model
from qfl_qiskit.specs.train import TrainSpec

DIMS = (5, 3, 4)


def inputs(n=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=gen) for d in DIMS]


def test_qfl_counts_and_shape():
    torch.manual_seed(0)
    model = QFLFusion(DIMS, 4, features=2, degree=3, layers=2, observables=6)
    n = 4  # 3 x 2 = 6 slots + 1 constant -> 3 index qubits + 1 value qubit
    assert model.fusion_parameters == 3 * 2 * 3 * n
    encoders = sum(d * 2 + 2 for d in DIMS)
    assert model.total_parameters == encoders + model.fusion_parameters + (6 * 4 + 4)
    assert model(inputs()).shape == (6, 4)


def test_qfl_feeds_modality_major_angles_to_the_circuit():
    torch.manual_seed(0)
    model = QFLFusion(DIMS, 3, features=2, observables=5)
    xs = inputs()
    with torch.no_grad():
        z = model.encoders(xs)  # (B, M, D)
        evs = model.fuse(z, torch.ones(6, 3, dtype=torch.bool))
    angles = np.concatenate([math.pi * z[:, m, :].numpy() for m in range(3)], axis=1).astype(np.float64)
    qnn = model.qnn
    values = qnn.parameter_values(angles, model.fusion.weights.detach().numpy())
    expected = estimate(ExactEstimator(), [(qnn.circuit, qnn.observables, values)])[0].evs
    np.testing.assert_allclose(evs.numpy(), expected, atol=1e-5)


def test_mma_mixed_patterns_match_rowwise_evaluation():
    torch.manual_seed(1)
    model = MMAFusion(DIMS, 3, qubits_per_modality=2)
    xs = inputs(8)
    presence = torch.ones(8, 3, dtype=torch.bool)
    presence[[1, 4], 0] = False
    presence[[2, 4], 2] = False
    presence[6, 1] = False
    with torch.no_grad():
        batched = model(xs, presence)
        rows = torch.cat([model([x[i:i + 1] for x in xs], presence[i:i + 1]) for i in range(8)])
    torch.testing.assert_close(batched, rows)
    assert len(model.layers()) == 5  # all present, and four partial patterns


def test_mma_absent_modality_is_isolated():
    torch.manual_seed(2)
    model = MMAFusion(DIMS, 3, qubits_per_modality=2)
    xs = inputs(5)
    presence = torch.tensor([[True, False, True]] * 5)
    out = model(xs, presence)
    changed = [xs[0], xs[1] * 7 + 3, xs[2]]
    torch.testing.assert_close(model(changed, presence), out)
    out.sum().backward()
    groups = build_mma(model.spec).metadata["weight_groups"]
    lo, hi = groups["modality_1"]
    grad = model.fusion.weights.grad
    assert torch.all(grad[lo:hi] == 0)
    assert grad[groups["modality_0"][0]:groups["modality_0"][1]].abs().sum() > 0
    assert grad[groups["fusion"][0]:].abs().sum() > 0
    enc = model.encoders.encoders[1][0].weight.grad
    assert enc is None or torch.all(enc == 0)


def test_mma_head_sees_presence():
    model = MMAFusion(DIMS, 3)
    assert model.fused_features == len(build_mma(model.spec).observables) + 3
    with pytest.raises(Exception, match="no modality present"):
        model(inputs(2), torch.zeros(2, 3, dtype=torch.bool))


def test_swapping_to_aer_on_a_transpiled_circuit_keeps_the_values():
    from qfl_qiskit.transpile import resolve_backend, transpile_sweep

    torch.manual_seed(3)
    model = QFLFusion((3, 2), 3, features=1, observables=4)
    xs = [torch.randn(5, 3), torch.randn(5, 2)]
    with torch.no_grad():
        exact = model(xs)
    backend = resolve_backend("fake_manila")
    model.use_estimator(AerEstimator(), gradient="param_shift",
                        transpile=lambda c: transpile_sweep(c, backend, seeds=1)[0])
    assert model.layers()[0].circuit.layout is not None
    with torch.no_grad():
        aer = model(xs)
    torch.testing.assert_close(aer, exact, atol=1e-6, rtol=0)


def test_build_model_from_spec_is_seeded():
    spec = TrainSpec(data={"name": "uci_mfeat"}, models=[{"name": "qfl", "features": 1, "observables": 3}])
    a = build_model(spec.models[0], DIMS, 3, seed=4)
    b = build_model(spec.models[0], DIMS, 3, seed=4)
    c = build_model(spec.models[0], DIMS, 3, seed=5)
    xs = inputs()
    with torch.no_grad():
        torch.testing.assert_close(a(xs), b(xs))
        assert not torch.allclose(a(xs), c(xs))
