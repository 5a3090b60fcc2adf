"""Conversion of a data set to torch tensors (torch is imported only when called)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from qfl_qiskit.data.dataset import MultimodalDataset

if TYPE_CHECKING:
    import torch


class TensorData(NamedTuple):
    """A data set as torch tensors.

    Attributes:
        modalities: One float32 tensor of shape (N, d_m) per modality.
        labels: int64 tensor of shape (N,).
        presence: bool tensor of shape (N, M).
    """

    modalities: list[torch.Tensor]
    labels: torch.Tensor
    presence: torch.Tensor


def to_tensors(ds: MultimodalDataset) -> TensorData:
    """Copy a data set into torch tensors (float32 features, int64 labels, bool presence).

    Args:
        ds: The data set.

    Returns:
        A :class:`TensorData` whose tensors own their memory (the data set's arrays are read-only).
    """
    import torch

    return TensorData(
        modalities=[torch.tensor(x, dtype=torch.float32) for x in ds.modalities],
        labels=torch.tensor(ds.labels, dtype=torch.int64),
        presence=torch.tensor(ds.presence, dtype=torch.bool),
    )
