from __future__ import annotations

import json

import pytest

from qfl_qiskit.noise import noise_model
from qfl_qiskit.specs import BackendNoiseSpec

from ..conftest import run_cli


def run(argv, capsys):
    return run_cli(argv, capsys)


def test_noise_snapshot_writes_a_dated_file_and_prints_a_summary(tmp_path, capsys):
    code, out, err = run(["noise", "snapshot", "fake_manila", "--out-dir", str(tmp_path)], capsys)
    assert code == 0, err
    path = tmp_path / "fake_manila_2024-05-27.json"
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]
    lines = out.strip().splitlines()
    assert lines[0] == str(path)
    assert len(lines) == 2 and "5 qubits" in lines[1] and "2024-05-27" in lines[1] and "readout" in lines[1]
    data = json.loads(path.read_text())
    assert data["backend"] == "fake_manila"
    spec = BackendNoiseSpec(backend="fake_manila", snapshot=str(path))
    assert noise_model(spec) == noise_model(BackendNoiseSpec(backend="fake_manila"))


def test_noise_snapshot_bad_backend_is_one_line_exit_2(tmp_path, capsys):
    code, out, err = run(["noise", "snapshot", "fake_manilla", "--out-dir", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: unknown backend 'fake_manilla'") and err.count("\n") == 1
    assert "fake_manila" in err  # suggests the close name
    assert not any(tmp_path.iterdir())


def test_noise_group_help(capsys):
    code, out, _ = run(["noise"], capsys)
    assert code == 0 and "snapshot" in out
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "noise" in out
