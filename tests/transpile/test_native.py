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
from qfl_qiskit.transpile.native import Device, bridge, gray_orders, interactions, placements, route

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
    found = placements(interactions(qnn.circuit), qnn.circuit.num_qubits, device)
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


def _line(n):
    from qiskit.providers.fake_provider import GenericBackendV2
    from qiskit.transpiler import CouplingMap

    return GenericBackendV2(num_qubits=n, coupling_map=CouplingMap.from_line(n), seed=1)


@pytest.mark.parametrize("couplers", [1, 2, 3, 4, 5])
def test_a_bridge_over_any_path_is_one_cx_and_restores_the_qubits_between(couplers):
    from qiskit import QuantumCircuit

    gates = bridge(list(range(couplers + 1)))
    assert len(gates) == (1 if couplers == 1 else 4 * (couplers - 1))
    assert all(abs(a - b) == 1 for a, b in gates)  # only couplers of the path
    routed, direct = QuantumCircuit(couplers + 1), QuantumCircuit(couplers + 1)
    for a, b in gates:
        routed.cx(a, b)
    direct.cx(0, couplers)
    assert Operator(routed).equiv(Operator(direct))


@pytest.mark.parametrize(("spec", "order"), [
    (DEFAULT, None), (DEFAULT, (3, 1, 0, 2)), (DEFAULT.model_copy(update={"entanglement": "star"}), (1, 0, 3, 2)),
    (QFLSpec(modalities=12, features=4, degree=3, layers=2, entanglement="circular"), (5, 4, 3, 2, 1, 0)),
    (QFLSpec(modalities=3, features=1, degree=1, entanglement="full"), (1, 0)),
])
def test_interaction_counts_without_building_match_the_built_circuit(spec, order):
    from qfl_qiskit.circuits.qfl import qfl_interactions

    assert qfl_interactions(spec, order) == interactions(build_qfl(spec, control_order=order).circuit)


def test_gray_orders_are_permutations_all_of_them_up_to_five_qubits():
    assert len(set(gray_orders(4))) == 24
    wide = gray_orders(7)
    assert len(wide) == len(set(wide)) and all(sorted(o) == list(range(7)) for o in wide)
    # each next qubit is next to one already taken, along the index chain
    assert all(min(abs(q - p) for p in o[:i]) == 1 for o in wide for i, q in enumerate(o) if i)


def test_routing_with_long_bridges_is_the_same_operator_up_to_the_layout():
    from qiskit import QuantumCircuit

    qnn = build_qfl(QFLSpec(modalities=3, features=2, degree=2, entanglement="full"))  # 4 qubits, all pairs
    backend = _line(6)
    device = Device.of(backend)
    best = placements(interactions(qnn.circuit), 4, device)[0][1]
    assert max(device.dist[a, b] for a in best for b in best) >= 3  # some CX is bridged over 3 couplers
    isa, report = transpile_sweep(qnn.circuit, backend, seeds=1, strategy="native")
    assert report.strategy == "native"
    values = dict(zip(qnn.circuit.parameters, _values(qnn.circuit, rows=1)[0]))
    by_name = {p.name: v for p, v in values.items()}
    logical = QuantumCircuit(6)
    logical.compose(qnn.circuit.assign_parameters(values), range(4), inplace=True)
    physical = isa.assign_parameters({p: by_name[p.name] for p in isa.parameters})
    assert Operator.from_circuit(physical).equiv(Operator(logical))


@pytest.mark.parametrize("backend", ["fake_torino", "fake_sherbrooke"])
def test_native_qfl_at_m12_d4_p3_meets_its_target_on_heavy_hex(backend):
    qnn = build_qfl(QFLSpec(modalities=12, features=4, degree=3))  # 7 qubits, 210 logical 2q gates; preset: 461
    isa, report = transpile_sweep(qnn.circuit, resolve_backend(backend), seeds=2, strategy="all")
    assert report.strategy == "native" and report.two_qubit_count <= 400 and report.swaps == 0
    _agree(qnn, isa)


def test_fallback_to_the_preset_when_no_swap_free_placement_exists():
    # 6 qubits with every pair interacting: on a line some pair is 5 couplers apart, beyond any bridge
    qnn = build_qfl(QFLSpec(modalities=12, features=2, degree=1, entanglement="full"))
    backend = _line(10)
    assert placements(interactions(qnn.circuit), qnn.circuit.num_qubits, Device.of(backend)) == []
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


@pytest.mark.parametrize(("qnn", "limit"), [(build_qfl(DEFAULT), 68), (build_mma(MMASpec(entangler="chain")), 5)],
                         ids=["qfl", "mma"])
def test_the_stage_plugins_are_found_by_name_and_give_an_exact_swap_free_circuit(qnn, limit):
    from qiskit.transpiler import generate_preset_pass_manager

    from qfl_qiskit.transpile.metrics import circuit_metrics

    backend = resolve_backend("fake_torino")
    pm = generate_preset_pass_manager(optimization_level=3, backend=backend, layout_method="qfl_native",
                                      routing_method="qfl_bridge")
    isa = pm.run(qnn.circuit)
    n = qnn.circuit.num_qubits
    assert isa.layout.final_index_layout()[:n] == isa.layout.initial_index_layout()[:n]  # nothing was swapped
    assert circuit_metrics(isa, backend.target)["two_qubit_count"] <= limit  # the preset: 77 and 5
    _agree(qnn, isa)


def test_the_layout_plugin_keeps_a_given_layout_and_refuses_an_unplaceable_circuit():
    from qiskit.transpiler import TranspilerError, generate_preset_pass_manager

    qnn = build_qfl(QFLSpec(modalities=3, features=2, degree=1, entanglement="star"))
    backend = resolve_backend("fake_torino")
    pm = generate_preset_pass_manager(optimization_level=3, backend=backend, initial_layout=[0, 2, 15, 1],
                                      layout_method="qfl_native", routing_method="qfl_bridge")
    isa = pm.run(qnn.circuit)  # the value qubit on 1: 0 and 2 are its neighbours, 15 is bridged
    assert isa.layout.initial_index_layout()[:4] == [0, 2, 15, 1]
    _agree(qnn, isa)
    wide = build_qfl(QFLSpec(modalities=12, features=2, degree=1, entanglement="full"))
    pm = generate_preset_pass_manager(optimization_level=3, backend=_line(10), layout_method="qfl_native",
                                      routing_method="qfl_bridge")
    with pytest.raises(TranspilerError, match="default layout_method"):
        pm.run(wide.circuit)
