"""Multimodal data: the data set type, splits and scaling, named loaders, torch conversion."""

from __future__ import annotations

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.data.external import (
    MOSEI_CSD_FILES,
    MOSEI_LABELS,
    PTBXL_CLASSES,
    PTBXL_LEADS,
    cmu_mosei,
    ptbxl,
    sentiment_labels,
)
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
from qfl_qiskit.data.timeseries import (
    BASIC_MOTIONS_SENSORS,
    CLASS_NAMES,
    SERIES_FEATURES,
    basic_motions,
    japanese_vowels,
    series_features,
)

__all__ = [
    "BASIC_MOTIONS_SENSORS",
    "CLASS_NAMES",
    "DIGITS_QUADRANTS",
    "LOADERS",
    "MOSEI_CSD_FILES",
    "MOSEI_LABELS",
    "PTBXL_CLASSES",
    "PTBXL_LEADS",
    "SERIES_FEATURES",
    "UCI_MFEAT_VIEWS",
    "MultimodalDataset",
    "Standardizer",
    "TensorData",
    "basic_motions",
    "cmu_mosei",
    "digits_quadrants",
    "japanese_vowels",
    "load_dataset",
    "ptbxl",
    "sentiment_labels",
    "series_features",
    "stratified_split",
    "synthetic_parity",
    "synthetic_polynomial",
    "to_tensors",
    "uci_mfeat",
]
