"""Quantum fusion models: the Quantum Fusion Layer (QFL) model and the missing-modality-agnostic (MMA) model.

Both use the shared encoders and head of :mod:`.base`; encodings in (-1, 1) become rotation angles by a factor
``angle_scale`` (pi by default). The fusion step is a :class:`~qfl_qiskit.qnn.QuantumLayer`, so the same model trains
on the exact simulator (autograd) and evaluates on Aer or hardware (parameter shift, SPSA) by swapping the layer's
estimator (:meth:`QuantumFusionModel.use_estimator`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from qiskit import QuantumCircuit
from torch import nn

from qfl_qiskit.circuits import build_mma, build_qfl
from qfl_qiskit.circuits.types import QnnCircuit
from qfl_qiskit.errors import SpecError
from qfl_qiskit.models.base import EncoderKind, FusionModel
from qfl_qiskit.qnn import QuantumLayer
from qfl_qiskit.specs.circuit import Entanglement, MMASpec, QFLSpec


class QuantumFusionModel(FusionModel):
    """Common part of the quantum models: estimator swapping and circuit access."""

    def layers(self) -> list[QuantumLayer]:
        """Every quantum layer of the model (one per presence pattern seen, for MMA)."""
        raise NotImplementedError

    def use_estimator(self, estimator: Any, *, gradient: str = "param_shift",
                      transpile: Any = None) -> None:
        """Evaluate the fusion step with another estimator from now on, keeping the trained weights.

        Args:
            estimator: Any estimator of :mod:`qfl_qiskit.execution`.
            gradient: Gradient method of the new layers ("autograd" needs the exact estimator).
            transpile: Optional callable ``QuantumCircuit -> QuantumCircuit`` (e.g. an ISA transpilation for a
                backend); the layer then runs the transpiled circuit with observables mapped by its layout.
        """
        self._estimator, self._gradient, self._transpile = estimator, gradient, transpile
        self._rebuild_layers()

    def _make_layer(self, qnn: QnnCircuit, weights: nn.Parameter) -> QuantumLayer:
        circuit: QuantumCircuit | None = self._transpile(qnn.circuit) if self._transpile else None
        layer = QuantumLayer(qnn, estimator=self._estimator, gradient=self._gradient, circuit=circuit)
        layer.weights = weights  # shared: the model owns the weights, layers are views for one circuit
        return layer

    def _rebuild_layers(self) -> None:
        raise NotImplementedError


class QFLFusion(QuantumFusionModel):
    """Quantum Fusion Layer model: encoders -> angles (B, M*D) -> QFL circuit -> K Pauli expectations -> head.

    Absent modalities enter as angle 0 (the QFL circuit has one slot per feature and no gating; use the MMA model
    when modalities go missing).

    Args:
        dims: Input features of each modality.
        num_classes: C.
        features: D, encoder output (and QFL slots) per modality.
        degree: P, uploads of S(x).
        layers: Ansatz layers L in each U(theta).
        entanglement: CX pattern of the ansatz.
        observables: K random Pauli observables read out.
        observable_seed: Seed of the observables.
        angle_scale: Encodings in (-1, 1) times this are the angles.
        estimator: Estimator for training (default: exact complex128).
        gradient: Gradient method (default autograd on the exact estimator).
        weight_seed: Seed of the initial weights.
    """

    name = "qfl"

    def __init__(self, dims: Sequence[int], num_classes: int, *, features: int = 2, degree: int = 2,
                 layers: int = 1, entanglement: Entanglement = "linear", observables: int = 8,
                 observable_seed: int = 1234, angle_scale: float = math.pi, encoder: EncoderKind = "linear",
                 encoder_hidden: int = 32, head_hidden: int = 0, estimator: Any = None,
                 gradient: str = "autograd", weight_seed: int = 0) -> None:
        super().__init__(dims, num_classes, features=features, encoder=encoder, encoder_hidden=encoder_hidden,
                         head_hidden=head_hidden)
        self.spec = QFLSpec(modalities=len(dims), features=features, degree=degree, layers=layers,
                            entanglement=entanglement, observables=observables, observable_seed=observable_seed)
        self.qnn = build_qfl(self.spec)
        self.angle_scale = float(angle_scale)
        self._estimator, self._gradient, self._transpile = estimator, gradient, None
        first = QuantumLayer(self.qnn, estimator=estimator, gradient=gradient, weight_seed=weight_seed)
        self.fusion = nn.Module()
        self.fusion.weights = first.weights
        self._layer = [first]  # a list: not registered as a submodule, the weights are registered once above
        self._finish(observables)

    def layers(self) -> list[QuantumLayer]:
        return list(self._layer)

    def _rebuild_layers(self) -> None:
        self._layer = [self._make_layer(self.qnn, self.fusion.weights)]

    def fuse(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        angles = (self.angle_scale * z).reshape(z.shape[0], -1)  # modality-major, as build_qfl expects
        return self._layer[0](angles)


class MMAFusion(QuantumFusionModel):
    """Missing-modality-agnostic model: encoders -> per-modality registers -> fusion -> head(evs, presence).

    Samples are grouped by presence pattern; each pattern runs its own circuit (an absent modality's encoding and
    block are left out: its register stays in the context state and its weights get zero gradient), all patterns
    sharing one weight vector. The head also receives the presence vector.

    Args:
        dims: Input features of each modality.
        num_classes: C.
        qubits_per_modality: Qubits per register (= encoder output features D).
        encoding_layers, trainable_layers, fusion_layers, entangler, context, readout, observables,
            observable_seed: As in :class:`~qfl_qiskit.specs.MMASpec`.
        angle_scale, encoder, encoder_hidden, head_hidden, estimator, gradient, weight_seed: As in
            :class:`QFLFusion`.
    """

    name = "mma"

    def __init__(self, dims: Sequence[int], num_classes: int, *, qubits_per_modality: int = 2,
                 encoding_layers: int = 1, trainable_layers: int = 1, fusion_layers: int = 1,
                 entangler: str = "linear", context: str = "zero", readout: str = "z", observables: int = 8,
                 observable_seed: int = 1234, angle_scale: float = math.pi, encoder: EncoderKind = "linear",
                 encoder_hidden: int = 32, head_hidden: int = 0, estimator: Any = None,
                 gradient: str = "autograd", weight_seed: int = 0) -> None:
        super().__init__(dims, num_classes, features=qubits_per_modality, encoder=encoder,
                         encoder_hidden=encoder_hidden, head_hidden=head_hidden)
        self.spec = MMASpec(modalities=len(dims), qubits_per_modality=qubits_per_modality,
                            encoding_layers=encoding_layers, trainable_layers=trainable_layers,
                            fusion_layers=fusion_layers, entangler=entangler, context=context, readout=readout,
                            observables=observables, observable_seed=observable_seed)
        self.angle_scale = float(angle_scale)
        self._estimator, self._gradient, self._transpile = estimator, gradient, None
        full = build_mma(self.spec)
        first = QuantumLayer(full, estimator=estimator, gradient=gradient, weight_seed=weight_seed)
        self.fusion = nn.Module()
        self.fusion.weights = first.weights
        self._patterns: dict[tuple[bool, ...], QuantumLayer] = {(True,) * len(dims): first}
        self._finish(len(full.observables) + len(dims))

    def layers(self) -> list[QuantumLayer]:
        return list(self._patterns.values())

    def layer_for(self, pattern: tuple[bool, ...]) -> QuantumLayer:
        """The quantum layer of one presence pattern (built on first use)."""
        if not any(pattern):
            raise SpecError("a sample with no modality present cannot be classified; drop it or impute one")
        if pattern not in self._patterns:
            self._patterns[pattern] = self._make_layer(build_mma(self.spec, pattern), self.fusion.weights)
        return self._patterns[pattern]

    def _rebuild_layers(self) -> None:
        patterns = list(self._patterns)
        self._patterns = {}
        for p in patterns:
            self.layer_for(p)

    def fuse(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        angles = (self.angle_scale * z).reshape(z.shape[0], -1)
        patterns, inverse = torch.unique(presence, dim=0, return_inverse=True)
        out = None
        for k, pattern in enumerate(patterns):
            rows = (inverse == k).nonzero(as_tuple=True)[0]
            evs = self.layer_for(tuple(bool(v) for v in pattern))(angles[rows])
            if out is None:
                out = evs.new_zeros(z.shape[0], evs.shape[-1])
            out = out.index_copy(0, rows, evs)
        return torch.cat([out, presence.to(out.dtype)], dim=-1)
