"""Transpilation spec: which backends, which preset level, how many layout/routing seeds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qfl_qiskit import limits
from qfl_qiskit.specs.base import BackendName, Spec


class TranspileSpec(Spec):
    """How to transpile a circuit for a comparison across backends.

    Attributes:
        backends: Backend names (``fake_torino``, ``generic_7``, or an IBM device name).
        optimization_level: Preset pass-manager level 0-3 used for the seed sweep.
        seeds: Number of ``seed_transpiler`` values swept (0 .. seeds-1); the best by ESP is kept.
        strategy: "preset" (Qiskit's preset pass manager), "native" (QFL/MMA-aware placement and bridged routing,
            :mod:`qfl_qiskit.transpile.native`, the preset default as fallback) or "all" (both, best kept).
    """

    backends: tuple[BackendName, ...] = Field(("fake_torino",), min_length=1, max_length=64)
    optimization_level: int = Field(3, ge=0, le=3)
    seeds: int = Field(8, ge=1, le=limits.MAX_TRANSPILE_SEEDS)
    strategy: Literal["preset", "native", "all"] = "all"
    anchors: bool = False  # also report SABRE with 64 trials and mapomatic's layout (for comparison, never kept)
