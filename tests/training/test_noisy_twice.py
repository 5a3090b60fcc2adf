"""``evaluate_noisy`` leaves the model on the noisy estimator; a second call must still measure "exact" exactly."""

from __future__ import annotations

import torch

from qfl_qiskit.data.tensors import TensorData
from qfl_qiskit.models import build_model
from qfl_qiskit.specs.noise import ParametricNoiseSpec
from qfl_qiskit.specs.train import QFLModelSpec
from qfl_qiskit.training.loop import evaluate
from qfl_qiskit.training.noisy import evaluate_noisy


def test_a_second_noisy_evaluation_still_reports_exact_metrics_exactly():
    gen = torch.Generator().manual_seed(0)
    data = TensorData([torch.randn(24, 2, generator=gen), torch.randn(24, 2, generator=gen)],
                      torch.arange(24) % 3, torch.ones(24, 2, dtype=torch.bool))
    model = build_model(QFLModelSpec(features=1, degree=1, observables=3), [2, 2], 3, seed=1)
    truth = evaluate(model, data, num_classes=3)
    noise = ParametricNoiseSpec(depolarizing_1q=0.3, depolarizing_2q=0.9)  # strong: the metrics move
    first = evaluate_noisy(model, data, num_classes=3, noise=noise, shots=None)
    second = evaluate_noisy(model, data, num_classes=3, noise=noise, shots=None)
    assert first["exact"] == truth and second["exact"] == truth  # not the noisy values left by the first call
    assert second["noisy"] == first["noisy"] != truth
