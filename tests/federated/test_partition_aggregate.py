"""Federated partitions and aggregation rules, checked against hand-computed results."""

from __future__ import annotations

import numpy as np
import pytest

from qfl_qiskit.data import MultimodalDataset
from qfl_qiskit.errors import DataError
from qfl_qiskit.federated.aggregate import (
    ClientUpdate,
    Ownership,
    fedavg,
    mma_ownership,
    modality_aware_fedavg,
    validate_updates,
)
from qfl_qiskit.federated.partition import (
    client_datasets,
    client_modality_mask,
    dirichlet_partition,
    iid_partition,
)

LABELS = np.repeat(np.arange(5), 60)  # 300 samples, 5 balanced classes


def complete_and_disjoint(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == n and len(np.unique(joined)) == n


def test_iid_partition_is_balanced_complete_and_seeded():
    parts = iid_partition(LABELS, 4, seed=0)
    assert complete_and_disjoint(parts, 300)
    assert {len(p) for p in parts} == {75}
    for p in parts:  # each class 15 times per client
        assert np.all(np.bincount(LABELS[p], minlength=5) == 15)
    assert all(np.array_equal(a, b) for a, b in zip(parts, iid_partition(LABELS, 4, seed=0)))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, iid_partition(LABELS, 4, seed=1)))


def skew(parts):
    """Mean over clients of the largest class share: 1/5 when IID, 1 when each client has one class."""
    return np.mean([np.bincount(LABELS[p], minlength=5).max() / len(p) for p in parts])


def test_dirichlet_skew_grows_as_alpha_shrinks():
    skews = {a: np.mean([skew(dirichlet_partition(LABELS, 5, alpha=a, seed=s)) for s in range(5)])
             for a in (0.1, 0.5, 100.0)}
    assert skews[0.1] > skews[0.5] > skews[100.0]
    assert skews[100.0] < 0.3 and skews[0.1] > 0.6
    for s in range(3):
        parts = dirichlet_partition(LABELS, 5, alpha=0.1, seed=s, min_samples=4)
        assert complete_and_disjoint(parts, 300) and min(len(p) for p in parts) >= 4


def test_partition_errors():
    with pytest.raises(DataError, match="alpha"):
        dirichlet_partition(LABELS, 3, alpha=0.0, seed=0)
    with pytest.raises(DataError, match="cannot be split"):
        iid_partition(LABELS[:2], 3, seed=0)
    with pytest.raises(DataError, match="missing rate"):
        client_modality_mask(4, 3, 1.0, seed=0)


def test_client_modality_mask_rate_and_no_empty_client():
    mask = client_modality_mask(10, 3, 0.3, seed=2)
    assert mask.any(axis=1).all()
    missing = (~mask).sum(axis=0)
    assert np.all(missing <= 3) and missing.sum() >= 7  # 3 per modality, minus clients given one back
    ds = MultimodalDataset(modalities=(np.ones((300, 2), np.float32), np.ones((300, 1), np.float32),
                                       np.ones((300, 2), np.float32)), labels=LABELS)
    parts = iid_partition(LABELS, 10, seed=0)
    clients = client_datasets(ds, parts, mask)
    for c, sub in enumerate(clients):
        assert np.array_equal(sub.presence.any(axis=0), mask[c])
        assert np.all(sub.modalities[0][~sub.presence[:, 0]] == 0)


def update(name, n, w, enc1, mods=frozenset({0, 1})):
    return ClientUpdate(name, {"fusion.weights": np.asarray(w, float), "encoders.encoders.1.0.weight":
                               np.asarray(enc1, float), "head.bias": np.asarray([float(n)])}, n, frozenset(mods))


REF = {"fusion.weights": np.zeros(4), "encoders.encoders.1.0.weight": np.full(2, 9.0), "head.bias": np.zeros(1)}


def test_fedavg_weights_by_samples():
    out = fedavg([update("a", 1, [1, 1, 1, 1], [0, 0]), update("b", 3, [5, 5, 5, 5], [4, 4])], REF)
    np.testing.assert_allclose(out["fusion.weights"], [4, 4, 4, 4])  # (1*1 + 3*5) / 4
    np.testing.assert_allclose(out["encoders.encoders.1.0.weight"], [3, 3])
    np.testing.assert_allclose(out["head.bias"], [2.5])  # (1*1 + 3*3) / 4


def test_modality_aware_fedavg_by_hand():
    # weights: [modality 0 | modality 1 | fusion x2]; client b did not train modality 1
    own = Ownership(entries={"encoders.encoders.1.0.weight": 1}, slices={"fusion.weights": [(0, 1, 0), (1, 2, 1)]})
    a = update("a", 1, [1, 2, 3, 4], [10, 10], {0, 1})
    b = update("b", 3, [5, 6, 7, 8], [99, 99], {0})
    out = modality_aware_fedavg([a, b], REF, own)
    np.testing.assert_allclose(out["fusion.weights"], [4.0, 2.0, 6.0, 7.0])  # slot 1 from a alone
    np.testing.assert_allclose(out["encoders.encoders.1.0.weight"], [10, 10])  # b's untrained copy ignored
    only_b = modality_aware_fedavg([b], REF, own)
    np.testing.assert_allclose(only_b["fusion.weights"][1], 0.0)  # nobody trained modality 1: previous global
    np.testing.assert_allclose(only_b["encoders.encoders.1.0.weight"], [9, 9])


def test_validate_rejects_nan_shapes_and_missing_entries():
    good = update("good", 2, [1, 2, 3, 4], [1, 1])
    nan = update("nan", 2, [1, np.nan, 3, 4], [1, 1])
    shape = update("shape", 2, [1, 2, 3], [1, 1])
    missing = ClientUpdate("missing", {"fusion.weights": np.zeros(4)}, 2)
    empty = update("empty", 0, [1, 2, 3, 4], [1, 1])
    accepted, rejected = validate_updates([good, nan, shape, missing, empty], REF)
    assert [u.client for u in accepted] == ["good"]
    reasons = dict(rejected)
    assert "NaN" in reasons["nan"] and "shape" in reasons["shape"] and "missing" in reasons["missing"]
    assert "sample count" in reasons["empty"]


def test_mma_ownership_from_weight_groups():
    keys = ["encoders.encoders.0.0.weight", "encoders.encoders.1.0.bias", "encoders.encoders.10.0.weight",
            "fusion.weights", "head.weight"]
    groups = {"modality_0": [0, 4], "modality_1": [4, 8], "modality_10": [8, 12], "fusion": [12, 20]}
    own = mma_ownership(keys, groups)
    assert own.entries == {"encoders.encoders.0.0.weight": 0, "encoders.encoders.1.0.bias": 1,
                           "encoders.encoders.10.0.weight": 10}
    assert sorted(own.slices["fusion.weights"]) == [(0, 4, 0), (4, 8, 1), (8, 12, 10)]


def test_example_federated_spec_loads():
    from qfl_qiskit.specs.federated import load_federated_spec

    from ..conftest import REPO

    spec = load_federated_spec(REPO / "experiments" / "federated_uci_mfeat.toml")
    assert spec.clients == 4 and spec.modality_aware and spec.model.name == "mma"
