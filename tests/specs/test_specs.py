from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from qfl_qiskit.errors import SpecError
from qfl_qiskit.specs import MMASpec, QFLSpec, TranspileSpec, load_circuit_spec

from ..conftest import REPO


def test_specs_are_frozen_and_reject_unknown_keys():
    spec = QFLSpec()
    with pytest.raises(ValidationError):
        spec.degree = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        QFLSpec(degre=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        MMASpec(qubits=2)  # type: ignore[call-arg]


@pytest.mark.parametrize("field", ["modalities", "features", "degree", "layers", "observables"])
def test_qfl_sizes_below_one_are_rejected(field):
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        QFLSpec(**{field: 0})


@pytest.mark.parametrize("spec", [QFLSpec(degree=3, entanglement="full"), MMASpec(entangler="star", context="plus"),
                                  TranspileSpec(backends=("fake_fez", "generic_7"), seeds=3)])
def test_json_round_trip_keeps_content_and_id(spec):
    back = type(spec).model_validate_json(spec.to_json())
    assert back == spec
    assert back.spec_id == spec.spec_id
    assert json.loads(spec.to_json()) == spec.model_dump(mode="json")


def test_spec_id_is_a_content_hash():
    assert QFLSpec().spec_id == QFLSpec(modalities=6, features=2).spec_id  # defaults spelled out: same content
    assert QFLSpec().spec_id != QFLSpec(degree=3).spec_id
    assert QFLSpec().spec_id != QFLSpec(observable_seed=1).spec_id
    assert len(QFLSpec().spec_id) == 12 and int(QFLSpec().spec_id, 16) >= 0


def test_shipped_specs_load(tmp_path):
    assert load_circuit_spec(REPO / "circuits/qfl_default.toml") == QFLSpec()
    assert load_circuit_spec(REPO / "circuits/mma_default.toml") == MMASpec()
    deep = load_circuit_spec(REPO / "circuits/qfl_degree4_full.toml")
    assert isinstance(deep, QFLSpec) and deep.degree == 4 and deep.entanglement == "full"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kind = "qfl"\ndegree = 0\n', "spec.toml: degree: Input should be greater than or equal to 1 (got 0)"),
        ('kind = "qfl"\ndegre = 2\n', "unknown key 'degre'; remove it or check its spelling"),
        ('kind = "qfl"\ndegree = "two"\n', "degree"),
        ('modalities = 2\n', "missing key 'kind'"),
        ('kind = "qcnn"\n', "unknown kind 'qcnn'"),
        ('kind = "qfl"\ndegree = \n', "not valid TOML"),
        ('kind = "mma"\nentangler = "ring"\n', "entangler"),
    ],
)
def test_bad_spec_files_give_one_line(tmp_path, text, message):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_circuit_spec(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_circuit_spec(tmp_path / "nope.toml")


def test_transpile_spec_bounds():
    with pytest.raises(ValidationError):
        TranspileSpec(optimization_level=4)
    with pytest.raises(ValidationError):
        TranspileSpec(seeds=0)
    with pytest.raises(ValidationError):
        TranspileSpec(backends=())
