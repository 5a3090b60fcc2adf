"""The native strategy as Qiskit transpiler stage plugins, for ``transpile``-level users.

Installed with the package (entry points in ``pyproject.toml``)::

    from qiskit.transpiler import generate_preset_pass_manager
    pm = generate_preset_pass_manager(optimization_level=3, backend=backend,
                                      layout_method="qfl_native", routing_method="qfl_bridge")
    isa = pm.run(qnn.circuit)

- layout ``qfl_native`` (:class:`NativeLayout`): the cheapest SWAP-free placement by interaction count and
  calibration (:func:`~qfl_qiskit.transpile.native.ranked_placements`); for a QFL circuit it may also switch the
  circuit to the same unitary in a better Gray-code order of its index qubits (same parameters). A layout given as
  ``initial_layout`` is kept. A circuit with no placement within the bridges' reach is refused (use the default
  layout method for it).
- routing ``qfl_bridge`` (:class:`BridgeRouting`): every CX between qubits up to 4 couplers apart becomes a bridge
  (:func:`~qfl_qiskit.transpile.native.bridge`); no qubit moves, so the final layout is the initial one.

:func:`qfl_qiskit.transpile.transpile_sweep` (strategy "native"/"all") uses the same routing stage and keeps the
best of several placements by ESP after optimisation, and the preset's result when that is better; the plugins keep
the first placement, as a pass cannot compare finished circuits.
"""

from __future__ import annotations

from typing import Any

from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import Layout, PassManager, TranspilerError
from qiskit.transpiler.basepasses import TransformationPass
from qiskit.transpiler.passes import SetLayout
from qiskit.transpiler.preset_passmanagers import common
from qiskit.transpiler.preset_passmanagers.plugin import PassManagerStagePlugin

from qfl_qiskit.transpile.native import MAX_BRIDGE, Device, ranked_placements, route


class NativeLayout(TransformationPass):
    """Choose the native placement and set ``property_set["layout"]`` (unless a layout is already set)."""

    def __init__(self, target: Any):
        super().__init__()
        self.target = target

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        if self.property_set["layout"] is not None:
            return dag
        circuit = dag_to_circuit(dag)
        ranked = ranked_placements(circuit, Device.of_target(self.target), keep=1)
        if not ranked:
            raise TranspilerError(f"no SWAP-free placement with every two-qubit gate within {MAX_BRIDGE} couplers; "
                                  "use the default layout_method for this circuit")
        _, label, placement, build = ranked[0]
        if label != "as built":
            variant = circuit.copy_empty_like()
            variant.compose(build(), qubits=range(circuit.num_qubits), inplace=True)
            dag = circuit_to_dag(variant)
        self.property_set["layout"] = Layout({q: p for q, p in zip(dag.qubits, placement)})
        self.property_set["qfl_native_variant"] = label
        return dag


class BridgeRouting(TransformationPass):
    """Route a laid-out circuit with bridges (CX only, up to 4 couplers apart); nothing is swapped."""

    def __init__(self, target: Any):
        super().__init__()
        self.target = target

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        circuit = dag_to_circuit(dag)
        device = Device.of_target(self.target)
        try:
            routed = route(circuit, list(range(circuit.num_qubits)), device)
        except ValueError as exc:
            raise TranspilerError(str(exc)) from exc
        return circuit_to_dag(routed)


class NativeLayoutPlugin(PassManagerStagePlugin):
    """Layout stage ``qfl_native``: a given ``initial_layout``, else :class:`NativeLayout`; then the usual
    embedding (ancillas, apply layout)."""

    def pass_manager(self, pass_manager_config: Any, optimization_level: int | None = None) -> PassManager:
        target = pass_manager_config.target
        if target is None:
            raise TranspilerError("layout_method 'qfl_native' needs a backend or target with calibration")
        pm = PassManager([SetLayout(pass_manager_config.initial_layout), NativeLayout(target)])
        return pm + common.generate_embed_passmanager(target)


class BridgeRoutingPlugin(PassManagerStagePlugin):
    """Routing stage ``qfl_bridge``: :class:`BridgeRouting`, with the preset's barrier handling around it."""

    def pass_manager(self, pass_manager_config: Any, optimization_level: int | None = None) -> PassManager:
        target = pass_manager_config.target
        if target is None:
            raise TranspilerError("routing_method 'qfl_bridge' needs a backend or target")
        return common.generate_routing_passmanager(BridgeRouting(target), target,
                                                   coupling_map=pass_manager_config.coupling_map)
