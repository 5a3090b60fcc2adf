"""Transpile a parameterized circuit for a backend with a seed sweep; keep the best layout by ESP; report it.

The circuit is transpiled once per (backend, seed) with its parameters unbound, so the kept ISA circuit is bound
many times later without re-transpiling. The candidates always include the default (level 3, seed 0), so the kept
circuit's ESP is never below it, and the report says by how much the sweep improved on it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from qfl_qiskit.errors import BackendError
from qfl_qiskit.transpile.metrics import active_qubits, calibration_time, circuit_metrics

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.providers import BackendV2

BASELINE = (3, 0)  # (optimization level, seed_transpiler) of the default that the sweep must not fall below


#: Transpilation strategies: Qiskit's preset pass manager (seed sweep), the QFL/MMA-aware native layout and
#: routing of :mod:`qfl_qiskit.transpile.native`, or both with the best kept.
STRATEGIES = ("preset", "native", "all")


class Candidate(BaseModel):
    """One transpilation in the sweep."""

    strategy: str = "preset"
    detail: str | None = None  # native: the Gray-code variant and the placement
    optimization_level: int
    seed: int
    esp: float
    two_qubit_count: int
    depth: int
    swaps: int
    seconds: float


class TranspileReport(BaseModel):
    """What a circuit costs on one backend, for the best candidate of the sweep."""

    strategy: str = "preset"  # of the kept candidate
    strategy_detail: str | None = None
    preset_two_qubit_count: int | None = None  # the best preset candidate's, for the native strategy's gain
    preset_esp: float | None = None
    anchors: dict[str, Any] = {}  # other layout tools on the same circuit, for comparison only (not kept)
    backend: str
    backend_qubits: int
    basis_gates: list[str]
    calibration_time: str | None
    circuit_name: str
    circuit_qubits: int
    optimization_level: int
    seed: int
    qubits_used: list[int]
    initial_layout: list[int]
    final_layout: list[int]
    depth: int
    two_qubit_depth: int
    two_qubit_count: int
    one_qubit_count: int
    op_counts: dict[str, int]
    swaps: int
    estimated_duration_s: float | None
    esp: float
    baseline_esp: float
    esp_gain: float
    candidates: list[Candidate]
    transpile_time_s: float
    qiskit_version: str


def _run(pm: Any, circuit: QuantumCircuit) -> tuple[QuantumCircuit, int]:
    """Run a pass manager, counting the SWAPs routing inserted (the most seen in the DAG before translation)."""
    seen = [0]

    def callback(*, dag: Any, **_: Any) -> None:
        seen[0] = max(seen[0], dag.count_ops().get("swap", 0))

    return pm.run(circuit, callback=callback), seen[0]


def transpile_sweep(
    circuit: QuantumCircuit,
    backend: BackendV2,
    *,
    optimization_level: int = 3,
    seeds: int = 8,
    name: str | None = None,
    strategy: str = "all",
) -> tuple[QuantumCircuit, TranspileReport]:
    """Transpile ``circuit`` for ``backend``; keep the candidate with the best ESP.

    The candidates: the preset pass manager with seeds 0..seeds-1 (plus the level-3 seed-0 default, always, so the
    kept circuit is never worse than it), and with ``strategy`` "native" or "all" the QFL/MMA-aware placements of
    :mod:`qfl_qiskit.transpile.native` (SWAP-free, bridged, then optimised at level 3).

    Args:
        circuit: The logical, parameterized circuit.
        backend: Target backend.
        optimization_level: Preset level 0-3 for the sweep.
        seeds: Number of ``seed_transpiler`` values ("native": only the default is kept as the fallback).
        name: Name to report the backend under (the name the user resolved it by); default ``backend.name``.
        strategy: "preset", "native" or "all" (:data:`STRATEGIES`).

    Returns:
        The best ISA circuit (highest ESP; ties go to fewer two-qubit gates, then the earlier candidate) and its
        report.

    Raises:
        BackendError: The circuit is wider than the backend.
    """
    import qiskit
    from qiskit.transpiler import generate_preset_pass_manager

    name = name or backend.name
    if circuit.num_qubits > backend.num_qubits:
        raise BackendError(
            f"circuit needs {circuit.num_qubits} qubits but {name} has {backend.num_qubits}; "
            "choose a larger backend or a smaller spec"
        )
    if strategy not in STRATEGIES:
        raise BackendError(f"unknown transpile strategy '{strategy}'; use {', '.join(STRATEGIES)}")
    runs = [(optimization_level, s) for s in range(seeds)] if strategy != "native" else []
    if BASELINE not in runs:
        runs.append(BASELINE)
    results: list[tuple[Candidate, QuantumCircuit, dict[str, Any]]] = []
    start = time.perf_counter()
    if strategy != "preset":
        results.extend(_native(circuit, backend))
    for level, seed in runs:
        t0 = time.perf_counter()
        pm = generate_preset_pass_manager(optimization_level=level, backend=backend, seed_transpiler=seed)
        isa, swaps = _run(pm, circuit)
        metrics = circuit_metrics(isa, backend.target)
        cand = Candidate(
            optimization_level=level,
            seed=seed,
            esp=metrics["esp"],
            two_qubit_count=metrics["two_qubit_count"],
            depth=metrics["depth"],
            swaps=swaps,
            seconds=time.perf_counter() - t0,
        )
        results.append((cand, isa, metrics))
    total = time.perf_counter() - start
    best_cand, best_isa, best = max(results, key=lambda r: (r[0].esp, -r[0].two_qubit_count))
    baseline = next(c for c, _, _ in results
                    if c.strategy == "preset" and (c.optimization_level, c.seed) == BASELINE)
    preset = max((r for r in results if r[0].strategy == "preset"), key=lambda r: (r[0].esp, -r[0].two_qubit_count))
    layout = best_isa.layout
    report = TranspileReport(
        strategy=best_cand.strategy,
        strategy_detail=best_cand.detail,
        preset_two_qubit_count=preset[0].two_qubit_count,
        preset_esp=preset[0].esp,
        backend=name,
        backend_qubits=backend.num_qubits,
        basis_gates=sorted(backend.operation_names),
        calibration_time=calibration_time(backend),
        circuit_name=circuit.name,
        circuit_qubits=circuit.num_qubits,
        optimization_level=best_cand.optimization_level,
        seed=best_cand.seed,
        qubits_used=active_qubits(best_isa),
        initial_layout=list(layout.initial_index_layout(filter_ancillas=True)) if layout else [],
        final_layout=list(layout.final_index_layout(filter_ancillas=True)) if layout else [],
        swaps=best_cand.swaps,
        baseline_esp=baseline.esp,
        esp_gain=best_cand.esp / baseline.esp if baseline.esp > 0 else float("inf"),
        candidates=[c for c, _, _ in results],
        transpile_time_s=total,
        qiskit_version=qiskit.__version__,
        **best,
    )
    return best_isa, report


def _native(circuit: QuantumCircuit, backend: BackendV2) -> list[tuple[Candidate, QuantumCircuit, dict[str, Any]]]:
    """Candidates of the native strategy (none when the circuit has no SWAP-free placement on the backend)."""
    from qfl_qiskit.transpile.native import native_candidates

    out = []
    if getattr(backend, "coupling_map", None) is None:  # all-to-all (simulators): nothing to place or route
        return out
    t0 = time.perf_counter()
    try:
        found = native_candidates(circuit, backend)
    except ValueError:  # gates the native router does not handle (3-qubit gates, non-CX at distance 2)
        return []
    seconds = (time.perf_counter() - t0) / max(1, len(found))
    for detail, isa in found:
        metrics = circuit_metrics(isa, backend.target)
        cand = Candidate(strategy="native", detail=detail, optimization_level=3, seed=0, esp=metrics["esp"],
                         two_qubit_count=metrics["two_qubit_count"], depth=metrics["depth"], swaps=0,
                         seconds=seconds)
        out.append((cand, isa, metrics))
    return out


def mapomatic_anchor(circuit: QuantumCircuit, backend: BackendV2) -> dict[str, Any]:
    """mapomatic's best layout for the preset's routed circuit (its documented flow: deflate, matching layouts,
    evaluate by calibration, transpile again on the best), as a reference point for the report; mapomatic is in the
    ``bench`` extra. Returns ``{"two_qubit_count", "esp", "seconds"}`` or ``{"skipped": reason}``."""
    try:
        import mapomatic as mm
    except ImportError:
        return {"skipped": "mapomatic is not installed (pip install -e .[bench])"}
    from qiskit.transpiler import generate_preset_pass_manager

    import warnings

    t0 = time.perf_counter()
    try:
        routed = generate_preset_pass_manager(optimization_level=3, backend=backend, seed_transpiler=0).run(circuit)
        with warnings.catch_warnings():  # mapomatic 0.14 iterates CircuitInstruction (deprecated since Qiskit 1.2)
            warnings.simplefilter("ignore", DeprecationWarning)
            small = mm.deflate_circuit(routed)
            scores = mm.evaluate_layouts(small, mm.matching_layouts(small, backend), backend)
        isa = generate_preset_pass_manager(optimization_level=3, backend=backend, initial_layout=scores[0][0],
                                           seed_transpiler=0).run(small)
    except Exception as exc:  # noqa: BLE001  (an anchor must not fail the report)
        return {"skipped": f"mapomatic failed: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"}
    metrics = circuit_metrics(isa, backend.target)
    return {"two_qubit_count": metrics["two_qubit_count"], "esp": metrics["esp"],
            "seconds": time.perf_counter() - t0}


def sabre_anchor(circuit: QuantumCircuit, backend: BackendV2, *, trials: int = 64) -> tuple[QuantumCircuit,
                                                                                          dict[str, Any]]:
    """The preset level-3 pass manager with its SABRE layout stage given ``trials`` layout and swap trials (the
    preset uses one per CPU), as a reference point for the report. Returns the ISA circuit and
    ``{"two_qubit_count", "esp", "trials", "seconds"}``."""
    from qiskit.transpiler import PassManager, generate_preset_pass_manager
    from qiskit.transpiler.passes import SabreLayout

    t0 = time.perf_counter()
    pm = generate_preset_pass_manager(optimization_level=3, backend=backend, seed_transpiler=0)
    # SabreLayout lays out, routes and applies the layout itself (Qiskit >= 1.0): the whole layout stage
    pm.layout = PassManager([SabreLayout(backend.target, seed=0, max_iterations=4, swap_trials=trials,
                                         layout_trials=trials)])
    isa = pm.run(circuit)
    metrics = circuit_metrics(isa, backend.target)
    return isa, {"two_qubit_count": metrics["two_qubit_count"], "esp": metrics["esp"], "trials": trials,
                 "seconds": time.perf_counter() - t0}


def rank_backends(reports: list[TranspileReport]) -> list[TranspileReport]:
    """Backends best first: highest ESP, then fewer two-qubit gates, then shorter duration."""
    return sorted(reports, key=lambda r: (-r.esp, r.two_qubit_count, r.estimated_duration_s or 0.0))
