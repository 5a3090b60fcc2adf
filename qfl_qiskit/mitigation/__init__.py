"""Error mitigation (the only package that imports mitiq): ZNE and REM around any noisy estimator."""

from __future__ import annotations

from qfl_qiskit.mitigation.estimator import (
    MitigatedEstimator,
    MitigationError,
    extrapolation_weights,
    invert_readout,
)
from qfl_qiskit.mitigation.folding import fold_gates_at_random, fold_global, insert_identity_layers, scale_noise
from qfl_qiskit.mitigation.runtime_options import to_runtime_options
from qfl_qiskit.specs.mitigation import MitigationSpec

__all__ = [
    "MitigatedEstimator",
    "MitigationError",
    "MitigationSpec",
    "extrapolation_weights",
    "fold_gates_at_random",
    "fold_global",
    "insert_identity_layers",
    "invert_readout",
    "scale_noise",
    "to_runtime_options",
]
