"""What a client holds and does, independent of Flower: its share of the training data, and one round of local
training from the global weights."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from qfl_qiskit.data import MultimodalDataset, to_tensors
from qfl_qiskit.federated.partition import client_datasets, client_modality_mask, dirichlet_partition, iid_partition
from qfl_qiskit.specs.federated import FederatedSpec
from qfl_qiskit.specs.train import TrainSpec


def train_spec(spec: FederatedSpec) -> TrainSpec:
    """The equivalent centralised training spec (same data, split and model)."""
    return TrainSpec(name=spec.name, seed=spec.seed, data=spec.data, models=[spec.model],
                     optim={"lr": spec.lr, "batch_size": spec.batch_size})


@lru_cache(maxsize=4)
def federation(spec_json: str) -> tuple[list[MultimodalDataset], Any, np.ndarray]:
    """(client training sets, global splits, client modality mask) for a spec; cached per process."""
    from qfl_qiskit.data import load_dataset
    from qfl_qiskit.data.preprocess import Standardizer
    from qfl_qiskit.training.experiment import drop_modalities, prepare_data, split_dataset

    spec = FederatedSpec.model_validate_json(spec_json)
    splits = prepare_data(train_spec(spec))
    ds = load_dataset(spec.data.name, **spec.data.options)
    train, _, _ = split_dataset(ds, spec.data, seed=spec.seed)
    if spec.data.standardize:
        train = Standardizer().fit(train).transform(train)
    parts = (iid_partition(train.labels, spec.clients, seed=spec.seed) if spec.partition == "iid" else
             dirichlet_partition(train.labels, spec.clients, alpha=spec.alpha, seed=spec.seed))
    mask = np.ones((spec.clients, train.num_modalities), dtype=bool)
    if spec.missing_mode == "client" and spec.missing_rate:
        mask = client_modality_mask(spec.clients, train.num_modalities, spec.missing_rate, seed=spec.seed)
    clients = client_datasets(train, parts, mask)
    if spec.missing_mode == "sample" and spec.missing_rate:
        clients = [drop_modalities(c, spec.missing_rate, seed=spec.seed * 1000 + i) for i, c in enumerate(clients)]
    return clients, splits, mask


def local_train(spec: FederatedSpec, client: int, state: dict[str, Any], *, round_index: int,
                model_spec: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """One round of local training of ``client`` from the global ``state``; returns (new state, metrics).

    ``model_spec`` trains another model than ``spec.model`` on the same clients (a classical fusion, for the
    classical federated baseline of :func:`qfl_qiskit.federated.run.run_federated_local`).

    Metrics: ``num-examples``, ``train-loss`` and ``modalities`` (indices of the modalities the client trained).
    Without ``modality_aware`` the absent inputs stay zero but are marked present (the naive baseline).
    """
    import torch
    import torch.nn.functional as F

    from qfl_qiskit.models import build_model
    from qfl_qiskit.training.loop import fit

    torch.set_num_threads(1)  # one client per core
    clients, splits, _ = federation(spec.model_dump_json())
    data = clients[client]
    if not spec.modality_aware:
        data = MultimodalDataset(modalities=data.modalities, labels=data.labels, names=data.names,
                                 num_classes=data.num_classes)
    tensors = to_tensors(data)
    model = build_model(model_spec or spec.model, splits.dims, splits.num_classes, seed=spec.seed)
    model.load_state_dict(state)
    result = fit(model, tensors, tensors, num_classes=splits.num_classes, loss_fn=F.cross_entropy, lr=spec.lr,
                 epochs=spec.local_epochs, batch_size=spec.batch_size, patience=0, monitor="loss",
                 seed=spec.seed * 7919 + round_index * 101 + client)
    trained = [int(m) for m in np.flatnonzero(data.presence.any(axis=0))]
    metrics = {"num-examples": len(data), "train-loss": float(result.history[-1]["train_loss"]),
               "modalities": trained}
    return model.state_dict(), metrics


def client_fails(spec: FederatedSpec, client: int, round_index: int) -> bool:
    """Whether the fault injection makes ``client`` fail in ``round_index`` (seeded)."""
    if spec.fail_fraction <= 0:
        return False
    return bool(np.random.default_rng([spec.seed, round_index, client]).random() < spec.fail_fraction)
