"""Shared fixtures: small seeded specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from qfl_qiskit.specs import MMASpec, QFLSpec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_qfl() -> QFLSpec:
    """2 modalities x 2 features, degree 2: 3 qubits (2 index + 1 value)."""
    return QFLSpec(modalities=2, features=2, degree=2, layers=1, observables=4)


@pytest.fixture
def small_mma() -> MMASpec:
    return MMASpec(modalities=3, qubits_per_modality=2)
