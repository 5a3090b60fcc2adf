"""`qfl reproduce`: the list, the degree experiment's --quick run (record, plot, verdict), resume per cell."""

from __future__ import annotations

import json

import pytest

from ..conftest import run_cli


def test_list_names_every_experiment_with_its_claim(capsys):
    from qfl_qiskit.studies.reproduce import EXPERIMENTS

    code, out, _ = run_cli(["reproduce", "--list", "--json"], capsys)
    assert code == 0
    listed = json.loads(out[out.index("["):])
    assert [e["name"] for e in listed] == list(EXPERIMENTS) and all(e["claim"] for e in listed)


def test_degree_quick_fits_degree_with_depth_and_resumes_per_cell(tmp_path, capsys):
    code, out, err = run_cli(["reproduce", "degree", "--quick", "--results-dir", str(tmp_path), "--workers", "1"],
                             capsys)
    assert code == 0, err
    folder = tmp_path / "reproduce" / "degree"
    record = json.loads((folder / "record.json").read_text())
    s = record["payload"]["summary"]
    acc = {(d, p): s["test_accuracy_mean"][i][j] for i, d in enumerate(s["targets"])
           for j, p in enumerate(s["depths"])}
    assert acc[(3, 3)] > acc[(3, 1)] + 0.2  # a degree-3 cross-modal target needs depth 3
    assert min(acc[(1, p)] for p in s["depths"]) > 0.85  # degree 1 is within every depth's reach
    assert s["parameters_by_depth"]["3"] > s["parameters_by_depth"]["1"]  # linear in P
    assert record["payload"]["verdict"]["verdict"] in ("holds", "does not hold", "inconclusive")
    assert "verdict:" in out and record["provenance"] and record["seeds"] == {"seeds": [0, 1]}
    assert (folder / "degree_heatmap.png").read_bytes()[:4] == b"\x89PNG"
    cells = sorted((folder / "cells").glob("*.json"))
    assert len(cells) == 18
    stamps = {p.name: p.stat().st_mtime_ns for p in cells}
    cells[0].unlink()
    code, out, err = run_cli(["reproduce", "degree", "--quick", "--results-dir", str(tmp_path), "--resume",
                              "--workers", "1"], capsys)
    assert code == 0, err
    for p in cells[1:]:
        assert p.stat().st_mtime_ns == stamps[p.name]  # the finished cells were not recomputed
    again = json.loads((folder / "record.json").read_text())
    assert again["payload"]["summary"] == s  # the recomputed cell gives the same numbers
    assert again["payload"]["run"]["resumed_cells"] == 17 and again["payload"]["run"]["cells"] == 18

    code, out, _ = run_cli(["reproduce", "--table", "--results-dir", str(tmp_path), "--json"], capsys)
    rows = {r["name"]: r for r in json.loads(out[out.index("["):])}
    assert rows["degree"]["verdict"] == again["payload"]["verdict"]["verdict"] and rows["degree"]["quick"]
    assert rows["degree"]["setting"].startswith("synthetic cross-modal targets of degree 1..3")
    assert rows["degree"]["plots"] == [str(folder / "degree_heatmap.png")] and rows["separation"]["record"] is None
    code, out, _ = run_cli(["reproduce", "--table", "--results-dir", str(tmp_path)], capsys)
    assert code == 0 and "| degree (--quick) |" in out and "not run yet: `qfl reproduce mma`" in out


def test_unknown_experiment_is_one_line(capsys):
    code, _, err = run_cli(["reproduce", "nosuch"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--list" in err


def test_measurement_readouts_are_what_they_say():
    from qfl_qiskit.studies.reproduce.measurement import readout

    z = readout("z", 3, seed=0)
    assert [op.paulis[0].to_label() for op in z] == ["IIZ", "IZI", "ZII"]
    local = [op.paulis[0].to_label() for op in readout("local", 4, seed=0)]
    assert len(local) == len(set(local)) == 3 * 4 + 9 * 6
    assert all(1 <= sum(c != "I" for c in label) <= 2 for label in local)
    assert len({op.paulis[0].to_label() for op in readout("pauli-16", 3, seed=1234)}) == 16


def test_measurement_quick_writes_one_row_per_readout(tmp_path, capsys):
    code, _, err = run_cli(["reproduce", "measurement", "--quick", "--results-dir", str(tmp_path), "--workers", "1"], capsys)
    assert code == 0, err
    folder = tmp_path / "reproduce" / "measurement"
    rows = json.loads((folder / "record.json").read_text())["payload"]["summary"]["rows"]
    assert [(r["readout"], r["outputs"]) for r in rows] == [("z", 3), ("pauli-4", 4), ("pauli-16", 16),
                                                             ("local", 36)]
    assert all(0.5 <= r["test_accuracy_mean"] <= 1 and len(r["values"]) == 2 for r in rows)
    assert (folder / "measurement_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_plateaus_quick_variance_intervals_and_decay(tmp_path, capsys):
    code, _, err = run_cli(["reproduce", "plateaus", "--quick", "--results-dir", str(tmp_path), "--workers", "1"], capsys)
    assert code == 0, err
    folder = tmp_path / "reproduce" / "plateaus"
    s = json.loads((folder / "record.json").read_text())["payload"]["summary"]
    for r in s["rows"]:
        assert 0 < r["ci90"][0] <= r["variance"] <= r["ci90"][1]
    glob = {r["modalities"]: r for r in s["rows"] if r["axis"] == "modalities" and r["cost"] == "global"}
    assert glob[8]["qubits"] > glob[2]["qubits"] and glob[8]["variance"] < glob[2]["variance"]
    assert set(s["log_variance_per_qubit"]) == {"local", "global"}
    train = {t["modalities"]: t for t in s["training"]}
    assert set(train) == {2, 6} and all(len(t["grad_sq"]) == 3 + 1 for t in train.values())  # init + 3 epochs
    assert all(t["loss"][-1] < t["loss"][0] and min(t["grad_sq"]) > 0 for t in train.values())
    assert (folder / "plateaus_variance.png").read_bytes()[:4] == b"\x89PNG"


def test_separation_task_is_e2_of_the_signals():
    import numpy as np

    from qfl_qiskit.studies.reproduce.separation import e2_task

    ds = e2_task(5, 400, 3)
    z = np.concatenate(ds.modalities, axis=1)
    e2 = sum(z[:, i] * z[:, j] for i in range(5) for j in range(i + 1, 5))
    assert ds.labels.sum() == 200
    assert e2[ds.labels == 1].min() >= e2[ds.labels == 0].max()  # the label is e_2 above its median


def test_separation_quick_rows_and_parameter_counts(tmp_path, capsys):
    code, _, err = run_cli(["reproduce", "separation", "--quick", "--results-dir", str(tmp_path), "--workers", "1"], capsys)
    assert code == 0, err
    folder = tmp_path / "reproduce" / "separation"
    s = json.loads((folder / "record.json").read_text())["payload"]["summary"]
    rows = {(r["model"], r["modalities"]): r for r in s["rows"]}
    assert set(rows) == {(m, n) for m in ("qfl", "lmf-r1", "lmf-r4") for n in (2, 6)}
    assert rows[("qfl", 6)]["fusion_parameters"] < rows[("lmf-r1", 6)]["fusion_parameters"]
    assert rows[("lmf-r4", 6)]["fusion_parameters"] > rows[("lmf-r1", 6)]["fusion_parameters"]
    assert (folder / "separation_accuracy.png").read_bytes()[:4] == b"\x89PNG"


CLASS_CODES = ("{'NORM': 100.0}", "{'IMI': 100.0}", "{'NDT': 100.0}", "{'IRBBB': 100.0}", "{'LVH': 100.0}")


def _ecg(ecg_id: int):
    import numpy as np

    rng = np.random.default_rng(ecg_id)
    t = np.arange(1000) / 100.0
    return np.stack([(ecg_id % 5) / 2 + 0.3 * rng.normal() + 0.2 * np.sin(2 * np.pi * (k + 1) * t)
                     for k in range(12)], axis=1)


def test_modalities_quick_with_ptbxl_rows_fits_and_gradients(tmp_path, capsys):
    from ..data.ptbxl_fake import write_ptbxl

    # 60 records, every class in every fold: folds 1-8 train, 9 validation, 10 test
    ptb = write_ptbxl(tmp_path / "ptbxl", {i: (CLASS_CODES[i % 5], (i // 5) % 10 + 1) for i in range(1, 61)}, _ecg)
    code, _, err = run_cli(["reproduce", "modalities", "--quick", "--seeds", "0", "--data-path", str(ptb),
                            "--results-dir", str(tmp_path), "--workers", "1"], capsys)
    assert code == 0, err
    folder = tmp_path / "reproduce" / "modalities"
    record = json.loads((folder / "record.json").read_text())
    rows = {(r["data"], r["modalities"], r["model"]): r for r in record["payload"]["summary"]["rows"]}
    assert {k[:2] for k in rows} == {("japanese_vowels", 2), ("japanese_vowels", 6), ("ptbxl", 3), ("ptbxl", 12)}
    for m in (2, 6):
        qfl, control = rows[("japanese_vowels", m, "qfl")], rows[("japanese_vowels", m, "control")]
        # the control's fusion width is chosen to match QFL's fusion-parameter count
        assert abs(control["fusion_parameters"] - qfl["fusion_parameters"]) <= 2 * m + 1
        assert all(r["grad_norm_init_mean"] > 0 for r in (qfl, control))
    assert rows[("japanese_vowels", 6, "qfl")]["test_accuracy_mean"] > 0.5  # 9 speakers: chance is 0.11
    assert 0.5 < rows[("ptbxl", 12, "qfl")]["test_macro_auc_mean"] <= 1.0
    files = record["data"]["files"][0]
    assert files["kind"] == "folder" and files["files"] == 2 * 60 + 2  # .hea + .dat each, 2 CSVs
    assert record["payload"]["verdict"]["verdict"] == "inconclusive"  # one seed
    assert (folder / "modalities_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_data_path_is_refused_where_it_means_nothing(tmp_path, capsys):
    code, _, err = run_cli(["reproduce", "degree", "--quick", "--data-path", str(tmp_path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "modalities" in err
    code, _, err = run_cli(["reproduce", "modalities", "--quick", "--data-path", str(tmp_path / "nope")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "PTB-XL" in err
    code, _, err = run_cli(["reproduce", "modalities", "--quick", "--data-path", str(tmp_path),
                            "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "ptbxl_database.csv" in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "reproduce").exists()


def test_encoding_prepare_uses_training_statistics_only():
    import numpy as np

    from qfl_qiskit.studies.reproduce.encoding import prepare

    rng = np.random.default_rng(0)
    train, test = rng.normal(5.0, 2.0, (200, 3)), np.array([[5.0, 5.0, 1e6]])
    a, b = prepare(train, test, scale=np.pi, standardise=True, clip=True)
    np.testing.assert_allclose(a.mean(0), 0.0, atol=0.2)  # clipping moves the mean a little
    # clipped at 3 training standard deviations, then standardised and scaled
    assert b[0, 2] == pytest.approx(np.pi * 3)
    raw, _ = prepare(train, test, scale=0.5, standardise=False, clip=False)
    np.testing.assert_array_equal(raw, 0.5 * train)


def test_encoding_quick_rows_per_preparation(tmp_path, capsys):
    code, _, err = run_cli(["reproduce", "encoding", "--quick", "--results-dir", str(tmp_path), "--workers", "1"],
                           capsys)
    assert code == 0, err
    folder = tmp_path / "reproduce" / "encoding"
    rows = json.loads((folder / "record.json").read_text())["payload"]["summary"]["rows"]
    assert [r["label"] for r in rows] == ["pi/4-std-noclip", "2pi-std-noclip", "pi/4-raw-noclip", "2pi-raw-noclip"]
    by = {r["label"]: r for r in rows}
    assert by["2pi-std-noclip"]["angle_p99"] == pytest.approx(8 * by["pi/4-std-noclip"]["angle_p99"])
    assert all(0.0 <= r["test_accuracy_mean"] <= 1.0 for r in rows)
    assert (folder / "encoding_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_noise_quick_gap_grows_with_noise_and_records_the_device(tmp_path, capsys):
    code, _, err = run_cli(["reproduce", "noise", "--quick", "--results-dir", str(tmp_path), "--workers", "1"],
                           capsys)
    assert code == 0, err
    folder = tmp_path / "reproduce" / "noise"
    record = json.loads((folder / "record.json").read_text())
    s = record["payload"]["summary"]
    gap = {(r["scale"], r["mitigation"]): r["gap_mean"] for r in s["rows"]}
    assert set(gap) == {(a, m) for a in (1.0, 4.0) for m in ("none", "zne")}
    assert gap[(4.0, "none")] < gap[(1.0, "none")] - 0.2  # 4x the calibration's noise costs accuracy
    assert gap[(4.0, "zne")] > gap[(4.0, "none")]  # zero-noise extrapolation wins some of it back
    assert s["best_classical"] == "concat" and s["backend"] == "fake_torino" and s["calibration_time"]
    assert all(len(r["gaps"]) == 2 for r in s["rows"])  # paired per seed
    assert (folder / "noise_gap.png").read_bytes()[:4] == b"\x89PNG"


def test_mma_quick_methods_paired_and_equal_without_missing_modalities(tmp_path, capsys):
    code, _, err = run_cli(["reproduce", "mma", "--quick", "--results-dir", str(tmp_path), "--workers", "1"], capsys)
    assert code == 0, err
    folder = tmp_path / "reproduce" / "mma"
    record = json.loads((folder / "record.json").read_text())
    rows = {(r["partition"], r["missing"]): r for r in record["payload"]["summary"]["rows"]}
    assert set(rows) == {(p, r) for p in ("iid", "dirichlet-0.1") for r in (0.0, 0.5)}
    for p in ("iid", "dirichlet-0.1"):
        # with every modality present, modality-aware FedAvg is FedAvg and the context state is never used
        assert rows[(p, 0.0)]["mma"]["values"] == rows[(p, 0.0)]["zero-fill"]["values"]
        assert rows[(p, 0.0)]["mma_minus"]["zero-fill"]["mean"] == 0.0
        assert set(rows[(p, 0.5)]["mma_minus"]) == {"zero-fill", "classical", "centralised"}
    cells = {c["id"]: c["result"] for c in record["payload"]["cells"]}
    mask = cells["M3-iid-miss0.5-mma-seed0"]["client_modalities"]
    assert 0 < sum(map(sum, mask)) < 4 * 3 and all(sum(row) >= 1 for row in mask)  # clients lack modalities
    assert len(cells["M3-iid-miss0.5-classical-seed1"]["accuracy_per_round"]) == 2
    assert record["payload"]["verdict"]["verdict"] == "inconclusive"  # 2 seeds are too few for a paired test
    assert (folder / "mma_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_paired_difference_and_test():
    from qfl_qiskit.studies.reproduce.mma import paired

    out = paired([0.8, 0.7, 0.9], [0.7, 0.65, 0.8])
    assert out["mean"] == pytest.approx(0.25 / 3) and 0 < out["p"] < 0.05
    assert paired([0.5, 0.6], [0.5, 0.6]) == {"mean": 0.0, "std": 0.0, "p": pytest.approx(float("nan"), nan_ok=True)}


def test_fingerprint_ignores_seeds_and_grid_axes_but_not_sizes():
    from qfl_qiskit.studies.reproduce import mma
    from qfl_qiskit.studies.reproduce.runner import fingerprint

    s = mma.settings(True)
    cell = mma.plan(s, s["seeds"])[0]
    base = fingerprint("mma", s, cell, mma.PLAN_KEYS)
    larger = {**s, "seeds": [0, 1, 2, 3], "grid": s["grid"] + [{"modalities": 6, "partitions": ["iid"],
                                                                 "missing": [0.0]}]}
    assert fingerprint("mma", larger, cell, mma.PLAN_KEYS) == base  # more seeds or a larger grid: resumable
    assert fingerprint("mma", {**s, "rounds": 3}, cell, mma.PLAN_KEYS) != base  # a cell of other sizes
    assert fingerprint("mma", s, {**cell, "seed": 9}, mma.PLAN_KEYS) != base
    for module in __import__("qfl_qiskit.studies.reproduce", fromlist=["EXPERIMENTS"]).EXPERIMENTS.values():
        assert set(module.PLAN_KEYS) <= set(module.settings(False))  # every plan key names a setting
