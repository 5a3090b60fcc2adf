"""The papers' experiments as commands (``qfl reproduce NAME``): each a module of cells, a summary and a verdict."""

from __future__ import annotations

from qfl_qiskit.studies.reproduce import degree, encoding, measurement, mma, modalities, noise, plateaus, separation
from qfl_qiskit.studies.reproduce.runner import run_experiment

#: The experiments by name, in the order ``qfl reproduce --list`` shows them.
EXPERIMENTS = {m.NAME: m for m in (degree, modalities, measurement, encoding, plateaus, noise, mma, separation)}

__all__ = ["EXPERIMENTS", "run_experiment"]
