"""Splitting and scaling: a stratified train/val/test split and a per-modality standardizer fitted on train only."""

from __future__ import annotations

import numpy as np

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.errors import DataError


def stratified_split(
    ds: MultimodalDataset,
    *,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int,
) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset]:
    """Split into disjoint train, validation and test sets with the class proportions of ``ds``.

    Args:
        ds: The data set to split.
        fractions: Train, validation and test fractions; each positive, summing to 1.
        seed: Seed of the shuffle; the same seed gives the same split.

    Returns:
        ``(train, val, test)``, which together hold every sample exactly once.

    Raises:
        DataError: If the fractions are invalid or a class is too small to appear in every part.
    """
    from sklearn.model_selection import train_test_split

    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or min(fr) <= 0 or not np.isclose(sum(fr), 1.0):
        raise DataError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    idx = np.arange(len(ds))
    try:
        train, rest = train_test_split(idx, train_size=fr[0], stratify=ds.labels, random_state=seed)
        val_share = fr[1] / (fr[1] + fr[2])
        val, test = train_test_split(rest, train_size=val_share, stratify=ds.labels[rest], random_state=seed)
    except ValueError as exc:
        raise DataError(f"cannot split {len(ds)} samples stratified by class as {fr}: {exc}") from None
    return ds.subset(np.sort(train)), ds.subset(np.sort(val)), ds.subset(np.sort(test))


class Standardizer:
    """Per-modality, per-feature standardization with statistics from one (training) data set.

    Absent entries (``presence`` False) are ignored when fitting and stay zero when transforming, which is the
    training mean after scaling. A constant feature keeps its scale (std taken as 1).

    Attributes:
        means: Per-modality feature means, set by :meth:`fit`.
        stds: Per-modality feature standard deviations, set by :meth:`fit`.
    """

    def __init__(self, *, eps: float = 1e-8) -> None:
        """Create an unfitted standardizer.

        Args:
            eps: Standard deviations below this count as zero (the feature is only centred).
        """
        self.eps = float(eps)
        self.means: tuple[np.ndarray, ...] | None = None
        self.stds: tuple[np.ndarray, ...] | None = None

    def fit(self, ds: MultimodalDataset) -> Standardizer:
        """Compute means and standard deviations over the present samples of each modality.

        A modality absent from every sample gets mean 0 and std 1 (left unchanged).

        Args:
            ds: The training data set.

        Returns:
            ``self``.
        """
        means, stds = [], []
        for m, x in enumerate(ds.modalities):
            rows = x[ds.presence[:, m]].astype(np.float64)
            if rows.shape[0] == 0:
                mean, std = np.zeros(x.shape[1]), np.ones(x.shape[1])
            else:
                mean, std = rows.mean(axis=0), rows.std(axis=0)
                std = np.where(std < self.eps, 1.0, std)
            means.append(mean)
            stds.append(std)
        self.means, self.stds = tuple(means), tuple(stds)
        return self

    def transform(self, ds: MultimodalDataset) -> MultimodalDataset:
        """Scale ``ds`` with the fitted statistics.

        Args:
            ds: A data set with the same modality dimensions as the one fitted.

        Returns:
            A new data set; features keep their dtype, absent entries stay zero.

        Raises:
            DataError: If the standardizer is not fitted or the modality dimensions differ.
        """
        if self.means is None or self.stds is None:
            raise DataError("Standardizer.transform called before fit")
        dims = tuple(len(mu) for mu in self.means)
        if ds.dims != dims:
            raise DataError(f"data set has modality dimensions {ds.dims}, standardizer was fitted on {dims}")
        scaled = []
        for m, x in enumerate(ds.modalities):
            z = ((x - self.means[m]) / self.stds[m]).astype(x.dtype)
            z[~ds.presence[:, m]] = 0.0
            scaled.append(z)
        return ds.with_modalities(tuple(scaled))

    def fit_transform(self, ds: MultimodalDataset) -> MultimodalDataset:
        """Fit on ``ds`` and return it scaled."""
        return self.fit(ds).transform(ds)
