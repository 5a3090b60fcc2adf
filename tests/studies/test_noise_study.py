"""The noise study: cells, resume without recomputation, records, CSV and plots; the plateau diagnostic."""

from __future__ import annotations

import csv
import json

import pytest

from qfl_qiskit.cli import main
from qfl_qiskit.specs import validate
from qfl_qiskit.specs.study import NoiseStudySpec, load_study_spec
from qfl_qiskit.studies import plan_cells, run_study

from ..conftest import REPO

SMALL = {
    "name": "small", "scales": [0.0, 1.0], "mitigations": ["none", "rem"], "seeds": [0], "workers": 1,
    "noise": {"backend": "fake_manila"},
    "expectation": {"circuits": [str(REPO / "circuits" / "qfl_default.toml")], "bindings": 3},
    "plateau": {"degrees": [1, 3], "modalities": [2, 4], "samples": 16},
}


def test_example_spec_loads():
    spec = load_study_spec(REPO / "experiments" / "noise_study.toml")
    assert len(plan_cells(spec)) == (2 * 2 + 1) * 6 * 4 * 2  # circuits x observable sets, and the model


def test_study_runs_resumes_and_writes_everything(tmp_path):
    spec = validate(NoiseStudySpec, SMALL, source="test")
    events = []
    record = run_study(spec, tmp_path, progress=events.append, pool=False)
    assert events[0] == {"event": "start", "total": 4, "done": 0}
    rows = {(r["scale"], r["mitigation"]): r for r in record["payload"]["summary"]}
    assert rows[(0.0, "none")]["mae"] < 1e-9  # lambda = 0 is noiseless
    assert rows[(1.0, "none")]["mae"] > 0.01
    assert rows[(1.0, "rem")]["mae"] < rows[(1.0, "none")]["mae"]
    with open(tmp_path / "cells.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    for name in ("error_vs_scale", "overhead", "barren_plateau"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    plateau = record["payload"]["plateau"]
    assert [r["degree"] for r in plateau["vs_degree"]] == [1, 3]
    assert all(r["variance"] > 0 for r in plateau["vs_degree"] + plateau["vs_modalities"])
    # resume: a removed cell is recomputed, the others are not touched
    cells = sorted((tmp_path / "cells").glob("*.json"))
    stamps = {p.name: p.stat().st_mtime_ns for p in cells}
    cells[0].unlink()
    events.clear()
    again = run_study(spec, tmp_path, progress=events.append, pool=False)
    assert events[0] == {"event": "start", "total": 4, "done": 3}
    assert [e["id"] for e in events[1:]] == [cells[0].stem]
    for p in cells[1:]:
        assert p.stat().st_mtime_ns == stamps[p.name]
    assert again["payload"]["summary"] == record["payload"]["summary"]  # exact values: same numbers


@pytest.mark.parametrize("change, message", [
    ({"scales": [-1.0]}, "scales"),
    ({"mitigations": ["zne"], "scale_factors": [2.0, 1.0]}, "increasing"),
    ({"mitigations": ["pec"]}, "mitigation 'pec'"),
    ({"mitigations": ["zne"], "factory": "poly", "scale_factors": [1.0, 2.0]}, "poly_order"),
])
def test_bad_study_specs(tmp_path, change, message, capsys):
    text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in {**{"kind": "noise_study"}, **change}.items())
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SystemExit) as info:
        main(["noise-study", str(path), "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1
    import re
    assert re.search(message, err)


def test_fully_random_readout_is_a_recorded_finding_not_a_crash():
    from qfl_qiskit.studies.noise import run_cell

    spec = validate(NoiseStudySpec, {**SMALL, "scales": [40.0]}, source="test")
    cell = {"id": "x", "kind": "expectation", "target": SMALL["expectation"]["circuits"][0], "scale": 40.0,
            "seed": 0}
    rem = run_cell(spec.model_dump_json(), None, {**cell, "mitigation": "rem"})
    assert "50%" in rem["result"]["error"]
    none = run_cell(spec.model_dump_json(), None, {**cell, "mitigation": "none"})
    # readout clipped at 50%: every measured Pauli averages to exactly 0, so the error is the exact values' size
    assert none["result"]["mae"] == pytest.approx(none["result"]["mean_abs_exact"], abs=1e-9)


def test_model_part_with_training_under_noise(tmp_path):
    train = tmp_path / "train.toml"
    train.write_text('name = "tiny"\nseed = 0\n[data]\nname = "synthetic_parity"\n'
                     'options = {n = 120, num_modalities = 2, features = 1}\n[optim]\nepochs = 2\nbatch_size = 20\n'
                     '[[models]]\nname = "qfl"\nfeatures = 1\nobservables = 3\n')
    spec = validate(NoiseStudySpec, {
        "name": "m", "scales": [1.0], "mitigations": ["none"], "seeds": [0], "workers": 1,
        "noise": {"backend": "fake_manila"}, "expectation": None, "plateau": None,
        "model": {"train": str(train), "samples": 10, "finetune_epochs": 1, "finetune_samples": 20}}, source="t")
    record = run_study(spec, tmp_path / "out", pool=False)
    [cell] = record["payload"]["cells"]
    result = cell["result"]
    assert result["samples"] == 10 and 0 <= result["noisy"]["accuracy"] <= 1
    assert set(result["noisy_finetuned"]) == {"accuracy", "macro_f1", "macro_auc"}
    [row] = record["payload"]["summary"]
    assert "finetuned_accuracy" in row
    assert (tmp_path / "out" / "accuracy_vs_scale.png").exists()
