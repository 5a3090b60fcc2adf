"""Partitions of a multimodal data set over federated clients: IID, non-IID by Dirichlet(alpha) over labels, and
missing modalities per client or per sample. All seeded; the parts are disjoint and together hold every sample."""

from __future__ import annotations

import numpy as np

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.errors import DataError


def iid_partition(labels: np.ndarray, clients: int, *, seed: int) -> list[np.ndarray]:
    """Stratified random split of sample indices into ``clients`` parts of (nearly) equal size and class mix.

    Raises:
        DataError: Fewer samples than clients, or fewer than one client.
    """
    labels = np.asarray(labels)
    _check(len(labels), clients)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(clients)]
    offset = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        for j, chunk in enumerate(np.array_split(idx, clients)):
            parts[(j + offset) % clients].extend(chunk.tolist())
        offset += len(idx) % clients  # rotate so the clients that get one extra sample change per class
    return [np.sort(np.asarray(p, dtype=int)) for p in parts]


def dirichlet_partition(labels: np.ndarray, clients: int, *, alpha: float, seed: int, min_samples: int = 2,
                        max_tries: int = 100) -> list[np.ndarray]:
    """Non-IID split: each class's samples are shared among clients in proportions drawn from Dirichlet(alpha).

    Small alpha gives each client few classes; large alpha approaches IID. Draws are repeated (same seeded
    generator) until every client holds at least ``min_samples`` samples.

    Raises:
        DataError: alpha <= 0, too few samples, or no draw within ``max_tries`` gives every client ``min_samples``.
    """
    labels = np.asarray(labels)
    _check(len(labels), clients)
    if not alpha > 0:
        raise DataError(f"Dirichlet alpha must be > 0, got {alpha}")
    if min_samples * clients > len(labels):
        raise DataError(f"{len(labels)} samples cannot give {clients} clients {min_samples} samples each")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha))) * len(idx)).astype(int)[:-1]
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_samples:
            return [np.sort(np.asarray(p, dtype=int)) for p in parts]
    raise DataError(f"no Dirichlet({alpha}) draw in {max_tries} gave each of {clients} clients {min_samples} "
                    "samples; raise alpha, lower the client count, or lower min_samples")


def client_modality_mask(clients: int, modalities: int, rate: float, *, seed: int) -> np.ndarray:
    """Presence (clients, M): each modality is missing on round(rate * clients) clients chosen at random, and every
    client keeps at least one modality (a client left with none gets one back at random).

    Raises:
        DataError: rate outside [0, 1).
    """
    if not 0 <= rate < 1:
        raise DataError(f"missing rate must be in [0, 1), got {rate}")
    rng = np.random.default_rng(seed)
    mask = np.ones((clients, modalities), dtype=bool)
    k = int(round(rate * clients))
    for m in range(modalities):
        mask[rng.choice(clients, size=k, replace=False), m] = False
    for c in np.flatnonzero(~mask.any(axis=1)):
        mask[c, rng.integers(modalities)] = True
    return mask


def client_datasets(ds: MultimodalDataset, parts: list[np.ndarray], mask: np.ndarray | None = None
                    ) -> list[MultimodalDataset]:
    """The clients' data sets; with ``mask`` (clients, M), a client's missing modalities are marked absent."""
    out = []
    for c, idx in enumerate(parts):
        sub = ds.subset(idx)
        if mask is not None:
            presence = sub.presence & mask[c][None, :]
            sub = MultimodalDataset(modalities=sub.modalities, labels=sub.labels, presence=presence, names=sub.names,
                                    num_classes=sub.num_classes)
        out.append(sub)
    return out


def _check(n: int, clients: int) -> None:
    if clients < 1:
        raise DataError(f"need at least one client, got {clients}")
    if n < clients:
        raise DataError(f"{n} samples cannot be split over {clients} clients")
