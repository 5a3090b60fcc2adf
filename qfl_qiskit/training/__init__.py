"""Training and evaluation of fusion models: loop with early stopping and checkpoints, metrics, experiment runs."""

from __future__ import annotations

from qfl_qiskit.training.experiment import (
    Splits,
    drop_modalities,
    load_model,
    make_estimator,
    prepare_data,
    train_models,
)
from qfl_qiskit.training.loop import CheckpointError, FitResult, evaluate, fit, predict_proba
from qfl_qiskit.training.metrics import classification_metrics

__all__ = [
    "CheckpointError",
    "FitResult",
    "Splits",
    "classification_metrics",
    "drop_modalities",
    "evaluate",
    "fit",
    "load_model",
    "make_estimator",
    "predict_proba",
    "prepare_data",
    "train_models",
]
