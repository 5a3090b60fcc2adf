"""Aer noise models: backend calibration noise (live or from dated snapshots), parametric noise, scaled by lambda."""

from __future__ import annotations

from qfl_qiskit.noise.calibration import (
    SNAPSHOT_FORMAT,
    calibration_from_backend,
    calibration_summary,
    live_calibration,
    load_snapshot,
    snapshot_backend,
)
from qfl_qiskit.noise.models import (
    READOUT_ERROR_CAP,
    calibration_target,
    gate_error_cap,
    noise_model,
    scale_probability,
)

__all__ = [
    "READOUT_ERROR_CAP",
    "SNAPSHOT_FORMAT",
    "calibration_from_backend",
    "calibration_summary",
    "calibration_target",
    "gate_error_cap",
    "live_calibration",
    "load_snapshot",
    "noise_model",
    "scale_probability",
    "snapshot_backend",
]
