"""Flower simulation end to end (3 clients, 2 rounds): injected client failures, per-round records, checkpoint and
resume after an interruption giving the same model as an uninterrupted run. One test: Ray starts once."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qfl_qiskit.cli import main
from qfl_qiskit.federated.clients import client_fails
from qfl_qiskit.federated.run import run_federated, run_federated_local
from qfl_qiskit.specs.federated import FederatedSpec

SPEC = dict(name="tiny", seed=11, data={"name": "synthetic_parity", "options": {"n": 150, "num_modalities": 3}},
            model={"name": "mma", "features": 1}, clients=3, rounds=2, missing_rate=0.34, fail_fraction=0.3,
            min_clients=2)


def test_simulation_faults_records_and_resume(tmp_path):
    spec = FederatedSpec(**SPEC)
    record = run_federated(spec, tmp_path / "full")
    history = record["payload"]["history"]
    assert [h["round"] for h in history] == [1, 2]
    mask = np.array(record["payload"]["client_modalities"])
    expected_failures = [sum(client_fails(spec, c, r) for c in range(3)) for r in (1, 2)]
    assert expected_failures == [2, 1]  # seed 11: round 1 keeps one client (skipped), round 2 keeps two
    for h, failures in zip(history, expected_failures):
        assert h["failed_clients"] == failures
        assert len(h["clients"]) == 3 - failures
        for c in h["clients"]:  # each client reports exactly the modalities it holds
            assert c["modalities"] == np.flatnonzero(mask[int(c["client"])]).tolist()
        if 3 - failures < spec.min_clients:
            assert "skipped" in h
    assert (tmp_path / "full" / "accuracy_per_round.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "full" / "record.json").read_text())
    assert saved["specs"]["federated"]["spec_id"] == spec.spec_id

    # interrupted after round 1, then resumed: the same final model
    partial = run_federated(spec, tmp_path / "cut", stop_after=1)
    assert partial["payload"]["rounds_completed"] == 1 and not (tmp_path / "cut" / "record.json").exists()
    resumed = run_federated(spec, tmp_path / "cut", resume=True)
    assert [h["round"] for h in resumed["payload"]["history"]] == [1, 2]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["state"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    assert resumed["payload"]["history"][-1]["global"] == pytest.approx(history[-1]["global"], abs=1e-6)

    # the same rounds in-process (the sweeps' path): the same faults, skipped round and metrics as on Flower
    local = run_federated_local(spec)
    assert [("skipped" in h, h["failed_clients"]) for h in local] == [("skipped" in h, h["failed_clients"])
                                                                        for h in history]
    for h_local, h_flower in zip(local, history):
        assert h_local["global"] == pytest.approx(h_flower["global"], abs=1e-9)


def test_bad_federated_specs(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('kind = "federated"\nclients = 2\nmin_clients = 3\n[data]\nname = "uci_mfeat"\n')
    with pytest.raises(SystemExit) as info:
        main(["federated", str(path), "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "min_clients" in err and len(err.strip().splitlines()) == 1
