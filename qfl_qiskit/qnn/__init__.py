"""Torch bridge: ``QuantumLayer`` and the gate-level parameter-shift plan it uses."""

from __future__ import annotations

from qfl_qiskit.qnn.layer import QuantumLayer
from qfl_qiskit.qnn.shift import ShiftPlan, shift_plan

__all__ = ["QuantumLayer", "ShiftPlan", "shift_plan"]
