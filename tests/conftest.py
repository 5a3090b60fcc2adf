"""Shared fixtures: small seeded specs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from qfl_qiskit.specs import MMASpec, QFLSpec

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core; torch's intra-op threads on top oversubscribe the cores, and the
    # tiny tensors of these tests then spend their time waiting (200 Adam steps: 0.2 s alone, 30 s contended)
    torch.set_num_threads(1)


@pytest.fixture
def small_qfl() -> QFLSpec:
    """2 modalities x 2 features, degree 2: 3 qubits (2 index + 1 value)."""
    return QFLSpec(modalities=2, features=2, degree=2, layers=1, observables=4)


@pytest.fixture
def small_mma() -> MMASpec:
    return MMASpec(modalities=3, qubits_per_modality=2)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the ``qfl`` entry point; (exit code, stdout, stderr)."""
    from qfl_qiskit.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err
