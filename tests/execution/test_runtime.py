"""The Runtime adapter in local testing mode (offline, a small fake backend)."""

from __future__ import annotations

from qfl_qiskit.execution import estimate

import warnings

import numpy as np
import pytest
import torch

from qfl_qiskit.circuits import build_qfl
from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.exact import ExactEstimator
from qfl_qiskit.execution.runtime import RuntimeEstimator
from qfl_qiskit.qnn import QuantumLayer
from qfl_qiskit.specs import QFLSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def qnn():
    return build_qfl(QFLSpec(modalities=1, features=2, degree=1, observables=3, observable_seed=5))


def test_local_testing_mode_values_follow_the_exact_ones(qnn):
    rng = np.random.default_rng(0)
    values = qnn.parameter_values(rng.uniform(-2, 2, (6, qnn.num_inputs)), rng.uniform(-2, 2, qnn.num_weights))
    est = RuntimeEstimator("fake_manila", precision=0.02, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = estimate(est, [(qnn.circuit, qnn.observables, values)])[0]
    exact = estimate(ExactEstimator(), [(qnn.circuit, qnn.observables, values)])[0].evs
    assert res.evs.shape == res.stds.shape == exact.shape == (6, 3)
    assert np.all(res.stds > 0) and res.metadata["job_id"] == est.last_job_ids[0]
    # noisy but faithful: strongly correlated with the exact values, errors of the size noise makes
    assert np.corrcoef(res.evs.ravel(), exact.ravel())[0, 1] > 0.9
    assert np.abs(res.evs - exact).mean() < 0.2


def test_param_shift_training_step_is_one_runtime_job(qnn):
    est = RuntimeEstimator("fake_manila", precision=0.05, seed=3)
    layer = QuantumLayer(qnn, estimator=est, gradient="param_shift")
    calls = []
    original = est._primitive

    def counting():
        prim = original()
        run = prim.run

        def wrapped(pubs, **kw):
            calls.append(len(pubs))
            return run(pubs, **kw)

        prim.run = wrapped
        return prim

    est._primitive = counting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = layer(torch.tensor(np.random.default_rng(1).uniform(-1, 1, (4, qnn.num_inputs))))
        out.sum().backward()
    assert calls == [2]  # one job holding the forward PUB and the shifted PUB
    assert torch.isfinite(layer.weights.grad).all() and layer.weights.grad.abs().max() > 0


def test_bad_runtime_options(qnn):
    with pytest.raises(ExecutionError, match="precision must be > 0"):
        RuntimeEstimator("fake_manila", precision=0)
    with pytest.raises(ExecutionError, match="unknown Runtime Estimator option 'resilence'"):  # before any job
        RuntimeEstimator("fake_manila", options={"resilence": {"zne_mitigation": True}})
