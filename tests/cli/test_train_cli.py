"""`qfl train`, `qfl compare` and `qfl evaluate` end to end on tiny specs, and their bad-input paths."""

from __future__ import annotations

import json

import pytest
import torch


from ..conftest import REPO, run_cli

TINY = """
name = "tiny"
seed = 1
[data]
name = "synthetic_parity"
options = {n = 160, num_modalities = 2, features = 2}
[optim]
epochs = 2
batch_size = 32
lr = 0.05
[[models]]
name = "qfl"
features = 1
observables = 3
[[models]]
name = "concat"
features = 2
out = 4
"""


def run(argv, capsys):
    return run_cli(argv, capsys)


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def trained(spec_file, tmp_path, capsys):
    code, out, err = run(["train", str(spec_file), "--results-dir", str(tmp_path / "res")], capsys)
    assert code == 0, err
    return tmp_path / "res" / "tiny", out


def test_train_writes_a_complete_run_folder(trained):
    run_dir, out = trained
    assert "qfl" in out and "concat" in out and "test acc" in out
    for label in ("qfl", "concat"):
        folder = run_dir / label
        assert {p.name for p in folder.iterdir()} == {"checkpoint.pt", "model.pt", "record.json",
                                                      "learning_curve.png"}
        record = json.loads((folder / "record.json").read_text())
        assert record["specs"]["train"]["spec_id"] and record["seeds"] == {"seed": 1}
        assert "torch" in record["provenance"]["packages"] and "qiskit" in record["provenance"]["packages"]
        assert len(record["payload"]["history"]) == 2
        assert (folder / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    comparison = json.loads((run_dir / "comparison.json").read_text())
    rows = {r["label"]: r for r in comparison["payload"]["models"]}
    assert rows["qfl"]["fusion_parameters"] == 2 * 1 * 3 * 3  # 2 slots + 1 -> 2 index qubits + 1 value qubit
    assert rows["concat"]["fusion_parameters"] == 2 * 2 * 4 + 4
    assert (run_dir / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_of_a_finished_run_trains_nothing(trained, spec_file, capsys):
    run_dir, _ = trained
    before = json.loads((run_dir / "qfl" / "record.json").read_text())["payload"]
    code, _, err = run(["train", str(spec_file), "--results-dir", str(run_dir.parent), "--resume",
                        "--model", "qfl"], capsys)
    assert code == 0, err
    after = json.loads((run_dir / "qfl" / "record.json").read_text())["payload"]
    assert after["resumed_from"] == 2 and after["history"] == before["history"]
    assert after["test"] == before["test"]


def test_evaluate_under_parametric_noise(trained, capsys):
    run_dir, _ = trained
    noise = REPO / "noise_models" / "parametric_default.toml"
    code, out, err = run(["evaluate", str(run_dir / "qfl"), "--noise", str(noise), "--shots", "200",
                          "--mitigation", "zne+rem"], capsys)
    assert code == 0, err
    assert "exact" in out and "noisy" in out and "mitigation zne+rem" in out
    [path] = sorted((run_dir / "qfl").glob("evaluate_noise_*.json"))
    payload = json.loads(path.read_text())["payload"]
    assert payload["shots"] == 200 and payload["estimator_calls"] == 1
    assert payload["mitigation"]["techniques"] == ["zne", "rem"]
    assert 0.0 <= payload["noisy"]["accuracy"] <= 1.0


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "{run}/concat", "--noise", "{noise}"], "no quantum circuit"),
    (["evaluate", "{run}/qfl"], "give --backend"),
    (["evaluate", "{run}/nothing-here", "--noise", "{noise}"], "model file not found"),
    (["evaluate", "{run}/qfl", "--noise", "{noise}", "--mitigation", "pec"], "--mitigation"),
])
def test_evaluate_bad_input(trained, argv, message, capsys):
    run_dir, _ = trained
    noise = REPO / "noise_models" / "parametric_default.toml"
    argv = [a.format(run=run_dir, noise=noise) for a in argv]
    code, _, err = run(argv, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('name = "synthetic_parity"', 'name = "mnist"'), "unknown data set 'mnist'"),
    (lambda s: s.replace('name = "concat"', 'name = "transformer"'), "models.1"),
    (lambda s: s.replace("epochs = 2", "epochs = 2\nepoch = 3"), "unknown key 'optim.epoch'"),
    (lambda s: s.replace("n = 160", "n = 6"), "cannot split"),
    (lambda s: s.replace("options = {n = 160,", "options = {size = 160,"), "bad arguments"),
    (lambda s: s.replace('name = "synthetic_parity"\noptions = {n = 160, num_modalities = 2, features = 2}',
                         'name = "ptbxl"\noptions = {path = "/nonexistent/ptbxl"}'), "ptbxl"),
])
def test_train_bad_spec_is_one_line_and_exit_2(tmp_path, edit, message, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(edit(TINY))
    code, _, err = run(["train", str(path), "--results-dir", str(tmp_path / "res")], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "res" / "tiny" / "comparison.json").exists()


def test_compare_needs_two_models(tmp_path, capsys):
    path = tmp_path / "one.toml"
    path.write_text(TINY.split("[[models]]\nname = \"concat\"")[0])
    code, _, err = run(["compare", str(path), "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and "at least two" in err


def test_noiseless_aer_evaluation_reproduces_the_exact_metrics(trained):
    from qfl_qiskit.specs import ParametricNoiseSpec
    from qfl_qiskit.training import load_model, predict_proba, prepare_data
    from qfl_qiskit.training.noisy import evaluate_noisy

    run_dir, _ = trained
    model, saved = load_model(run_dir / "qfl" / "model.pt")
    splits = prepare_data(saved["spec"])
    exact = predict_proba(model, splits.test)
    silent = ParametricNoiseSpec(depolarizing_1q=0.0, depolarizing_2q=0.0, scale=0.0)
    out = evaluate_noisy(model, splits.test, num_classes=2, backend="fake_manila", noise=silent, shots=None)
    assert out["transpile"][0]["backend"] == "fake_manila"
    torch.testing.assert_close(torch.as_tensor(predict_proba(model, splits.test)), torch.as_tensor(exact),
                               atol=1e-6, rtol=0)
    assert out["noisy"] == pytest.approx(out["exact"])


def test_compare_over_seeds_summarises_each_seed_run(spec_file, tmp_path, capsys):
    res = tmp_path / "res"
    code, out, err = run(["compare", str(spec_file), "--results-dir", str(res), "--seeds", "3,4"], capsys)
    assert code == 0, err
    assert "±" in out
    summary = json.loads((res / "tiny_seeds" / "summary.json").read_text())["payload"]["models"]
    for seed_index, seed in enumerate((3, 4)):
        record = json.loads((res / f"tiny_seed{seed}" / "comparison.json").read_text())
        assert record["specs"]["train"]["seed"] == seed
        for row in record["payload"]["models"]:
            entry = next(e for e in summary if e["label"] == row["label"])
            assert entry["accuracy"]["values"][seed_index] == row["test"]["accuracy"]
    for entry in summary:
        vals = entry["accuracy"]["values"]
        assert entry["accuracy"]["mean"] == pytest.approx(sum(vals) / 2)
    assert (res / "tiny_seeds" / "summary.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("seeds", ["", "1,1", "-1", "a,b"])
def test_compare_bad_seeds(spec_file, tmp_path, seeds, capsys):
    code, _, err = run(["compare", str(spec_file), "--results-dir", str(tmp_path), "--seeds", seeds], capsys)
    assert code == 2 and "--seeds" in err


def test_mma_run_with_missing_modalities(tmp_path):
    from qfl_qiskit.specs.train import TrainSpec
    from qfl_qiskit.training import prepare_data, train_models

    spec = TrainSpec(name="mma", seed=2, data={"name": "synthetic_parity", "missing_rate": 0.4,
                                               "options": {"n": 120, "num_modalities": 3}},
                     models=[{"name": "mma", "features": 1}], optim={"epochs": 1, "batch_size": 40})
    splits = prepare_data(spec)
    absent = (~splits.train.presence).float().mean().item()
    assert 0.2 < absent < 0.4 and splits.train.presence.any(dim=1).all()
    record = train_models(spec, out_dir=tmp_path, splits=splits)
    [row] = record["payload"]["models"]
    assert row["model"] == "mma" and row["circuit"]["num_qubits"] == 3
    assert 0.0 <= row["test"]["accuracy"] <= 1.0
