"""Your own data: .npz / CSV / Parquet loaders (every option), plugin loaders by module path and entry point,
paths relative to the spec file, provenance in records, and a generated file through compare, noisy evaluate,
a 2-process noise study and a 2-client federated run; a changed file is refused."""

from __future__ import annotations

import importlib.util
import json
import textwrap

import numpy as np
import pytest

from qfl_qiskit.data import load_dataset
from qfl_qiskit.data.files import csv_table, data_files, npz_views, parquet_table
from qfl_qiskit.errors import DataError

from ..conftest import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _views(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["benign", "malignant"] * (n // 2))
    a = rng.normal(size=(n, 3)) + (y == "malignant")[:, None]
    b = rng.normal(size=(n, 2)) - (y == "malignant")[:, None]
    return a, b, y


def test_npz_round_trip_with_every_option(tmp_path):
    a, b, y = _views()
    mask = np.ones((60, 2), dtype=int)
    mask[::7, 1] = 0
    b_nan = b.copy()
    b_nan[::7] = np.nan  # absent values may be anything
    split = np.array(["train"] * 40 + ["val"] * 10 + ["test"] * 10)
    np.savez(tmp_path / "v.npz", a=a, b=b_nan, y=y, mask=mask, split=split)
    ds = npz_views(str(tmp_path / "v.npz"))
    assert ds.names == ("a", "b") and ds.dims == (3, 2) and ds.num_classes == 2
    np.testing.assert_array_equal(ds.labels, (y == "malignant").astype(int))  # sorted classes: benign 0
    np.testing.assert_allclose(ds.modalities[0], a.astype(np.float32))
    np.testing.assert_array_equal(ds.presence, mask.astype(bool))
    assert np.all(ds.modalities[1][::7] == 0) and np.all(np.isfinite(ds.modalities[1]))
    np.testing.assert_array_equal(ds.split, [0] * 40 + [1] * 10 + [2] * 10)
    # choose and order the modalities; the mask follows them
    picked = npz_views(str(tmp_path / "v.npz"), modalities=["b", "a"])
    assert picked.names == ("b", "a") and picked.dims == (2, 3)
    np.testing.assert_array_equal(picked.presence, mask[:, [1, 0]].astype(bool))
    with pytest.raises(DataError, match="no modality present"):  # b alone: rows 0, 7, ... would hold nothing
        npz_views(str(tmp_path / "v.npz"), modalities=["b"])
    # integer labels, no mask, no split
    np.savez(tmp_path / "w.npz", b=b, a=a, y=np.arange(60) % 3)
    plain = load_dataset("npz", path=str(tmp_path / "w.npz"))
    assert plain.names == ("b", "a") and plain.num_classes == 3 and plain.split is None and plain.presence.all()


def test_csv_round_trip_with_lists_patterns_absent_modalities_and_split(tmp_path):
    a, b, y = _views()
    lines = ["id,diagnosis,a_1,a_2,a_3,b_x,b_y,part"]
    for i in range(60):
        bcells = ",".join(repr(float(v)) for v in b[i]) if i % 5 else ","  # every 5th row: modality b absent
        lines.append(f"{i},{y[i]},{','.join(repr(float(v)) for v in a[i])},{bcells},"
                     f"{'train' if i < 40 else 'val' if i < 50 else 'test'}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    ds = csv_table(str(tmp_path / "t.csv"), label="diagnosis", modalities={"a": "a_*", "b": ["b_y", "b_x"]},
                   split="part")
    assert ds.names == ("a", "b") and ds.dims == (3, 2)
    np.testing.assert_allclose(ds.modalities[0], a.astype(np.float32))
    present = np.arange(60) % 5 != 0
    np.testing.assert_array_equal(ds.presence[:, 1], present)
    np.testing.assert_allclose(ds.modalities[1][present], b[present][:, ::-1].astype(np.float32))  # listed order
    np.testing.assert_array_equal(ds.labels, (y == "malignant").astype(int))
    assert (ds.split == 0).sum() == 40 and (ds.split == 2).sum() == 10


def test_parquet_reads_like_csv_or_says_what_it_needs(tmp_path):
    import pandas as pd

    a, _, y = _views()
    frame = pd.DataFrame({"y": y, **{f"a{i}": a[:, i] for i in range(3)}})
    if importlib.util.find_spec("pyarrow") is None and importlib.util.find_spec("fastparquet") is None:
        (tmp_path / "t.parquet").write_bytes(b"PAR1")
        with pytest.raises(DataError, match="needs pyarrow"):
            parquet_table(str(tmp_path / "t.parquet"), label="y", modalities={"a": "a*"})
        return
    frame.to_parquet(tmp_path / "t.parquet")
    ds = parquet_table(str(tmp_path / "t.parquet"), label="y", modalities={"a": "a*"})
    np.testing.assert_allclose(ds.modalities[0], a.astype(np.float32))


def test_paths_are_relative_to_the_spec_file_and_provenance_names_the_file(tmp_path, monkeypatch):
    from qfl_qiskit.specs.train import load_train_spec

    a, b, y = _views()
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "v.npz", a=a, b=b, y=y)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "t.toml").write_text('name = "t"\n[data]\nname = "npz"\noptions = {path = "../data/v.npz"}\n'
                                               '[[models]]\nname = "concat"\n')
    monkeypatch.chdir(tmp_path / "data")  # anywhere else
    spec = load_train_spec(tmp_path / "specs" / "t.toml")
    assert spec.data.options["path"] == str((tmp_path / "data" / "v.npz").resolve())
    [entry] = data_files(spec.data.options)
    import hashlib

    assert entry["sha256"] == hashlib.sha256((tmp_path / "data" / "v.npz").read_bytes()).hexdigest()
    assert entry["bytes"] == (tmp_path / "data" / "v.npz").stat().st_size
    assert entry["shapes"] == {"a": [60, 3], "b": [60, 2], "y": [60]}


PLUGIN = textwrap.dedent("""
    from qfl_qiskit.data.files import npz_views

    def load(path: str, keep: int = 2):
        ds = npz_views(path)
        return ds if keep == 2 else ds.subset(list(range(keep)))
""")


def test_plugin_loaders_by_module_path_and_by_entry_point(tmp_path, monkeypatch):
    a, b, y = _views()
    np.savez(tmp_path / "v.npz", a=a, b=b, y=y)
    (tmp_path / "myloaders.py").write_text(PLUGIN)
    info = tmp_path / "myloaders_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myloaders-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[qfl_qiskit.datasets]\nthree_views = myloaders:load\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    by_path = load_dataset("myloaders:load", path=str(tmp_path / "v.npz"))
    by_entry_point = load_dataset("three_views", path=str(tmp_path / "v.npz"))
    assert by_path.dims == by_entry_point.dims == (3, 2)
    np.testing.assert_array_equal(by_path.modalities[0], by_entry_point.modalities[0])
    with pytest.raises(DataError, match="option keep"):  # the plugin's own type hints are checked too
        load_dataset("three_views", path=str(tmp_path / "v.npz"), keep="two")
    with pytest.raises(DataError, match="three_views"):  # unknown names list the plugins
        load_dataset("four_views")


TRAIN = """name = "own"
seed = 0
[data]
name = "{name}"
options = {{path = "v.npz"}}
[optim]
epochs = 2
batch_size = 16
[[models]]
name = "qfl"
features = 1
observables = 3
[[models]]
name = "concat"
features = 1
"""


def test_a_file_through_compare_noisy_evaluate_noise_study_and_federated(tmp_path, monkeypatch, capsys):
    a, b, y = _views(n=80)
    data = tmp_path / "v.npz"
    np.savez(data, a=a, b=b, y=y)
    (tmp_path / "myloaders.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the noise study's worker processes find the plugin too
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "t.toml").write_text(TRAIN.format(name="npz"))
    code, out, err = run_cli(["compare", "t.toml", "--results-dir", "res"], capsys)
    assert code == 0, err
    record = json.loads((tmp_path / "res" / "own" / "comparison.json").read_text())
    [entry] = record["data"]["files"]
    assert entry["path"] == str(data.resolve()) and entry["shapes"]["a"] == [80, 3]
    assert record["data"]["modalities"] == {"a": 3, "b": 2} and record["data"]["samples"]["train"] > 0

    code, out, err = run_cli(["evaluate", "res/own/qfl", "--backend", "fake_manila", "--shots", "200"], capsys)
    assert code == 0, err
    [evaluation] = (tmp_path / "res" / "own" / "qfl").glob("evaluate_fake_manila_*.json")
    assert json.loads(evaluation.read_text())["data"]["files"][0]["sha256"] == entry["sha256"]

    # a noise study whose model loads through the plugin, in 2 worker processes
    (tmp_path / "m.toml").write_text(TRAIN.format(name="myloaders:load").replace(
        '[[models]]\nname = "concat"\nfeatures = 1\n', ""))
    (tmp_path / "s.toml").write_text('kind = "noise_study"\nname = "s"\nscales = [0.0, 1.0]\nmitigations = ["none"]\n'
                                     'seeds = [0]\nworkers = 2\nexpectation = false\nplateau = false\n[noise]\nbackend = "fake_manila"\n'
                                     '[model]\ntrain = "m.toml"\nsamples = 8\n')
    code, out, err = run_cli(["noise-study", "s.toml", "--results-dir", "res"], capsys)
    assert code == 0, err
    study = json.loads((tmp_path / "res" / "s" / "study.json").read_text())
    assert len(study["payload"]["cells"]) == 2 and not any(c.get("error") for c in study["payload"]["cells"])
    assert study["data"]["files"][0]["sha256"] == entry["sha256"]

    (tmp_path / "f.toml").write_text('kind = "federated"\nname = "f"\nclients = 2\nrounds = 1\nmin_clients = 2\n'
                                     '[data]\nname = "npz"\noptions = {path = "v.npz"}\n'
                                     '[model]\nname = "mma"\nfeatures = 1\n')
    code, out, err = run_cli(["federated", "f.toml", "--results-dir", "res"], capsys)
    assert code == 0, err
    fed = json.loads((tmp_path / "res" / "f" / "record.json").read_text())
    assert fed["data"]["files"][0]["sha256"] == entry["sha256"] and len(fed["payload"]["history"]) == 1

    # the file changes after training: evaluate refuses with one line, and writes nothing; so does --resume
    np.savez(data, a=a + 1.0, b=b, y=y)
    record_before = (tmp_path / "res" / "own" / "qfl" / "record.json").read_bytes()
    code, out, err = run_cli(["train", "t.toml", "--results-dir", "res", "--resume"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "res" / "own" / "qfl" / "record.json").read_bytes() == record_before
    before = sorted((tmp_path / "res" / "own" / "qfl").iterdir())
    code, out, err = run_cli(["evaluate", "res/own/qfl", "--backend", "fake_manila"], capsys)
    assert code == 2 and "changed since" in err and len(err.strip().splitlines()) == 1
    assert sorted((tmp_path / "res" / "own" / "qfl").iterdir()) == before


def test_the_python_api_example_runs_and_trains_both_models(tmp_path):
    import importlib.util as iu
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "own_data_api.py"
    module_spec = iu.spec_from_file_location("own_data_api", path)
    example = iu.module_from_spec(module_spec)
    module_spec.loader.exec_module(example)
    record = example.main(tmp_path)
    rows = {r["label"]: r for r in record["payload"]["models"]}
    assert set(rows) == {"qfl", "concat"}
    assert all(r["test"]["accuracy"] > 0.85 for r in rows.values())  # an easy two-class set: chance is 0.63
    [entry] = record["data"]["files"]
    assert entry["shapes"] == {"mean": [569, 10], "se": [569, 10], "worst": [569, 10], "y": [569]}
    assert (tmp_path / "breast_cancer_api" / "qfl" / "model.pt").is_file()


def test_data_example_and_inspect(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["data", "example", "breast-cancer", "bc.csv"], capsys)
    assert code == 0, err
    (tmp_path / "t.toml").write_text('name = "t"\n[data]\nname = "csv"\noptions = {path = "bc.csv", label = '
                                     '"diagnosis", modalities = {mean = "*_mean", error = "*_se", worst = "*_worst"}}\n'
                                     '[[models]]\nname = "concat"\n')
    code, out, err = run_cli(["data", "inspect", "t.toml", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["samples"] == 569 and summary["class_counts"] == [357, 212]  # benign, malignant
    assert [m["features"] for m in summary["modalities"]] == [10, 10, 10]
    code, _, err = run_cli(["data", "example", "breast-cancer", "bc.npz"], capsys)
    assert code == 0, err
    assert npz_views(str(tmp_path / "bc.npz")).dims == (10, 10, 10)


def test_noise_study_paths_resolve_from_the_spec_folder_when_not_from_the_working_directory(tmp_path, monkeypatch):
    from qfl_qiskit.specs.study import load_study_spec

    (tmp_path / "study").mkdir()
    (tmp_path / "m.toml").write_text(TRAIN.format(name="npz"))
    (tmp_path / "study" / "s.toml").write_text('kind = "noise_study"\nname = "s"\nexpectation = false\n'
                                               'plateau = false\n[noise]\nbackend = "fake_manila"\n'
                                               '[model]\ntrain = "../m.toml"\n')
    monkeypatch.chdir(tmp_path)
    spec = load_study_spec("study/s.toml")
    assert spec.model.train == "m.toml"  # relative to the working directory, short in tables
