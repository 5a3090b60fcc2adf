"""Tests of qfl_qiskit.data.timeseries: the aeon-shipped BasicMotions and JapaneseVowels loaders."""

from __future__ import annotations

import numpy as np
import pytest

from qfl_qiskit.data import (
    CLASS_NAMES,
    LOADERS,
    SERIES_FEATURES,
    basic_motions,
    japanese_vowels,
    load_dataset,
    series_features,
)
from qfl_qiskit.errors import DataError

F = len(SERIES_FEATURES)


def test_series_features_values() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [0.0] * 8])
    feats = series_features(x)
    assert feats.shape == (2, F)
    np.testing.assert_allclose(feats[0, :4], [4.5, np.std(x[0]), 1.0, 8.0])
    np.testing.assert_allclose(feats[1], 0.0)
    # A pure high-frequency tone lands in the last band only.
    tone = np.cos(np.pi * np.arange(64))[None, :]
    bands = series_features(tone)[0, 4:]
    assert bands[-1] > 0 and np.allclose(bands[:-1], 0.0, atol=1e-12)
    assert np.isfinite(series_features(np.ones((1, 1)))).all()  # a length-1 series still works


def test_basic_motions_sensors_and_channels() -> None:
    ds = basic_motions()
    assert len(ds) == 80 and ds.num_modalities == 2 and ds.dims == (3 * F, 3 * F)
    assert ds.names == ("accelerometer", "gyroscope") and ds.num_classes == 4
    assert ds.class_counts().tolist() == [20, 20, 20, 20]
    assert all(x.dtype == np.float32 and np.isfinite(x).all() for x in ds.modalities)
    ch = basic_motions(modalities="channels", split="test")
    assert len(ch) == 40 and ch.num_modalities == 6 and ch.dims == (F,) * 6
    assert len(basic_motions(split="train")) == 40


def test_basic_motions_channel_mapping_matches_aeon() -> None:
    from aeon.datasets import load_basic_motions

    x_train, y_train = load_basic_motions(split="train")
    x_test, _ = load_basic_motions(split="test")
    ds = basic_motions()
    # Gyroscope modality, channel 1 of the sensor (aeon channel 4), mean feature; test samples follow train ones.
    np.testing.assert_allclose(ds.modalities[1][3, F + 0], x_train[3, 4].mean(), rtol=1e-5)
    np.testing.assert_allclose(ds.modalities[0][40 + 7, 2 * F + 3], x_test[7, 2].max(), rtol=1e-5)
    ch = basic_motions(modalities="channels")
    np.testing.assert_allclose(ch.modalities[5][0, 1], x_train[0, 5].std(), rtol=1e-5)
    assert CLASS_NAMES["basic_motions"][int(ds.labels[0])] == y_train[0]


def test_japanese_vowels_shapes_and_mapping() -> None:
    from aeon.datasets import load_japanese_vowels

    ds = japanese_vowels()
    assert len(ds) == 640 and ds.num_modalities == 12 and ds.dims == (F,) * 12 and ds.num_classes == 9
    assert ds.class_counts().sum() == 640 and (ds.class_counts() > 0).all()
    assert all(np.isfinite(x).all() for x in ds.modalities)
    x_test, y_test = load_japanese_vowels(split="test")
    test = japanese_vowels(split="test", max_modalities=4)
    assert len(test) == 370 and test.num_modalities == 4 and test.names == ("lpc0", "lpc1", "lpc2", "lpc3")
    i = 11  # unequal lengths: features use the sample's own length
    np.testing.assert_allclose(test.modalities[3][i, 0], np.mean(x_test[i][3]), rtol=1e-5)
    np.testing.assert_allclose(test.modalities[2][i, 2], np.min(x_test[i][2]), rtol=1e-5)
    assert CLASS_NAMES["japanese_vowels"][int(test.labels[i])] == y_test[i]
    assert len(japanese_vowels(split="train")) == 270


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: basic_motions(split="val"), "split must be one of"),
        (lambda: basic_motions(modalities="axes"), "'sensors' or 'channels'"),
        (lambda: japanese_vowels(split="dev"), "split must be one of"),
        (lambda: japanese_vowels(max_modalities=0), "1..12"),
        (lambda: japanese_vowels(max_modalities=13), "1..12"),
    ],
)
def test_timeseries_bad_input(call: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        call()  # type: ignore[operator]


def test_timeseries_registered() -> None:
    assert {"basic_motions", "japanese_vowels"} <= set(LOADERS)
    assert load_dataset("japanese_vowels", max_modalities=2).num_modalities == 2
