"""Aggregation of client updates as pure functions on state dicts of numpy arrays.

- :func:`fedavg`: every entry averaged over all clients, weighted by their sample counts.
- :func:`modality_aware_fedavg`: the MMA rule. Entries (or slices of entries) owned by modality m, its encoder and
  its quantum block, are averaged only over the clients that trained modality m; a modality no client trained keeps
  its previous global value. Shared entries (fusion layer, head) are averaged over all clients.
- :func:`validate_updates`: updates with NaN/inf, missing or extra entries, or wrong shapes are rejected with a
  reason, never aggregated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

State = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class ClientUpdate:
    """One client's result of a round: its new state, sample count and the modalities it trained."""

    client: str
    state: State
    num_samples: int
    modalities: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Ownership:
    """Which parts of a state belong to one modality.

    Attributes:
        entries: Entry name -> modality index, for entries wholly owned by a modality (e.g. its encoder).
        slices: Entry name -> [(start, stop, modality)], for 1-D entries split between modalities (the MMA weight
            vector's ``modality_m`` ranges); parts not listed are shared.
    """

    entries: Mapping[str, int] = field(default_factory=dict)
    slices: Mapping[str, Sequence[tuple[int, int, int]]] = field(default_factory=dict)


def validate_updates(updates: Sequence[ClientUpdate], reference: State) -> tuple[list[ClientUpdate],
                                                                                 list[tuple[str, str]]]:
    """Split updates into accepted ones and (client, reason) rejections against the global state's layout."""
    accepted, rejected = [], []
    for u in updates:
        reason = _problem(u, reference)
        if reason is None:
            accepted.append(u)
        else:
            rejected.append((u.client, reason))
    return accepted, rejected


def _problem(u: ClientUpdate, reference: State) -> str | None:
    if u.num_samples <= 0:
        return f"sample count {u.num_samples} is not positive"
    missing, extra = set(reference) - set(u.state), set(u.state) - set(reference)
    if missing or extra:
        return f"entries differ from the global model (missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]})"
    for key, ref in reference.items():
        value = np.asarray(u.state[key])
        if value.shape != np.shape(ref):
            return f"entry '{key}' has shape {value.shape}, expected {np.shape(ref)}"
        if not np.all(np.isfinite(value)):
            return f"entry '{key}' holds NaN or inf"
    return None


def _weighted_mean(arrays: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    stacked = np.stack([np.asarray(a, dtype=float) for a in arrays])
    return np.tensordot(w / w.sum(), stacked, axes=1)


def fedavg(updates: Sequence[ClientUpdate], reference: State) -> dict[str, np.ndarray]:
    """Sample-weighted average of every entry over all clients (dtypes of ``reference`` kept).

    Raises:
        ValueError: No updates.
    """
    if not updates:
        raise ValueError("no client updates to aggregate")
    weights = [u.num_samples for u in updates]
    return {k: _weighted_mean([u.state[k] for u in updates], weights).astype(np.asarray(ref).dtype)
            for k, ref in reference.items()}


def modality_aware_fedavg(updates: Sequence[ClientUpdate], reference: State, ownership: Ownership
                          ) -> dict[str, np.ndarray]:
    """Modality-aware FedAvg (module docstring); ``reference`` is the current global state.

    Raises:
        ValueError: No updates.
    """
    if not updates:
        raise ValueError("no client updates to aggregate")
    out: dict[str, np.ndarray] = {}
    for key, ref in reference.items():
        ref = np.asarray(ref)
        if key in ownership.entries:
            out[key] = _owned(updates, key, ownership.entries[key], ref, slice(None))
            continue
        value = _weighted_mean([u.state[key] for u in updates], [u.num_samples for u in updates]).astype(ref.dtype)
        for start, stop, m in ownership.slices.get(key, ()):
            value[start:stop] = _owned(updates, key, m, ref, slice(start, stop))
        out[key] = value
    return out


def _owned(updates: Sequence[ClientUpdate], key: str, modality: int, ref: np.ndarray, part: slice) -> np.ndarray:
    trained = [u for u in updates if modality in u.modalities]
    if not trained:
        return ref[part].copy()
    return _weighted_mean([np.asarray(u.state[key])[part] for u in trained],
                          [u.num_samples for u in trained]).astype(ref.dtype)


def mma_ownership(state_keys: Sequence[str], weight_groups: Mapping[str, Sequence[int]],
                  encoder_prefix: Callable[[int], str] = lambda m: f"encoders.encoders.{m}.") -> Ownership:
    """Ownership of an MMA model's state: encoder m's entries and the ``modality_m`` slices of ``fusion.weights``."""
    entries = {}
    modalities = [int(k.split("_")[1]) for k in weight_groups if k.startswith("modality_")]
    for key in state_keys:
        for m in modalities:
            if key.startswith(encoder_prefix(m)):
                entries[key] = m
    slices = {"fusion.weights": [(int(weight_groups[f"modality_{m}"][0]), int(weight_groups[f"modality_{m}"][1]), m)
                                 for m in modalities]}
    return Ownership(entries=entries, slices=slices)
