"""Circuit specs: the Quantum Fusion Layer (QFL) and the missing-modality-agnostic (MMA) multimodal QNN."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from qfl_qiskit import limits

from qfl_qiskit.specs.base import Spec, load_by_kind

#: CX pattern of the QFL's trainable layers: "star" is a CX from the value qubit to each index qubit, the shape
#: every S(x) already has (all its CX target the value qubit), so the whole circuit is a star.
Entanglement = Literal["full", "linear", "circular", "star"]


class QFLSpec(Spec):
    """Quantum Fusion Layer: index/value state preparation S(x) alternated P times with U(theta).

    Attributes:
        modalities: Number of modalities M.
        features: Features per modality D; the index register addresses M*D slots plus one constant slot.
        degree: Number P of S(x) uploads, which is the trigonometric degree across modalities.
        layers: Ansatz layers L inside each U(theta) block (Rx, Ry, Rz on every qubit, then entanglers).
        entanglement: CX pattern of each ansatz layer ("star": value qubit to each index qubit).
        observables: Number K of random Pauli-string observables read out.
        observable_seed: Seed fixing the K Pauli strings.
    """

    kind: Literal["qfl"] = "qfl"
    modalities: int = Field(6, ge=1)
    features: int = Field(2, ge=1)
    degree: int = Field(2, ge=1)
    layers: int = Field(1, ge=1)
    entanglement: Entanglement = "linear"
    observables: int = Field(8, ge=1, le=limits.MAX_OBSERVABLES)
    observable_seed: int = Field(1234, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _fits(self) -> QFLSpec:
        why = limits.check_qfl(self.modalities, self.features, self.degree, self.layers)
        if why:
            raise ValueError(why)
        return self


class MMASpec(Spec):
    """Multimodal QNN with per-modality registers, fusion layers and missing-modality gating.

    Attributes:
        modalities: Number of modalities M, one register each.
        qubits_per_modality: Qubits per register; each takes one angle-encoded feature.
        encoding_layers: Data re-uploading rounds per register (encode, then trainable block, repeated).
        trainable_layers: Ry/Rz + CX layers in each per-modality trainable block.
        fusion_layers: Layers of inter-register entanglers followed by trainable Rz/Ry on every qubit.
        entangler: Which register pairs the fusion entanglers connect (CX between equal positions of the two
            registers); "chain" fuses them along one path instead (last qubit of register m to the first of m + 1),
            so the whole circuit is a path of qubits and embeds in any coupling graph without SWAPs.
        context: Fixed state of an absent modality's register ("zero": |0..0>, "plus": |+..+>).
        readout: "z" reads Z on every qubit; "pauli" reads ``observables`` random Pauli strings.
        observables: Number of random Pauli strings when ``readout = "pauli"``.
        observable_seed: Seed fixing those strings.
    """

    kind: Literal["mma"] = "mma"
    modalities: int = Field(3, ge=1)
    qubits_per_modality: int = Field(2, ge=1)
    encoding_layers: int = Field(1, ge=1)
    trainable_layers: int = Field(1, ge=1)
    fusion_layers: int = Field(1, ge=1)
    entangler: Literal["linear", "circular", "full", "star", "chain"] = "linear"
    context: Literal["zero", "plus"] = "zero"
    readout: Literal["z", "pauli"] = "z"
    observables: int = Field(8, ge=1, le=limits.MAX_OBSERVABLES)
    observable_seed: int = Field(1234, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _fits(self) -> MMASpec:
        layers = limits.mma_layers(self.encoding_layers, self.trainable_layers, self.fusion_layers)
        why = limits.check_mma(self.modalities, self.qubits_per_modality, layers)
        if why:
            raise ValueError(why)
        return self


CircuitSpec = Annotated[Union[QFLSpec, MMASpec], Field(discriminator="kind")]


def load_circuit_spec(path: str | Path) -> QFLSpec | MMASpec:
    """Load a circuit spec from TOML; the top-level ``kind`` ("qfl" or "mma") selects the model.

    Args:
        path: The TOML file.

    Returns:
        The validated spec.

    Raises:
        SpecError: Missing file, bad TOML, unknown keys, or invalid values.
    """
    return load_by_kind(path, {"qfl": QFLSpec, "mma": MMASpec})
