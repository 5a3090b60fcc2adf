"""Noise specs: a backend's calibration noise (live or from a saved snapshot) or a parametric noise model.

Both carry a ``scale`` (the noise factor lambda of a robustness sweep): every error rate is multiplied by it, see
:func:`qfl_qiskit.noise.noise_model` for the exact rules and the clipping above lambda = 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from qfl_qiskit.specs.base import BackendName, Spec, load_by_kind


class BackendNoiseSpec(Spec):
    """Calibration noise of a backend: gate depolarizing + thermal relaxation, readout errors (Aer's device model).

    Attributes:
        backend: Backend name (``fake_<device>``, ``generic_<n>`` or an IBM device name).
        snapshot: Path of a calibration snapshot JSON written by ``qfl noise snapshot`` (relative paths are
            resolved from the working directory). When set, the noise comes from the file, not the live backend,
            so a study can be re-run on the same numbers; the file must be a snapshot of ``backend``.
        scale: Noise factor lambda >= 0: error rates times lambda, T1 and T2 divided by lambda; 0 is noiseless.
    """

    kind: Literal["backend"] = "backend"
    backend: BackendName
    snapshot: str | None = None
    scale: float = Field(1.0, ge=0.0, allow_inf_nan=False)


class ParametricNoiseSpec(Spec):
    """A uniform noise model: the same errors on every qubit.

    After each 1q gate named in ``gates_1q``: a depolarizing channel, then thermal relaxation for
    ``gate_time_1q_ns``; after each 2q gate in ``gates_2q``: a 2q depolarizing channel, then thermal relaxation on
    both qubits for ``gate_time_2q_ns``; a symmetric bit-flip readout error on every measurement. Gates not named
    (``rz`` by default, virtual on IBM devices) are noiseless.

    Attributes:
        depolarizing_1q: Parameter p of Aer's 1q ``depolarizing_error`` (rho -> (1-p) rho + p I/2), in [0, 1].
        depolarizing_2q: Parameter p of the 2q depolarizing channel, in [0, 1].
        t1_us: Relaxation time T1 in microseconds, or None for no thermal relaxation (then ``t2_us`` is None too).
        t2_us: Dephasing time T2 in microseconds; needs ``t1_us`` and T2 <= 2 T1.
        gate_time_1q_ns: Duration of a 1q gate, for relaxation.
        gate_time_2q_ns: Duration of a 2q gate, for relaxation.
        readout_error: Probability that a measured bit flips, in [0, 0.5].
        gates_1q: 1q gate names that carry the 1q errors.
        gates_2q: 2q gate names that carry the 2q errors.
        scale: Noise factor lambda >= 0 (see :class:`BackendNoiseSpec`).
    """

    kind: Literal["parametric"] = "parametric"
    depolarizing_1q: float = Field(ge=0.0, le=1.0)
    depolarizing_2q: float = Field(ge=0.0, le=1.0)
    t1_us: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    t2_us: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    gate_time_1q_ns: float = Field(32.0, ge=0.0, le=1e6, allow_inf_nan=False)
    gate_time_2q_ns: float = Field(68.0, ge=0.0, le=1e6, allow_inf_nan=False)
    readout_error: float = Field(0.0, ge=0.0, le=0.5)
    gates_1q: tuple[str, ...] = ("id", "x", "sx", "rx", "ry", "h", "u")
    gates_2q: tuple[str, ...] = ("cx", "cz", "ecr")
    scale: float = Field(1.0, ge=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _relaxation_is_physical(self) -> ParametricNoiseSpec:
        if self.t2_us is not None and self.t1_us is None:
            raise ValueError("t2_us needs t1_us; give both relaxation times or neither")
        if self.t1_us is not None and self.t2_us is not None and self.t2_us > 2 * self.t1_us:
            raise ValueError(f"t2_us = {self.t2_us} exceeds 2 * t1_us = {2 * self.t1_us}, which is unphysical")
        bad = [g for g in (*self.gates_1q, *self.gates_2q) if not g.isidentifier()]
        if bad:
            raise ValueError(f"gate names must be Qiskit gate names (like 'sx', 'cz'), got {bad}")
        overlap = set(self.gates_1q) & set(self.gates_2q)
        if overlap:
            raise ValueError(f"gates {sorted(overlap)} are listed in both gates_1q and gates_2q")
        return self


NoiseSpec = Annotated[Union[BackendNoiseSpec, ParametricNoiseSpec], Field(discriminator="kind")]


def load_noise_spec(path: str | Path) -> BackendNoiseSpec | ParametricNoiseSpec:
    """Load a noise spec from TOML; the top-level ``kind`` ("backend" or "parametric") selects the model.

    Args:
        path: The TOML file.

    Returns:
        The validated spec.

    Raises:
        SpecError: Missing file, bad TOML, unknown keys, or invalid values (one line).
    """
    return load_by_kind(path, {"backend": BackendNoiseSpec, "parametric": ParametricNoiseSpec})
