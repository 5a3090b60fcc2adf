"""Fusion models: shared encoders and head, quantum fusion (QFL, MMA), classical baselines, losses."""

from __future__ import annotations

from qfl_qiskit.models.base import FusionModel, ModalityEncoders, count_parameters, make_head
from qfl_qiskit.models.quantum import MMAFusion, QFLFusion, QuantumFusionModel
from qfl_qiskit.models.registry import build_model

__all__ = [
    "FusionModel",
    "MMAFusion",
    "ModalityEncoders",
    "QFLFusion",
    "QuantumFusionModel",
    "build_model",
    "count_parameters",
    "make_head",
]
