"""Tests of qfl_qiskit.data: validation, splits, scaling, loaders, synthetic tasks, tensors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from qfl_qiskit.data import (
    LOADERS,
    UCI_MFEAT_VIEWS,
    MultimodalDataset,
    Standardizer,
    digits_quadrants,
    load_dataset,
    stratified_split,
    synthetic_parity,
    synthetic_polynomial,
    to_tensors,
    uci_mfeat,
)
from qfl_qiskit.errors import DataError, QflError


def _toy(n: int = 60, *, seed: int = 0, classes: int = 3) -> MultimodalDataset:
    rng = np.random.default_rng(seed)
    return MultimodalDataset(
        modalities=(rng.normal(size=(n, 3)), rng.normal(size=(n, 2))),
        labels=np.arange(n) % classes,
        names=("a", "b"),
    )


# --- MultimodalDataset ----------------------------------------------------------------------------------------


def test_dataset_defaults_and_immutability() -> None:
    ds = _toy()
    assert len(ds) == 60 and ds.dims == (3, 2) and ds.num_classes == 3
    assert ds.presence.shape == (60, 2) and ds.presence.all()
    with pytest.raises(ValueError):
        ds.modalities[0][0, 0] = 1.0  # read-only
    assert issubclass(DataError, QflError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"modalities": (np.zeros((4, 2)), np.zeros((5, 2))), "labels": np.zeros(4, int)}, "number of samples"),
        ({"modalities": (np.zeros((4, 2)),), "labels": np.zeros(5, int)}, "labels have shape"),
        ({"modalities": (np.array([[0.0], [np.nan]]),), "labels": np.zeros(2, int)}, "non-finite"),
        ({"modalities": (np.zeros((2, 1)),), "labels": np.array([0, 3]), "num_classes": 3}, "0..2"),
        ({"modalities": (np.zeros((2, 1)),), "labels": np.array([0, -1])}, "labels must lie"),
        ({"modalities": (np.zeros((2, 1)),), "labels": np.array([0.0, 0.5])}, "whole numbers"),
        ({"modalities": (np.zeros(3),), "labels": np.zeros(3, int)}, "2-D"),
        ({"modalities": (), "labels": np.zeros(0, int)}, "at least one"),
        ({"modalities": (np.zeros((2, 1)),), "labels": np.zeros(2, int), "presence": np.ones((2, 2))}, "presence"),
        ({"modalities": (np.zeros((2, 1)),) * 2, "labels": np.zeros(2, int), "names": ("x", "x")}, "unique"),
    ],
)
def test_dataset_validation_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        MultimodalDataset(**kwargs)


def test_absent_entries_may_be_nan_and_are_zeroed() -> None:
    x = np.array([[1.0, 2.0], [np.nan, np.nan]])
    ds = MultimodalDataset(modalities=(x, np.ones((2, 1))), labels=[0, 1], presence=[[True, True], [False, True]])
    assert np.array_equal(ds.modalities[0], [[1.0, 2.0], [0.0, 0.0]])
    assert np.isnan(x[1, 0])  # the caller's array is not modified


def test_subset_keeps_classes_and_alignment() -> None:
    ds = _toy()
    sub = ds.subset([5, 2])
    assert sub.num_classes == 3 and sub.names == ("a", "b")
    assert np.array_equal(sub.labels, ds.labels[[5, 2]])
    assert np.array_equal(sub.modalities[1], ds.modalities[1][[5, 2]])
    mask = ds.labels == 1
    assert np.array_equal(ds.subset(mask).labels, np.ones(20))
    with pytest.raises(DataError):
        ds.subset([60])
    with pytest.raises(DataError):
        ds.subset([0.5])


# --- split and standardizer -----------------------------------------------------------------------------------


def test_split_is_disjoint_stratified_and_seeded() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], [100, 60, 40])
    ds = MultimodalDataset(modalities=(np.arange(200.0)[:, None], rng.normal(size=(200, 2))), labels=labels)
    train, val, test = stratified_split(ds, seed=3)
    ids = [np.asarray(p.modalities[0][:, 0], dtype=int) for p in (train, val, test)]
    assert sorted(np.concatenate(ids).tolist()) == list(range(200))  # disjoint and complete
    assert (len(train), len(val), len(test)) == (140, 30, 30)
    for part in (train, val, test):
        share = part.class_counts() / len(part)
        assert np.allclose(share, [0.5, 0.3, 0.2], atol=0.04)
    again = stratified_split(ds, seed=3)
    other = stratified_split(ds, seed=4)
    assert all(np.array_equal(a.modalities[0], b.modalities[0]) for a, b in zip((train, val, test), again))
    assert not np.array_equal(train.modalities[0], other[0].modalities[0])
    with pytest.raises(DataError):
        stratified_split(ds, fractions=(0.5, 0.5, 0.5), seed=0)


def test_standardizer_uses_train_statistics_only() -> None:
    rng = np.random.default_rng(2)
    train = MultimodalDataset(modalities=(rng.normal(3.0, 2.0, size=(500, 4)),), labels=np.zeros(500, int))
    test = MultimodalDataset(modalities=(rng.normal(8.0, 2.0, size=(500, 4)),), labels=np.zeros(500, int))
    scaler = Standardizer().fit(train)
    z_train, z_test = scaler.transform(train), scaler.transform(test)
    assert np.allclose(z_train.modalities[0].mean(axis=0), 0.0, atol=1e-6)
    assert np.allclose(z_train.modalities[0].std(axis=0), 1.0, atol=1e-6)
    assert np.allclose(z_test.modalities[0].mean(axis=0), 2.5, atol=0.3)  # (8 - 3) / 2, not re-centred


def test_standardizer_ignores_absent_entries() -> None:
    x = np.array([[1.0], [3.0], [1000.0]])
    ds = MultimodalDataset(modalities=(x,), labels=[0, 1, 0], presence=[[True], [True], [False]])
    scaler = Standardizer().fit(ds)
    assert np.allclose(scaler.means[0], 2.0) and np.allclose(scaler.stds[0], 1.0)
    assert np.allclose(scaler.transform(ds).modalities[0][:, 0], [-1.0, 1.0, 0.0])
    with pytest.raises(DataError):
        Standardizer().transform(ds)
    with pytest.raises(DataError):
        scaler.transform(_toy())


# --- loaders --------------------------------------------------------------------------------------------------


def test_uci_mfeat_shapes_and_counts() -> None:
    ds = load_dataset("uci_mfeat")
    assert ds.names == UCI_MFEAT_VIEWS
    assert len(ds) == 2000 and ds.dims == (76, 216, 64, 240, 47, 6)
    assert np.array_equal(ds.class_counts(), np.full(10, 200))
    assert all(x.dtype == np.float32 for x in ds.modalities)
    # the files are in class order: 200 zeros, then 200 ones, ...
    assert np.array_equal(ds.labels, np.repeat(np.arange(10), 200))
    # pixel view holds 0..6 integer-valued averages (UCI documentation)
    pix = ds.modalities[3]
    assert pix.min() == 0 and pix.max() == 6 and np.all(pix == np.round(pix))
    two = uci_mfeat(views=("mor", "fou"))
    assert two.dims == (6, 76) and np.array_equal(two.modalities[1], ds.modalities[0])
    with pytest.raises(DataError):
        uci_mfeat(views=("nope",))


def test_digits_quadrants_reconstruct_images() -> None:
    ds = digits_quadrants()
    images = load_digits().images
    assert len(ds) == images.shape[0] == 1797 and ds.dims == (16, 16, 16, 16) and ds.num_classes == 10
    q = [x.reshape(-1, 4, 4) for x in ds.modalities]
    rebuilt = np.block([[q[0], q[1]], [q[2], q[3]]])
    assert np.array_equal(rebuilt, images)


def test_load_dataset_errors() -> None:
    assert set(LOADERS) >= {"uci_mfeat", "digits_quadrants", "synthetic_polynomial", "synthetic_parity"}
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="bad arguments"):
        load_dataset("synthetic_parity", colour="red")


# --- synthetic tasks ------------------------------------------------------------------------------------------


def _trig_features(x: np.ndarray, degree: int) -> np.ndarray:
    """cos/sin of w.x for every integer frequency w (up to sign) with 0 < |w|_1 <= degree."""
    feats = []
    for w in itertools.product(range(-degree, degree + 1), repeat=x.shape[1]):
        w = np.array(w)
        if 0 < np.abs(w).sum() <= degree and w[np.flatnonzero(w)[0]] > 0:
            feats += [np.cos(x @ w), np.sin(x @ w)]
    return np.stack(feats, axis=1)


def _holdout_accuracy(features: np.ndarray, labels: np.ndarray, *, n_train: int, c: float = 1.0) -> float:
    clf = LogisticRegression(C=c, max_iter=3000).fit(features[:n_train], labels[:n_train])
    return float(clf.score(features[n_train:], labels[n_train:]))


def test_synthetic_polynomial_is_balanced_seeded_and_needs_degree_p() -> None:
    ds = synthetic_polynomial(num_modalities=2, features=2, degree=3, n=1500, seed=1)
    assert ds.dims == (2, 2) and np.array_equal(ds.class_counts(), [750, 750])
    again = synthetic_polynomial(num_modalities=2, features=2, degree=3, n=1500, seed=1)
    assert np.array_equal(ds.labels, again.labels)
    x = np.concatenate(ds.modalities, axis=1).astype(np.float64)
    assert np.abs(x).max() <= np.pi
    full = _holdout_accuracy(_trig_features(x, 3), ds.labels, n_train=1000, c=100.0)
    low = _holdout_accuracy(_trig_features(x, 2), ds.labels, n_train=1000, c=100.0)
    assert full > 0.9  # a linear threshold of the degree-<=P spectrum
    assert low < 0.65  # every term has degree exactly P: lower frequencies carry (almost) nothing


def test_synthetic_polynomial_terms_couple_modalities() -> None:
    ds = synthetic_polynomial(num_modalities=2, features=1, degree=2, n=1500, seed=0)
    x = np.concatenate(ds.modalities, axis=1).astype(np.float64)
    for m in range(2):  # degree-2 features of one modality alone are at chance
        assert _holdout_accuracy(_trig_features(x[:, [m]], 2), ds.labels, n_train=1000) < 0.62
    assert _holdout_accuracy(_trig_features(x, 2), ds.labels, n_train=1000, c=100.0) > 0.9


def test_synthetic_parity_balanced_and_not_separable_per_modality() -> None:
    ds = synthetic_parity(num_modalities=3, n=2000, seed=0)
    assert np.array_equal(ds.class_counts(), [1000, 1000])
    for x in ds.modalities:
        assert _holdout_accuracy(x, ds.labels, n_train=1500) < 0.58
    concat = np.concatenate(ds.modalities, axis=1)
    assert _holdout_accuracy(concat, ds.labels, n_train=1500) < 0.58  # not linear in all inputs either
    product = np.prod([x.sum(axis=1) for x in ds.modalities], axis=0)[:, None]
    assert _holdout_accuracy(np.sign(product), ds.labels, n_train=1500) == 1.0
    with pytest.raises(DataError):
        synthetic_parity(num_modalities=1)


# --- tensors --------------------------------------------------------------------------------------------------


def test_to_tensors_dtypes_and_values() -> None:
    ds = MultimodalDataset(
        modalities=(np.ones((3, 2)), np.zeros((3, 1))), labels=[0, 1, 1], presence=[[1, 1], [1, 0], [1, 1]]
    )
    t = to_tensors(ds)
    assert [x.dtype for x in t.modalities] == [torch.float32, torch.float32]
    assert t.modalities[0].shape == (3, 2) and torch.all(t.modalities[0] == 1)
    assert t.labels.dtype == torch.int64 and t.labels.tolist() == [0, 1, 1]
    assert t.presence.dtype == torch.bool and t.presence.tolist() == [[True, True], [True, False], [True, True]]
    t.modalities[0][0, 0] = 5.0  # tensors own their memory
    assert ds.modalities[0][0, 0] == 1.0
