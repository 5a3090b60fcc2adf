"""Multimodal data: the data set type, splits and scaling, named loaders, torch conversion."""

from __future__ import annotations

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.data.loaders import (
    DIGITS_QUADRANTS,
    LOADERS,
    UCI_MFEAT_VIEWS,
    digits_quadrants,
    load_dataset,
    uci_mfeat,
)
from qfl_qiskit.data.preprocess import Standardizer, stratified_split
from qfl_qiskit.data.synthetic import synthetic_parity, synthetic_polynomial
from qfl_qiskit.data.tensors import TensorData, to_tensors

__all__ = [
    "DIGITS_QUADRANTS",
    "LOADERS",
    "UCI_MFEAT_VIEWS",
    "MultimodalDataset",
    "Standardizer",
    "TensorData",
    "digits_quadrants",
    "load_dataset",
    "stratified_split",
    "synthetic_parity",
    "synthetic_polynomial",
    "to_tensors",
    "uci_mfeat",
]
