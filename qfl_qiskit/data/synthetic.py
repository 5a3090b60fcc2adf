"""Seeded synthetic multimodal tasks: a cross-modal trigonometric polynomial and a cross-modal parity."""

from __future__ import annotations

import numpy as np

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.errors import DataError


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise DataError(f"{name} must be a positive integer, got {value!r}")


def _check_size(n: int, num_modalities: int, features: int, *, terms: int = 1, degree: int = 1) -> None:
    """Refuse, before allocating, a data set larger than :data:`~qfl_qiskit.limits.MAX_DATA_VALUES` values."""
    from qfl_qiskit.limits import MAX_DATA_VALUES, check_data_values

    why = check_data_values(n, num_modalities, features)
    if why is None and (terms * num_modalities * features > MAX_DATA_VALUES or degree > MAX_DATA_VALUES):
        why = f"terms x num_modalities x features and degree must stay below {MAX_DATA_VALUES:,}"
    if why:
        raise DataError(why)


def _frequencies(rng: np.random.Generator, *, num_modalities: int, features: int, degree: int) -> np.ndarray:
    """One integer frequency vector over all M*d inputs with L1 norm exactly ``degree``.

    When there are two or more modalities and ``degree >= 2``, the first two units go to two different modalities,
    so every term couples modalities.
    """
    omega = np.zeros(num_modalities * features, dtype=np.int64)
    units = []
    if num_modalities >= 2 and degree >= 2:
        m0, m1 = rng.choice(num_modalities, size=2, replace=False)
        units += [m0 * features + rng.integers(features), m1 * features + rng.integers(features)]
    units += list(rng.integers(num_modalities * features, size=degree - len(units)))
    for u in units:
        omega[u] += 1
    return omega * rng.choice([-1, 1], size=omega.shape)


def synthetic_polynomial(
    num_modalities: int = 2,
    features: int = 2,
    degree: int = 2,
    n: int = 1000,
    seed: int = 0,
    *,
    terms: int = 4,
) -> MultimodalDataset:
    """Two balanced classes from the sign of a cross-modal trigonometric polynomial of degree ``degree``.

    Inputs are uniform on ``[-pi, pi)``, ``features`` per modality. The target is
    ``f(x) = sum_k cos(omega_k . x + phi_k)`` over ``terms`` random integer frequency vectors ``omega_k`` of L1
    norm exactly ``degree`` (each touching at least two modalities when that is possible) and random phases; the
    label is ``f(x) > median(f)``. The label is therefore a linear threshold of the cos/sin features of frequency
    L1 norm at most ``degree``: the spectrum a degree-``degree`` data re-uploading model can represent.

    Args:
        num_modalities: Number of modalities M.
        features: Features per modality d.
        degree: Degree P of the trigonometric polynomial.
        n: Number of samples.
        seed: Seed for inputs, frequencies and phases.
        terms: Number of cosine terms in the target.

    Returns:
        A data set with M modalities of shape (n, d), 2 classes of n // 2 and n - n // 2 samples.

    Raises:
        DataError: If a size is not a positive integer or ``n < 2``.
    """
    _check_positive(num_modalities=num_modalities, features=features, degree=degree, n=n, terms=terms)
    _check_size(n, num_modalities, features, terms=terms, degree=degree)
    if n < 2:
        raise DataError(f"n must be at least 2 for two classes, got {n}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(n, num_modalities * features))
    omegas = np.stack(
        [_frequencies(rng, num_modalities=num_modalities, features=features, degree=degree) for _ in range(terms)]
    )
    phases = rng.uniform(0.0, 2 * np.pi, size=terms)
    f = np.cos(x @ omegas.T + phases).sum(axis=1)
    labels = np.zeros(n, dtype=np.int64)
    labels[np.argsort(f, kind="stable")[n // 2 :]] = 1
    mods = tuple(x[:, m * features : (m + 1) * features] for m in range(num_modalities))
    return MultimodalDataset(modalities=mods, labels=labels, num_classes=2)


def synthetic_parity(
    num_modalities: int = 2,
    n: int = 1000,
    seed: int = 0,
    *,
    features: int = 2,
) -> MultimodalDataset:
    """Label = XOR over modalities of the bit ``sum(x_m) > 0``: no single modality says anything about the label.

    Each modality holds ``features`` standard normal values. The labels are exactly balanced; bits of the first
    M - 1 modalities are fair coins and the last modality's bit completes the parity, so each modality on its own
    is independent of the label (any single-modality classifier is at chance), while all of them together
    determine it.

    Args:
        num_modalities: Number of modalities M, at least 2.
        n: Number of samples.
        seed: Seed.
        features: Features per modality.

    Returns:
        A data set with M modalities of shape (n, features), 2 classes of n - n // 2 and n // 2 samples.

    Raises:
        DataError: If ``num_modalities < 2`` (one modality would make the task linearly separable) or a size is
            not a positive integer.
    """
    _check_positive(num_modalities=num_modalities, n=n, features=features)
    _check_size(n, num_modalities, features)
    if num_modalities < 2:
        raise DataError("synthetic_parity needs at least 2 modalities; with one, the label is a linear threshold")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    bits = rng.integers(0, 2, size=(n, num_modalities))
    bits[:, -1] = labels ^ (bits[:, :-1].sum(axis=1) % 2)
    mods = []
    for m in range(num_modalities):
        g = rng.standard_normal((n, features))
        flip = (g.sum(axis=1) > 0) != bits[:, m].astype(bool)
        g[flip] *= -1.0
        mods.append(g)
    return MultimodalDataset(modalities=tuple(mods), labels=labels, num_classes=2)
