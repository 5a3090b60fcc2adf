"""Every shipped training spec loads, and builds its models for its data set's shape."""

from __future__ import annotations

import pytest

from qfl_qiskit.models import build_model
from qfl_qiskit.specs.train import load_train_spec

from ..conftest import REPO

import tomllib

SPECS = [p for p in sorted((REPO / "experiments").glob("*.toml"))
         if tomllib.loads(p.read_text()).get("kind") == "train"] + [REPO / "qfl_qiskit" / "cli" / "quickstart.toml"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_spec_loads_and_builds(path):
    spec = load_train_spec(path)
    assert spec.name == path.stem or path.name == "quickstart.toml"
    dims = {"uci_mfeat": [76, 216, 64, 240, 47, 6], "japanese_vowels": [8] * 12,
            "synthetic_parity": [2] * spec.data.options.get("num_modalities", 2),
            "csv": [10, 10, 10]}[spec.data.name]  # breast_cancer_views.toml: the file is made by `qfl data example`
    for model_spec in spec.models:
        model = build_model(model_spec, dims, 10)
        assert 0 < model.fusion_parameters < model.total_parameters


def test_spec_list_is_not_empty():
    assert len(SPECS) >= 4
