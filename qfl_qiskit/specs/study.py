"""Noise-robustness study spec: noise scale x mitigation x seed, on circuits and on a trained model."""

from __future__ import annotations

from pathlib import Path
import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from qfl_qiskit import limits
from qfl_qiskit.specs.base import NAME_PATTERN, BackendName, Spec, load_by_kind


class StudyNoiseSpec(Spec):
    """The base noise that ``scales`` multiply: a backend's calibration (the circuits are transpiled for it) or a
    parametric noise spec file (the circuits are transpiled for ``backend`` too, for a realistic gate set)."""

    backend: BackendName = "fake_torino"
    parametric: str | None = None  # path of a kind = "parametric" noise spec; None: the backend's calibration


class ExpectationPart(Spec):
    """(a) Expectation-value error against exact values, random inputs and weights per seed."""

    circuits: tuple[str, ...] = Field(("circuits/qfl_default.toml", "circuits/mma_default.toml"), min_length=1,
                                      max_length=64)
    bindings: int = Field(16, ge=1, le=limits.MAX_BINDINGS)
    # "circuit": the circuit's own read-out (QFL: random Pauli strings); "z": Z on each qubit (weight-1
    # observables, whose read-out error involves one qubit instead of every qubit of a long Pauli string)
    observables: tuple[Literal["circuit", "z"], ...] = Field(("circuit",), min_length=1)


class ModelPart(Spec):
    """(b) A trained model's test metrics under noise; the training spec is trained first (exact) if needed."""

    train: str
    label: str = "qfl"
    samples: int = Field(100, ge=2, le=100_000)
    # training under noise (optional): after the noisy evaluation, fine-tune the exactly trained model on
    # ``finetune_samples`` training samples for ``finetune_epochs`` epochs THROUGH the noisy (mitigated) estimator
    # with SPSA gradients, then evaluate again; 0 epochs switches it off
    finetune_epochs: int = Field(0, ge=0, le=10_000)
    finetune_samples: int = Field(128, ge=2, le=100_000)
    finetune_lr: float = Field(0.01, gt=0.0)


class PlateauPart(Spec):
    """Barren-plateau diagnostic: variance over random weights of d<O_0>/d theta_0 of QFL circuits."""

    degrees: tuple[int, ...] = (1, 2, 3, 4)
    modalities: tuple[int, ...] = (2, 4, 6, 8)
    fixed_degree: int = Field(2, ge=1)
    fixed_modalities: int = Field(4, ge=1)
    features: int = Field(2, ge=1)
    samples: int = Field(64, ge=2, le=4_096)  # each draw keeps its states for the gradient

    @model_validator(mode="after")
    def _fits(self) -> PlateauPart:
        if not self.degrees or not self.modalities or min(self.degrees) < 1 or min(self.modalities) < 1:
            raise ValueError("degrees and modalities must be non-empty lists of integers >= 1")
        for m in (*self.modalities, self.fixed_modalities):
            for p in (*self.degrees, self.fixed_degree):
                why = limits.check_qfl(m, self.features, p, 1)
                if why:
                    raise ValueError(f"modalities {m}, degree {p}: {why}")
        return self


class NoiseStudySpec(Spec):
    """A noise-robustness sweep.

    Attributes:
        name: Output folder ``results/<name>/``.
        scales: Noise factors lambda (0 = noiseless).
        mitigations: "none", "zne", "rem", "ddd" and combinations such as "zne+rem".
        seeds: Seeds of inputs, weights and sampling.
        shots: Shots per setting; None gives exact noisy expectation values (density matrix).
        workers: Parallel processes.
        idle_noise: Schedule every circuit with explicit delays, so Aer puts relaxation on idle time (always on
            when a mitigation includes "ddd", so that DDD is compared with the same idle noise).
        scale_factors, folding, factory: ZNE settings.
    """

    kind: Literal["noise_study"] = "noise_study"
    name: str = Field("noise_study", pattern=NAME_PATTERN)
    scales: tuple[float, ...] = Field((0.0, 0.25, 0.5, 1.0, 2.0, 4.0), max_length=1_000)
    mitigations: tuple[str, ...] = Field(("none", "zne", "rem", "zne+rem"), min_length=1, max_length=64)
    seeds: tuple[int, ...] = Field((0, 1), min_length=1, max_length=limits.MAX_SEEDS)
    shots: int | None = Field(None, ge=2, le=1_000_000)
    workers: int = Field(2, ge=1, le=256)
    idle_noise: bool = False
    scale_factors: tuple[float, ...] = Field((1.0, 3.0, 5.0), max_length=16)  # MitigationSpec's defaults
    folding: Literal["global", "random", "identity"] = "global"
    factory: Literal["richardson", "linear", "poly", "exp"] = "richardson"
    noise: StudyNoiseSpec = StudyNoiseSpec()
    expectation: ExpectationPart | None = ExpectationPart()
    model: ModelPart | None = None
    plateau: PlateauPart | None = PlateauPart()

    @field_validator("expectation", "model", "plateau", mode="before")
    @classmethod
    def _switched_off(cls, v: object) -> object:
        return None if v is False else v  # `plateau = false` in TOML (which has no null) switches a part off

    @field_validator("scales")
    @classmethod
    def _scales(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or min(v) < 0 or max(v) > 1000 or len(set(v)) != len(v):
            raise ValueError("scales must be distinct numbers from 0 to 1000")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if min(v) < 0 or max(v) > 2**32 - 1 or len(set(v)) != len(v):
            raise ValueError("seeds must be distinct integers from 0 to 2^32 - 1")
        return v

    @model_validator(mode="after")
    def _mitigations(self) -> NoiseStudySpec:
        from pydantic import ValidationError

        targets = (len(self.expectation.circuits) * len(self.expectation.observables) if self.expectation else 0) + (
            1 if self.model else 0)
        cells = targets * len(self.scales) * len(self.mitigations) * len(self.seeds)
        if cells > limits.MAX_SWEEP_CELLS:
            raise ValueError(f"the study has {cells:,} cells; the limit is {limits.MAX_SWEEP_CELLS:,}")
        if self.expectation is None and self.model is None and self.plateau is None:
            raise ValueError("nothing to run: give at least one of [expectation], [model] or [plateau]")

        for m in self.mitigations:
            try:
                self.mitigation(m)
            except ValidationError as err:
                raise ValueError(f"mitigation '{m}': {err.errors()[0]['msg']}") from None
        return self

    @property
    def scheduled(self) -> bool:
        """Whether circuits are scheduled with idle delays (asked, or implied by a DDD mitigation)."""
        return self.idle_noise or any("ddd" in m for m in self.mitigations)

    def mitigation(self, label: str):  # noqa: ANN201  (MitigationSpec, imported lazily)
        """The MitigationSpec of one of ``mitigations``."""
        from qfl_qiskit.specs.mitigation import MitigationSpec

        return MitigationSpec(techniques=label, scale_factors=self.scale_factors, folding=self.folding,
                              factory=self.factory)


def load_study_spec(path: str | Path) -> NoiseStudySpec:
    """Load a noise-study spec TOML; ``kind = "noise_study"`` is required, so an empty or unrelated file is refused.
    Circuit and training-spec paths resolve from the working directory, or else from the spec file's folder.

    Raises:
        SpecError: Missing file, bad TOML, unknown keys or invalid values (one line).
    """
    from qfl_qiskit.specs.base import read_toml, validate

    data = read_toml(path)
    if data.get("kind") != "noise_study":
        return load_by_kind(path, {"noise_study": NoiseStudySpec})  # its one-line refusal
    base = Path(path).resolve().parent

    def near(p: Any) -> Any:
        """A path that does not resolve from the working directory but does from the spec's folder is taken
        from there (written relative to the working directory, so tables keep short names)."""
        if not isinstance(p, str) or Path(p).is_absolute() or Path(p).exists() or not (base / p).exists():
            return p
        return os.path.relpath(base / p)

    for part, key in (("model", "train"), ("expectation", "circuits")):
        table = data.get(part)
        if isinstance(table, dict) and key in table:
            value = table[key]
            table[key] = [near(v) for v in value] if isinstance(value, list) else near(value)
    return validate(NoiseStudySpec, data, source=str(path))
