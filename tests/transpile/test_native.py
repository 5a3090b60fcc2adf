"""The native (QFL/MMA-aware) transpilation: same unitary, fewer two-qubit gates, never worse than the preset."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import Operator

from qfl_qiskit.circuits import build_mma, build_qfl
from qfl_qiskit.execution import ExactEstimator, estimate
from qfl_qiskit.execution.base import layout_observables
from qfl_qiskit.specs import MMASpec, QFLSpec
from qfl_qiskit.transpile import resolve_backend, transpile_sweep
from qfl_qiskit.transpile.native import Device, placements, route

DEFAULT = QFLSpec(modalities=6, features=2, degree=2)


def _values(circuit, rows=3, seed=0):
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (rows, circuit.num_parameters))


def _agree(qnn, isa):
    """Expectation values of the laid-out observables on the ISA circuit equal the logical ones (exact)."""
    values = _values(qnn.circuit)
    est = ExactEstimator()
    logical = estimate(est, [(qnn.circuit, qnn.observables, values)])[0].evs
    physical = estimate(est, [(isa, layout_observables(isa, qnn.observables), values)])[0].evs
    np.testing.assert_allclose(physical, logical, atol=1e-9)


@pytest.mark.parametrize("order", [(2, 1, 0), (1, 2, 0)])
def test_every_gray_code_order_builds_the_same_unitary(order):
    spec = QFLSpec(modalities=3, features=2, degree=2)  # 3 index qubits, 4 in all: Operator comparison is cheap
    base, alt = build_qfl(spec).circuit, build_qfl(spec, control_order=order).circuit
    values = dict(zip((p.name for p in base.parameters), _values(base, rows=1)[0]))
    bound = [c.assign_parameters({p: values[p.name] for p in c.parameters}) for c in (base, alt)]
    assert Operator(bound[1]).equiv(Operator(bound[0]))
    assert alt.metadata["control_order"] == list(order)
    with pytest.raises(ValueError, match="permutation"):
        build_qfl(spec, control_order=(0, 0, 1))


def test_bridged_routing_keeps_every_expectation_value():
    qnn = build_qfl(QFLSpec(modalities=3, features=2, degree=2, entanglement="star"))
    backend = resolve_backend("fake_manila")  # 5 qubits, T-shaped: the value qubit's partners need a bridge
    device = Device.of(backend)
    found = placements(qnn.circuit, device)
    assert found
    placed = route(qnn.circuit, found[0][1], device)
    assert all(device.dist[placed.find_bit(i.qubits[0]).index, placed.find_bit(i.qubits[1]).index] >= 0
               for i in placed.data if i.operation.num_qubits == 2)
    isa, report = transpile_sweep(qnn.circuit, backend, seeds=1, strategy="native")
    _agree(qnn, isa)


@pytest.mark.parametrize(("spec", "backend", "limit"), [
    (DEFAULT, "fake_torino", 68),                                                   # preset: 77
    (DEFAULT.model_copy(update={"entanglement": "star"}), "fake_torino", 58),       # preset: 70
    (DEFAULT.model_copy(update={"entanglement": "star"}), "fake_nighthawk", 40),    # no SWAP on the square lattice
])
def test_native_qfl_meets_the_two_qubit_targets_and_is_exact(spec, backend, limit):
    qnn = build_qfl(spec)
    isa, report = transpile_sweep(qnn.circuit, resolve_backend(backend), seeds=4, strategy="all")
    assert report.strategy == "native" and report.two_qubit_count <= limit < report.preset_two_qubit_count + 1
    assert report.swaps == 0
    _agree(qnn, isa)


def test_chain_mma_needs_no_swap_and_the_default_mma_is_never_worse():
    chain = build_mma(MMASpec(entangler="chain"))
    isa, report = transpile_sweep(chain.circuit, resolve_backend("fake_torino"), seeds=2, strategy="all")
    assert report.swaps == 0 and report.two_qubit_count == 5
    _agree(chain, isa)
    default = build_mma(MMASpec())
    _, rep = transpile_sweep(default.circuit, resolve_backend("fake_torino"), seeds=2, strategy="all")
    assert rep.two_qubit_count <= rep.preset_two_qubit_count


def test_fallback_to_the_preset_when_no_swap_free_placement_exists():
    qnn = build_qfl(QFLSpec(modalities=12, features=4, degree=1))  # 6 index qubits: no distance-2 star on heavy-hex
    backend = resolve_backend("fake_torino")
    assert placements(qnn.circuit, Device.of(backend)) == []
    isa, report = transpile_sweep(qnn.circuit, backend, seeds=2, strategy="native")
    assert report.strategy == "preset" and report.seed == 0  # the default, kept as the fallback
    only, preset = transpile_sweep(qnn.circuit, backend, seeds=2, strategy="preset")
    assert preset.two_qubit_count == report.two_qubit_count


def test_the_mapomatic_anchor_re_places_the_preset_circuit():
    from qfl_qiskit.transpile.report import mapomatic_anchor

    qnn = build_qfl(DEFAULT)
    backend = resolve_backend("fake_torino")
    anchor = mapomatic_anchor(qnn.circuit, backend)
    _, preset = transpile_sweep(qnn.circuit, backend, seeds=1, strategy="preset")
    # mapomatic moves the preset's routed circuit (seed 0) to its best-scored subgraph: same gates, a layout at
    # least as good by calibration
    assert anchor["two_qubit_count"] == preset.two_qubit_count
    assert anchor["esp"] >= preset.baseline_esp - 1e-9


def test_the_sabre_trials_anchor_is_exact_and_no_worse_than_the_preset_default():
    from qfl_qiskit.transpile.report import sabre_anchor

    qnn = build_qfl(DEFAULT)
    backend = resolve_backend("fake_torino")
    isa, anchor = sabre_anchor(qnn.circuit, backend, trials=16)
    _agree(qnn, isa)
    _, preset = transpile_sweep(qnn.circuit, backend, seeds=1, strategy="preset")
    assert anchor["trials"] == 16 and anchor["two_qubit_count"] <= preset.two_qubit_count
