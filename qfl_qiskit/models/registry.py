"""Build a fusion model from its spec."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qfl_qiskit.models.base import FusionModel

_COMMON = ("features", "encoder", "encoder_hidden", "head_hidden")


def build_model(spec: Any, dims: Sequence[int], num_classes: int, *, estimator: Any = None,
                gradient: str = "autograd", seed: int = 0) -> FusionModel:
    """The model a :mod:`qfl_qiskit.specs.train` model spec describes, for a data set's modality dims.

    Args:
        spec: A model spec (``QFLModelSpec``, ``LMFModelSpec``, ...).
        dims: Input features of each modality.
        num_classes: C.
        estimator: Estimator of quantum models (None: exact complex128).
        gradient: Gradient method of quantum models.
        seed: Seed of torch's initialisation and of the quantum weights.

    Returns:
        The model, freshly initialised from ``seed``.
    """
    import torch

    from qfl_qiskit.models.quantum import MMAFusion, QFLFusion

    torch.manual_seed(seed)
    options = spec.model_dump(exclude={"name", "label"})
    if spec.name == "qfl":
        return QFLFusion(dims, num_classes, estimator=estimator, gradient=gradient, weight_seed=seed, **options)
    if spec.name == "mma":
        options["qubits_per_modality"] = options.pop("features")
        return MMAFusion(dims, num_classes, estimator=estimator, gradient=gradient, weight_seed=seed, **options)
    from qfl_qiskit.models import classical

    cls = {"concat": classical.ConcatFusion, "tfn": classical.TFNFusion, "lmf": classical.LMFFusion,
           "mfb": classical.MFBFusion, "gcn": classical.GCNFusion}[spec.name]
    return cls(dims, num_classes, **options)
