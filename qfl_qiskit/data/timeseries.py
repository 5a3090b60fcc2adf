"""Multivariate time-series classification sets shipped inside ``aeon`` (offline), turned into multimodal data.

Every channel of a series is summarised by :func:`series_features` (:data:`SERIES_FEATURES`, 8 numbers); a modality
is the concatenation of the summaries of its channels, in channel order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.errors import DataError

SPECTRAL_BANDS: int = 4
"""Number of equal-width frequency bands (DC excluded, up to Nyquist) in :func:`series_features`."""

SERIES_FEATURES: tuple[str, ...] = ("mean", "std", "min", "max") + tuple(
    f"band{k}" for k in range(SPECTRAL_BANDS)
)
"""The per-channel summary features, in order (see :func:`series_features`)."""

BASIC_MOTIONS_CHANNELS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
"""BasicMotions channels in aeon's order: 0-2 accelerometer, 3-5 gyroscope."""

BASIC_MOTIONS_SENSORS: dict[str, tuple[int, ...]] = {"accelerometer": (0, 1, 2), "gyroscope": (3, 4, 5)}
"""Modalities of :func:`basic_motions` with ``modalities="sensors"``: name -> channel indices."""

JAPANESE_VOWELS_CHANNELS: tuple[str, ...] = tuple(f"lpc{k}" for k in range(12))
"""JapaneseVowels channels (12 LPC cepstrum coefficients), the modality names of :func:`japanese_vowels`."""

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "basic_motions": ("badminton", "running", "standing", "walking"),
    "japanese_vowels": tuple(str(k) for k in range(1, 10)),
}
"""Original class names per loader; label ``i`` is ``CLASS_NAMES[loader][i]`` (sorted order of the names)."""

_SPLITS = ("train", "test", "all")


def series_features(series: np.ndarray) -> np.ndarray:
    """Summarise each channel of one series by mean, std, min, max and spectral band magnitudes.

    The band features are the mean of ``|rfft(x)| / T`` over :data:`SPECTRAL_BANDS` equal-width bands of the
    non-DC frequency bins (low to high frequency). Series shorter than ``2 * SPECTRAL_BANDS`` are zero-padded for the
    transform so every band has at least one bin.

    Args:
        series: One series of shape (channels, T), T >= 1, finite values.

    Returns:
        An array of shape (channels, len(SERIES_FEATURES)), float64.
    """
    x = np.asarray(series, dtype=np.float64)
    length = x.shape[1]
    spectrum = np.abs(np.fft.rfft(x, n=max(length, 2 * SPECTRAL_BANDS), axis=1))[:, 1:] / length
    bands = [band.mean(axis=1) for band in np.array_split(spectrum, SPECTRAL_BANDS, axis=1)]
    stats = [x.mean(axis=1), x.std(axis=1), x.min(axis=1), x.max(axis=1)]
    return np.stack(stats + bands, axis=1)


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise DataError(f"split must be one of {_SPLITS}, got {split!r}")


def _load_aeon(loader_name: str, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Call an aeon loader for one or both splits; return per-sample (channels, T) arrays and string labels."""
    import aeon.datasets

    loader = getattr(aeon.datasets, loader_name)
    parts = ("train", "test") if split == "all" else (split,)
    series: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for part in parts:
        x, y = loader(split=part)
        series.extend(np.asarray(s, dtype=np.float64) for s in x)
        labels.append(np.asarray(y).astype(str))
    return series, np.concatenate(labels)


def _encode(labels: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"aeon returned unexpected class names {unknown}; expected {classes} (aeon version change?)")
    return np.array([index[s] for s in labels], dtype=np.int64)


def _modalities(series: Sequence[np.ndarray], groups: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, ...]:
    """Features of every sample, shape (N, channels, F), then one (N, len(group) * F) float32 block per group."""
    feats = np.stack([series_features(s) for s in series])
    n = feats.shape[0]
    return tuple(feats[:, list(g), :].reshape(n, -1).astype(np.float32) for g in groups)


def basic_motions(*, modalities: str = "sensors", split: str = "all") -> MultimodalDataset:
    """BasicMotions (aeon): smartwatch accelerometer + gyroscope, 4 activities, 40 train + 40 test series.

    Each series has 6 channels (:data:`BASIC_MOTIONS_CHANNELS`) of 100 steps; each channel becomes the 8
    :data:`SERIES_FEATURES`. Labels are 0..3 in sorted order of the class names (:data:`CLASS_NAMES`).

    Args:
        modalities: ``"sensors"`` for 2 modalities (accelerometer, gyroscope; 24 features each) or ``"channels"``
            for 6 modalities (one per channel; 8 features each).
        split: ``"train"``, ``"test"`` or ``"all"`` (train then test, concatenated).

    Returns:
        A data set of 80 (``"all"``) or 40 samples with 4 classes.

    Raises:
        DataError: If ``modalities`` or ``split`` is unknown.
    """
    if modalities == "sensors":
        names, groups = tuple(BASIC_MOTIONS_SENSORS), tuple(BASIC_MOTIONS_SENSORS.values())
    elif modalities == "channels":
        names, groups = BASIC_MOTIONS_CHANNELS, tuple((c,) for c in range(6))
    else:
        raise DataError(f"modalities must be 'sensors' or 'channels', got {modalities!r}")
    _check_split(split)
    series, raw = _load_aeon("load_basic_motions", split)
    labels = _encode(raw, CLASS_NAMES["basic_motions"])
    return MultimodalDataset(modalities=_modalities(series, groups), labels=labels, names=names, num_classes=4)


def japanese_vowels(*, split: str = "all", max_modalities: int = 12) -> MultimodalDataset:
    """JapaneseVowels (aeon): 9 speakers, 12 LPC channels per utterance, 270 train + 370 test series.

    The series have unequal lengths (7 to 29 steps); aeon returns them as they are and :func:`series_features`
    summarises each at its own length (no padding or truncation). Every channel is one modality (the high-modality
    regime) with the 8 :data:`SERIES_FEATURES`. Labels are 0..8 for speakers ``"1"``..``"9"``.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (train then test, concatenated).
        max_modalities: Keep the first k channels, 1 <= k <= 12.

    Returns:
        A data set of 640 (``"all"``), 270 or 370 samples, ``max_modalities`` modalities and 9 classes.

    Raises:
        DataError: If ``split`` is unknown or ``max_modalities`` is outside 1..12.
    """
    if isinstance(max_modalities, bool) or not isinstance(max_modalities, int) or not 1 <= max_modalities <= 12:
        raise DataError(f"max_modalities must be an integer in 1..12, got {max_modalities!r}")
    _check_split(split)
    series, raw = _load_aeon("load_japanese_vowels", split)
    labels = _encode(raw, CLASS_NAMES["japanese_vowels"])
    groups = tuple((c,) for c in range(max_modalities))
    return MultimodalDataset(
        modalities=_modalities(series, groups),
        labels=labels,
        names=JAPANESE_VOWELS_CHANNELS[:max_modalities],
        num_classes=9,
    )
