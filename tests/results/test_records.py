from __future__ import annotations

import json
import os

import pytest

from qfl_qiskit.atomic import atomic_write_json, atomic_write_text
from qfl_qiskit.results import load_record, make_record, plot_transpile_comparison, save_record
from qfl_qiskit.specs import QFLSpec, TranspileSpec


def test_record_carries_specs_seeds_and_versions(tmp_path):
    spec = QFLSpec(degree=3)
    rec = make_record("demo", specs={"circuit": spec, "raw": {"a": 1}}, seeds={"s": 5}, payload={"x": [1, 2]})
    path = save_record(rec, tmp_path / "r.json")
    back = load_record(path)
    assert back["specs"]["circuit"]["spec_id"] == spec.spec_id
    assert QFLSpec.model_validate({k: v for k, v in back["specs"]["circuit"].items() if k != "spec_id"}) == spec
    assert back["specs"]["raw"] == {"a": 1} and back["seeds"] == {"s": 5} and back["payload"] == {"x": [1, 2]}
    assert back["provenance"]["packages"]["qiskit"] and back["provenance"]["python"].startswith("3.")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "keep.json"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.json"]  # no temp file left behind


def test_plot_from_record_only(tmp_path):
    report = {"backend": "b1", "two_qubit_count": 3, "depth": 9, "esp": 0.9, "baseline_esp": 0.85}
    rec = {"specs": {"circuit": {"kind": "qfl", "spec_id": "abc"}, "transpile": TranspileSpec().model_dump()},
           "payload": {"reports": [report, {**report, "backend": "b2", "esp": 0.7}]}}
    out = plot_transpile_comparison(json.loads(json.dumps(rec)), tmp_path / "p.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5000


def test_atomic_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
