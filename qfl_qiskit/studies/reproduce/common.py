"""What several reproduction experiments share: training a bare quantum layer with a linear head."""

from __future__ import annotations

from typing import Any

import numpy as np


def train_layer(qnn: Any, data: Any, *, epochs: int, batch_size: int, lr: float, seed: int,
                train_fraction: float = 0.7, train_size: int | None = None) -> dict[str, Any]:
    """Train ``QuantumLayer(qnn)`` (features as the rotation angles, no classical encoder) and a linear head with
    Adam and cross-entropy on the first ``train_size`` rows of ``data`` (default: ``train_fraction`` of them, for
    i.i.d. synthetic draws); held-out accuracy on the rest.

    Returns:
        ``train_accuracy``, ``test_accuracy``, ``parameters`` (the quantum layer's), ``qubits``, ``outputs``.
    """
    import torch

    x = torch.tensor(np.concatenate(data.modalities, axis=1))
    y = torch.tensor(data.labels)
    cut = int(train_fraction * len(y)) if train_size is None else int(train_size)
    outputs = len(qnn.observables)
    model = bare_model(qnn, int(data.num_classes), seed=seed)
    train_epochs(model, x, y, rows=cut, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    with torch.no_grad():
        pred = model(x).argmax(1)
    return {"train_accuracy": float((pred[:cut] == y[:cut]).double().mean()),
            "test_accuracy": float((pred[cut:] == y[cut:]).double().mean()),
            "parameters": sum(p.numel() for p in model[0].parameters()), "qubits": qnn.circuit.num_qubits,
            "outputs": outputs}


def bare_model(qnn: Any, num_classes: int, *, seed: int) -> Any:
    """``QuantumLayer(qnn)`` (weights from ``seed``) and a linear head, torch's initialisation seeded by ``seed``."""
    import torch

    from qfl_qiskit.qnn import QuantumLayer

    torch.manual_seed(seed)
    return torch.nn.Sequential(QuantumLayer(qnn, weight_seed=seed),
                               torch.nn.Linear(len(qnn.observables), num_classes, dtype=torch.float64))


def train_epochs(model: Any, x: Any, y: Any, *, rows: int, epochs: int, batch_size: int, lr: float, seed: int,
                 after_epoch: Any = None) -> None:
    """Adam on cross-entropy over the first ``rows`` rows, in batches of a seeded order; ``after_epoch()`` is
    called after every epoch."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(rows, generator=order).split(batch_size):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
        if after_epoch is not None:
            after_epoch()
