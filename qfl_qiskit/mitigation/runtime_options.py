"""The same ``MitigationSpec`` as qiskit-ibm-runtime resilience options, for jobs on real hardware."""

from __future__ import annotations

from typing import Any

from qfl_qiskit.mitigation.estimator import MitigationError
from qfl_qiskit.specs.mitigation import MitigationSpec

#: mitiq DDD rules -> Runtime dynamical-decoupling sequences (Runtime has no YY sequence).
_DD = {"xx": "XX", "xyxy": "XY4"}


def _extrapolator(spec: MitigationSpec) -> str:
    n = len(spec.scale_factors)
    if spec.factory == "richardson":  # the polynomial through all n points
        if n - 1 > 7:
            raise MitigationError(f"Richardson over {n} noise factors needs degree {n - 1}; Runtime stops at 7")
        return "linear" if n == 2 else f"polynomial_degree_{n - 1}"
    if spec.factory == "linear":
        return "linear"
    if spec.factory == "poly":
        return "linear" if spec.poly_order == 1 else f"polynomial_degree_{spec.poly_order}"
    return "exponential"


def to_runtime_options(spec: MitigationSpec) -> dict[str, Any]:
    """Estimator options for qiskit-ibm-runtime's ``executor_estimator.Estimator`` (validated by its own model).

    REM -> TREX (``resilience.measure_mitigation``, measurement twirling); ZNE -> ``resilience.zne_mitigation`` with
    the same noise factors, the matching extrapolator and ``runtime_amplifier`` (gate folding or PEA); DDD ->
    ``dynamical_decoupling`` with the matching sequence; ``twirling`` -> gate twirling. ``resilience_level`` is 0 so
    only what the spec asks for is switched on. qiskit-ibm-runtime 0.51's client-side executor Estimator applies
    them itself, in local testing mode too (checked by the Runtime job tests).

    Raises:
        MitigationError: A rule or extrapolation Runtime has no equivalent for.
    """
    from qiskit_ibm_runtime.options_models.estimator import EstimatorOptions

    options: dict[str, Any] = {"resilience_level": 0, "resilience": {}}
    if "rem" in spec.techniques:
        options["resilience"]["measure_mitigation"] = True
        options["twirling"] = {"enable_measure": True}
    if "zne" in spec.techniques:
        options["resilience"]["zne_mitigation"] = True
        options["resilience"]["zne"] = {"noise_factors": list(spec.scale_factors),
                                        "extrapolator": _extrapolator(spec), "amplifier": spec.runtime_amplifier}
    if "ddd" in spec.techniques:
        if spec.ddd_rule not in _DD:
            raise MitigationError(f"Runtime has no '{spec.ddd_rule}' decoupling sequence; use xx or xyxy")
        options["dynamical_decoupling"] = {"enable": True, "sequence_type": _DD[spec.ddd_rule]}
    if spec.twirling:
        options.setdefault("twirling", {})["enable_gates"] = True
    EstimatorOptions(**options)  # raises if Runtime's option model rejects anything
    return options
