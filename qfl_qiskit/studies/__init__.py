"""Studies: functions from a study spec to records (noise robustness, barren-plateau diagnostic)."""

from __future__ import annotations

from qfl_qiskit.studies.noise import barren_plateau, plan_cells, run_study, summarize

__all__ = ["barren_plateau", "plan_cells", "run_study", "summarize"]
