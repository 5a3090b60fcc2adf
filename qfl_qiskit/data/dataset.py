"""The multimodal data set: one feature matrix per modality, integer labels and a presence mask."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qfl_qiskit.errors import DataError


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class MultimodalDataset:
    """Samples described by several modalities, with labels and a mask of which modalities each sample has.

    Arrays are copied and made read-only on construction. Entries of an absent modality (``presence[i, m]`` False)
    carry no information: they may hold anything (NaN included) on input and are stored as zeros, so downstream code
    never sees a non-finite value.

    Attributes:
        modalities: One float array of shape (N, d_m) per modality (float64 input stays float64, anything else is
            stored as float32).
        labels: Integer class labels of shape (N,), each in ``0 .. num_classes - 1``.
        presence: Boolean mask of shape (N, M); None on input means every modality is present for every sample.
        names: One name per modality; empty on input gives ``("m0", "m1", ...)``.
        num_classes: Number of classes; None on input means ``labels.max() + 1``.
        split: A fixed train/validation/test assignment of shape (N,): codes 0/1/2 or the strings "train", "val",
            "test" on input, stored as int8 codes; None (the default) lets training split by its seed.

    Raises:
        DataError: On mismatched sample counts, non-2-D modalities, non-finite present values, non-integer labels,
            labels outside ``0 .. num_classes - 1``, a presence mask of the wrong shape, or duplicate names.
    """

    modalities: tuple[np.ndarray, ...]
    labels: np.ndarray
    presence: np.ndarray | None = None
    names: tuple[str, ...] = field(default=())
    num_classes: int | None = None
    split: np.ndarray | None = None

    def __post_init__(self) -> None:
        mods = self._check_modalities(self.modalities)
        n = mods[0].shape[0]
        labels = self._check_labels(self.labels, n)
        presence = self._check_presence(self.presence, n, len(mods))
        mods = tuple(self._check_values(x, presence[:, m], m) for m, x in enumerate(mods))
        names = self._check_names(self.names, len(mods))
        num_classes = self._check_num_classes(self.num_classes, labels)
        object.__setattr__(self, "modalities", tuple(_frozen(x) for x in mods))
        object.__setattr__(self, "labels", _frozen(labels))
        object.__setattr__(self, "presence", _frozen(presence))
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "num_classes", num_classes)
        if self.split is not None:
            object.__setattr__(self, "split", _frozen(_check_split(self.split, n)))

    # --- public API -------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_modalities(self) -> int:
        """Number of modalities M."""
        return len(self.modalities)

    @property
    def dims(self) -> tuple[int, ...]:
        """Feature count d_m of each modality."""
        return tuple(int(x.shape[1]) for x in self.modalities)

    def subset(self, idx: Any) -> MultimodalDataset:
        """Return the samples selected by ``idx`` (integer indices or a boolean mask of length N), same classes.

        Args:
            idx: Integer indices (any order, repeats allowed) or a boolean mask of shape (N,).

        Returns:
            A new data set with the same names and ``num_classes``.

        Raises:
            DataError: If ``idx`` is neither integer nor boolean, or is out of range.
        """
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise DataError(f"boolean subset mask has shape {idx.shape}, expected ({len(self)},)")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif not np.issubdtype(idx.dtype, np.integer):
            raise DataError(f"subset indices must be integers or a boolean mask, got dtype {idx.dtype}")
        idx = idx.reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise DataError(f"subset index out of range for a data set of {len(self)} samples")
        return MultimodalDataset(
            modalities=tuple(x[idx] for x in self.modalities),
            labels=self.labels[idx],
            presence=self.presence[idx],
            names=self.names,
            num_classes=self.num_classes,
            split=None if self.split is None else self.split[idx],
        )

    def with_modalities(self, modalities: tuple[np.ndarray, ...]) -> MultimodalDataset:
        """Return a copy with new feature arrays (same labels, presence, names, classes), e.g. after scaling."""
        return MultimodalDataset(
            modalities=tuple(modalities),
            labels=self.labels,
            presence=self.presence,
            names=self.names,
            num_classes=self.num_classes,
            split=self.split,
        )

    def with_presence(self, presence: np.ndarray) -> MultimodalDataset:
        """Return a copy with a new presence mask (same features, labels, names, classes and split)."""
        return MultimodalDataset(modalities=self.modalities, labels=self.labels, presence=presence, names=self.names,
                                 num_classes=self.num_classes, split=self.split)

    def class_counts(self) -> np.ndarray:
        """Number of samples per class, shape (num_classes,)."""
        return np.bincount(self.labels, minlength=self.num_classes)

    # --- validation -------------------------------------------------------------------------------------------

    @staticmethod
    def _check_modalities(modalities: Any) -> tuple[np.ndarray, ...]:
        if isinstance(modalities, np.ndarray):
            raise DataError("modalities must be a sequence of arrays (one per modality), not a single array")
        try:
            mods = tuple(np.array(x, dtype=np.float64 if _is_float64(x) else np.float32) for x in modalities)
        except (TypeError, ValueError) as exc:
            raise DataError(f"every modality must be a numeric array: {exc}") from None
        if not mods:
            raise DataError("a multimodal data set needs at least one modality")
        for m, x in enumerate(mods):
            if x.ndim != 2:
                raise DataError(f"modality {m} has shape {x.shape}; expected a 2-D array (samples, features)")
        counts = {x.shape[0] for x in mods}
        if len(counts) != 1:
            raise DataError(f"modalities disagree on the number of samples: {[x.shape[0] for x in mods]}")
        return mods

    @staticmethod
    def _check_labels(labels: Any, n: int) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise DataError(f"labels have shape {labels.shape}, expected ({n},) to match the modalities")
        if labels.dtype == bool or not np.issubdtype(labels.dtype, np.number):
            raise DataError(f"labels must be integers, got dtype {labels.dtype}")
        if not np.issubdtype(labels.dtype, np.integer):
            if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
                raise DataError("labels must be whole numbers")
        return labels.astype(np.int64, copy=True)

    @staticmethod
    def _check_presence(presence: Any, n: int, m: int) -> np.ndarray:
        if presence is None:
            return np.ones((n, m), dtype=bool)
        presence = np.asarray(presence)
        if presence.shape != (n, m):
            raise DataError(f"presence mask has shape {presence.shape}, expected ({n}, {m})")
        if presence.dtype != bool:
            if not np.all((presence == 0) | (presence == 1)):
                raise DataError("presence mask must be boolean (or 0/1)")
        return presence.astype(bool, copy=True)

    @staticmethod
    def _check_values(x: np.ndarray, present: np.ndarray, m: int) -> np.ndarray:
        x[~present] = 0.0
        if not np.all(np.isfinite(x)):
            rows = np.flatnonzero(~np.all(np.isfinite(x), axis=1))
            raise DataError(f"modality {m} has non-finite values in present samples (first rows: {rows[:5].tolist()})")
        return x

    @staticmethod
    def _check_names(names: Any, m: int) -> tuple[str, ...]:
        names = tuple(str(s) for s in names) if names else tuple(f"m{i}" for i in range(m))
        if len(names) != m:
            raise DataError(f"{len(names)} modality names given for {m} modalities")
        if len(set(names)) != m:
            raise DataError(f"modality names must be unique, got {names}")
        return names

    @staticmethod
    def _check_num_classes(num_classes: int | None, labels: np.ndarray) -> int:
        if num_classes is None:
            if labels.size == 0:
                raise DataError("num_classes must be given for an empty data set")
            num_classes = int(labels.max()) + 1
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise DataError(f"num_classes must be a positive integer, got {num_classes!r}")
        num_classes = int(num_classes)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(
                f"labels must lie in 0..{num_classes - 1}, got range {int(labels.min())}..{int(labels.max())}"
            )
        return num_classes


SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
"""The parts of a fixed split, in code order (0, 1, 2)."""


def _check_split(split: Any, n: int) -> np.ndarray:
    split = np.asarray(split)
    if split.shape != (n,):
        raise DataError(f"split has shape {split.shape}, expected ({n},): one of train/val/test per sample")
    if split.dtype.kind in "USO":
        names = [str(v) for v in split.tolist()]
        bad = sorted({v for v in names if v not in SPLIT_NAMES})
        if bad:
            raise DataError(f"split values must be train, val or test, got {bad[:3]}")
        split = np.array([SPLIT_NAMES.index(v) for v in names], dtype=np.int8)
    elif not np.issubdtype(split.dtype, np.integer) or split.size and not np.isin(split, (0, 1, 2)).all():
        raise DataError("split codes must be 0 (train), 1 (val) or 2 (test)")
    return split.astype(np.int8, copy=True)


def _is_float64(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype == np.float64
