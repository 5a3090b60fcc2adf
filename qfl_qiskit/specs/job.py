"""Job specs: what to run on an IBM Runtime backend (a circuit spec with an input set, or a trained model on data),
where, in which execution mode, and with how many shots.

A job spec is a TOML file in ``runtime_jobs/`` with ``kind = "job"`` and exactly one of the tables ``[circuit]`` or
``[model]``. Paths are taken relative to the working directory (run ``qfl submit`` from the repository root).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from qfl_qiskit.specs.base import NAME_PATTERN, BackendName, Spec, load_by_kind


class CircuitInput(Spec):
    """A circuit spec with parameter values: ``bindings`` seeded uniform(-pi, pi) rows, or a ``.npy`` file.

    Attributes:
        spec: Path of the circuit spec TOML (``kind = "qfl"`` or ``"mma"``).
        bindings: Number of random parameter bindings (ignored when ``values`` is given).
        seed: Seed of the random bindings.
        values: Optional ``.npy`` file of shape (B, p), columns in the order of ``circuit.parameters``.
    """

    spec: str
    bindings: int = Field(4, ge=1, le=100_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    values: str | None = None


class ModelInput(Spec):
    """A trained model (``results/<run>/<label>`` written by ``qfl train``) evaluated on samples of a data split.

    Attributes:
        folder: The model folder holding ``model.pt``.
        split: The data split the samples come from.
        samples: Number of samples (the first ones of the split).
    """

    folder: str
    split: Literal["test"] = "test"
    samples: int = Field(8, ge=1, le=10_000)


class JobSpec(Spec):
    """One Runtime submission.

    Attributes:
        name: Short name used in record ids.
        backend: ``fake_<device>`` (local testing mode, offline) or an IBM backend name (needs an account).
        mode: ``job`` (single job), ``batch`` (default) or ``session`` (needs ``max_time``; always closed).
        max_time: Maximum wall time in seconds of the batch or session.
        precision: Target standard error per expectation value (Runtime takes ceil(1/precision^2) shots).
        shots: Shots per binding instead of ``precision``; give at most one of the two.
        seed: Simulator seed in local testing mode (reproducible values); ignored on hardware.
        transpile_seeds: Seeds swept when transpiling (the best ESP is kept).
        resilience: Optional Runtime ``resilience`` options block, passed as is. The executor Estimator of
            qiskit-ibm-runtime 0.51 applies it client-side, in local testing mode too.
        circuit: Run a circuit spec with an input set.
        model: Run a trained model's quantum layer on data samples.
    """

    kind: Literal["job"] = "job"
    name: str = Field("job", pattern=NAME_PATTERN, max_length=40)
    backend: BackendName = "fake_manila"
    mode: Literal["job", "batch", "session"] = "batch"
    max_time: int | None = Field(None, ge=1)
    precision: float | None = Field(None, ge=0.001, le=1)  # 0.001: a million shots per binding and basis
    shots: int | None = Field(None, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    transpile_seeds: int = Field(2, ge=1, le=32)
    resilience: dict[str, Any] | None = None
    circuit: CircuitInput | None = None
    model: ModelInput | None = None

    @model_validator(mode="after")
    def _check(self) -> JobSpec:
        if (self.circuit is None) == (self.model is None):
            raise ValueError("give exactly one of the tables [circuit] or [model]")
        if self.precision is not None and self.shots is not None:
            raise ValueError("give precision or shots, not both")
        if self.mode == "session" and self.max_time is None:
            raise ValueError("mode 'session' needs max_time (seconds) so an idle session cannot bill wall time")
        if self.mode == "job" and self.max_time is not None:
            raise ValueError("max_time applies to modes 'batch' and 'session', not 'job'")
        return self

    @property
    def effective_precision(self) -> float | None:
        """The precision sent to Runtime (default 1/64 when neither precision nor shots is given)."""
        if self.shots is not None:
            return None
        return self.precision if self.precision is not None else 1 / 64


def load_job_spec(path: str | Path) -> JobSpec:
    """Load a job spec from TOML.

    Raises:
        SpecError: Missing file, bad TOML, unknown keys, or invalid values (one line).
    """
    return load_by_kind(path, {"job": JobSpec})
