"""qfl-qiskit: hardware experiment toolkit for quantum multimodal fusion on Qiskit."""

from __future__ import annotations

__version__ = "0.1.0"
