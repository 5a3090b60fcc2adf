"""Compare one circuit across several backends: resolve and check all first, then sweep each."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qfl_qiskit.errors import BackendError
from qfl_qiskit.transpile.backends import resolve_backend
from qfl_qiskit.transpile.report import (
    TranspileReport,
    mapomatic_anchor,
    rank_backends,
    sabre_anchor,
    transpile_sweep,
)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from qfl_qiskit.specs.transpile import TranspileSpec


def compare_backends(
    circuit: QuantumCircuit,
    spec: TranspileSpec,
    *,
    on_backend_done: Callable[[str], None] | None = None,
) -> list[tuple[QuantumCircuit, TranspileReport]]:
    """Transpile ``circuit`` for every backend of ``spec`` (seed sweep each); best backend first.

    All backends are resolved and checked for width before any transpilation, so bad input fails fast.

    Args:
        circuit: The logical, parameterized circuit.
        spec: Backends, optimization level and number of seeds.
        on_backend_done: Called with each backend name when its sweep finishes (for progress bars).

    Returns:
        (ISA circuit, report) pairs, ranked by :func:`rank_backends`.

    Raises:
        BackendError: Unknown backend, or one narrower than the circuit.
    """
    if len(set(spec.backends)) != len(spec.backends):
        raise BackendError(f"backend named twice in {list(spec.backends)}; name each backend once")
    backends = [resolve_backend(name) for name in spec.backends]
    for name, b in zip(spec.backends, backends):
        if circuit.num_qubits > b.num_qubits:
            raise BackendError(
                f"circuit needs {circuit.num_qubits} qubits but {name} has {b.num_qubits}; "
                "choose a larger backend or a smaller spec"
            )
    out = []
    for name, b in zip(spec.backends, backends):
        isa, report = transpile_sweep(circuit, b, optimization_level=spec.optimization_level, seeds=spec.seeds,
                                      name=name, strategy=spec.strategy)
        if spec.anchors:
            anchors = {"sabre_64_trials": sabre_anchor(circuit, b)[1], "mapomatic": mapomatic_anchor(circuit, b)}
            report = report.model_copy(update={"anchors": anchors})
        out.append((isa, report))
        if on_backend_done is not None:
            on_backend_done(name)
    order = {id(r): i for i, r in enumerate(rank_backends([r for _, r in out]))}
    return sorted(out, key=lambda pair: order[id(pair[1])])
