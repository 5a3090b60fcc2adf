"""Federated training spec: data and split, the quantum model, clients, rounds, partition, missing modalities,
aggregation rule and faults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from qfl_qiskit.specs.base import NAME_PATTERN, Spec, read_toml, validate
from qfl_qiskit.specs.train import DataSpec, MMAModelSpec, QFLModelSpec, resolve_data_paths

QuantumModelSpec = Annotated[Union[QFLModelSpec, MMAModelSpec], Field(discriminator="name")]


class FederatedSpec(Spec):
    """A federated run on Flower.

    Attributes:
        name: Output folder ``results/<name>/``.
        seed: Seed of the split, partition, masks, initialisation and local batch orders.
        data: Data set and its (global) train / validation / test split; the training split is partitioned.
        model: The QFL or MMA model trained by every client.
        clients, rounds, local_epochs, batch_size, lr: Federation and local Adam settings.
        partition: "iid" (stratified) or "dirichlet" (non-IID over labels with ``alpha``).
        missing_rate: Fraction of clients missing each modality ("client" mode) or probability per sample and
            modality ("sample" mode).
        modality_aware: True: modality-aware FedAvg (MMA rule); False: plain FedAvg with absent inputs zero-filled
            and marked present (the naive baseline).
        fail_fraction: Probability that a client fails in a round (seeded per round and client).
        min_clients: Fewest successful clients for a round to be aggregated; otherwise the round is skipped.
    """

    kind: Literal["federated"] = "federated"
    name: str = Field("federated", pattern=NAME_PATTERN)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: DataSpec
    model: QuantumModelSpec = MMAModelSpec()
    clients: int = Field(3, ge=1, le=10_000)
    rounds: int = Field(3, ge=1, le=100_000)
    local_epochs: int = Field(1, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.02, gt=0.0)
    partition: Literal["iid", "dirichlet"] = "iid"
    alpha: float = Field(0.5, gt=0.0)
    missing_rate: float = Field(0.0, ge=0.0, lt=1.0)
    missing_mode: Literal["client", "sample"] = "client"
    modality_aware: bool = True
    fail_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    min_clients: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> FederatedSpec:
        if self.min_clients > self.clients:
            raise ValueError(f"min_clients {self.min_clients} exceeds clients {self.clients}")
        if self.data.missing_rate:
            raise ValueError("set missing modalities with the top-level missing_rate / missing_mode, "
                             "not data.missing_rate")
        return self


def load_federated_spec(path: str | Path) -> FederatedSpec:
    """Load a federated spec TOML; ``[data] options.path`` is relative to the file.

    Raises:
        SpecError: Missing file, bad TOML, unknown keys or invalid values (one line).
    """
    return validate(FederatedSpec, resolve_data_paths(read_toml(path), path), source=str(path))
