"""Hardware-native layout and routing for QFL and MMA circuits: placements by interaction count and calibration,
bridges instead of SWAP chains, then Qiskit's own optimisation.

Why not only Qiskit's preset (SABRE): QFL circuits are stars around the value qubit (every S(x) CX targets it), with
very uneven use of the index qubits (Gray-code order: bit 0 half of the CX, bit 1 a quarter...). On heavy-hex
(degree 3) SABRE's SWAP routing moves qubits back and forth and gives the default QFL 77 two-qubit gates where about
58 are reachable. Here:

1. the logical circuit's two-qubit interaction counts are read off;
2. placements are searched (beam search from the best-calibrated centres): logical qubits in order of their
   interaction weight, each on a free physical qubit within distance 2 of its placed partners, scored by the
   expected log-fidelity of every two-qubit gate (a direct CX: its edge's error; a CX at distance 2: the 4 CX of a
   bridge through the best middle qubit), from the backend target's calibration;
3. each candidate is routed without SWAPs: a CX at distance 2 becomes the bridge
   CX(a,m) CX(m,c) CX(a,m) CX(m,c), which equals CX(a,c) whatever the middle qubit holds (it is restored), so no
   qubit ever moves and the layout is a plain map;
4. the placed circuit goes through the preset pass manager at level 3 with that layout fixed (basis translation,
   2q-block resynthesis and 1q optimisation); its layout is rewritten so the ISA circuit's ``layout`` maps the
   logical qubits (observables lay out as usual, ``SparsePauliOp.apply_layout``).

The caller (:func:`~qfl_qiskit.transpile.report.transpile_sweep`) keeps the best ESP among these and the preset's
seeds, so the strategy is never worse than the preset.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from qiskit import QuantumCircuit, QuantumRegister

#: Error assumed for a coupler the target gives no error for; errors are capped so broken couplers stay finite.
DEFAULT_ERROR, MAX_ERROR = 0.01, 0.5


def interactions(circuit: QuantumCircuit) -> dict[tuple[int, int], int]:
    """Two-qubit gate counts per (sorted) logical qubit pair."""
    out: dict[tuple[int, int], int] = {}
    for inst in circuit.data:
        if inst.operation.num_qubits == 2:
            a, b = sorted(circuit.find_bit(q).index for q in inst.qubits)
            out[(a, b)] = out.get((a, b), 0) + 1
        elif inst.operation.num_qubits > 2:
            raise ValueError(f"native routing handles 1- and 2-qubit gates, not '{inst.operation.name}'")
    return out


@dataclasses.dataclass(frozen=True)
class Device:
    """The coupling graph with distances and per-edge costs (-log(1 - error) of the best 2q gate on it)."""

    num_qubits: int
    neighbors: list[list[int]]
    dist: np.ndarray
    cost: dict[tuple[int, int], float]

    @classmethod
    def of(cls, backend: Any) -> Device:
        import rustworkx as rx

        graph = backend.coupling_map.graph.to_undirected(multigraph=False)
        errors: dict[tuple[int, int], float] = {}
        target = backend.target
        for name in target.operation_names:
            op = target.operation_from_name(name) if hasattr(target, "operation_from_name") else None
            if getattr(op, "num_qubits", 0) != 2:
                continue
            for qargs, props in target[name].items():
                if qargs is None or len(qargs) != 2:
                    continue
                key = tuple(sorted(qargs))
                err = props.error if props is not None and props.error is not None else DEFAULT_ERROR
                errors[key] = min(errors.get(key, 1.0), min(float(err), MAX_ERROR))
        cost = {k: -math.log(1.0 - e) for k, e in errors.items()}
        neighbors = [sorted(graph.neighbors(n)) for n in range(backend.num_qubits)]
        return cls(backend.num_qubits, neighbors, np.asarray(rx.distance_matrix(graph), dtype=float), cost)

    def edge(self, a: int, b: int) -> float:
        return self.cost.get((min(a, b), max(a, b)), -math.log(1.0 - DEFAULT_ERROR))

    def middle(self, a: int, c: int) -> tuple[int, float]:
        """The best middle qubit of a bridge a - m - c, and the bridge's cost (2 CX on each edge)."""
        best = min((m for m in self.neighbors[a] if self.dist[m, c] == 1),
                   key=lambda m: self.edge(a, m) + self.edge(m, c))
        return best, 2.0 * (self.edge(a, best) + self.edge(best, c))

    def pair_cost(self, a: int, b: int) -> float:
        d = self.dist[a, b]
        if d == 1:
            return self.edge(a, b)
        if d == 2:
            return self.middle(a, b)[1]
        return math.inf


def placements(circuit: QuantumCircuit, device: Device, *, beam: int = 48, centres: int = 12,
               keep: int = 6) -> list[tuple[float, list[int]]]:
    """The best SWAP-free placements (physical qubit of each logical qubit), cheapest first.

    Every interacting pair sits at distance 1 or 2. Returns an empty list when no such placement exists (e.g. a
    qubit with more partners than distance 2 offers, or a circuit wider than the device).
    """
    n = circuit.num_qubits
    pairs = interactions(circuit)
    if n > device.num_qubits or not pairs:
        return []
    weight = np.zeros(n)
    partners: list[dict[int, int]] = [{} for _ in range(n)]
    for (a, b), k in pairs.items():
        weight[a] += k
        weight[b] += k
        partners[a][b] = k
        partners[b][a] = k
    order = _order(n, weight, partners)
    first = order[0]
    ranked = sorted(range(device.num_qubits),
                    key=lambda p: (-len(device.neighbors[p]),
                                   sum(device.edge(p, m) for m in device.neighbors[p]) / max(1, len(device.neighbors[p]))))
    states: list[tuple[float, dict[int, int]]] = [(0.0, {first: p}) for p in ranked[:centres]]
    for lq in order[1:]:
        grown: list[tuple[float, dict[int, int]]] = []
        for score, placed in states:
            used = set(placed.values())
            anchors = [placed[q] for q in partners[lq] if q in placed]
            for p in _free_near(anchors, device, used):
                extra = sum(k * device.pair_cost(p, placed[q]) for q, k in partners[lq].items() if q in placed)
                if math.isfinite(extra):
                    grown.append((score + extra, {**placed, lq: p}))
        grown.sort(key=lambda s: s[0])
        states = _distinct(grown, beam)
        if not states:
            return []
    return [(score, [placed[q] for q in range(n)]) for score, placed in states[:keep]]


def _order(n: int, weight: np.ndarray, partners: list[dict[int, int]]) -> list[int]:
    """Heaviest qubit first, then repeatedly the unplaced qubit most tied to the placed ones."""
    order = [int(np.argmax(weight))]
    while len(order) < n:
        rest = [q for q in range(n) if q not in order]
        order.append(max(rest, key=lambda q: (sum(partners[q].get(p, 0) for p in order), weight[q], -q)))
    return order


def _free_near(anchors: list[int], device: Device, used: set[int]) -> Iterator[int]:
    if not anchors:  # a qubit without placed partners (a disconnected part): anywhere free
        yield from (p for p in range(device.num_qubits) if p not in used)
        return
    near = np.nonzero(device.dist[anchors[0]] <= 2)[0]
    for p in near:
        p = int(p)
        if p not in used and all(device.dist[p, a] <= 2 for a in anchors[1:]):
            yield p


def _distinct(states: list[tuple[float, dict[int, int]]], beam: int) -> list[tuple[float, dict[int, int]]]:
    out, seen = [], set()
    for score, placed in states:
        key = tuple(sorted(placed.items()))
        if key not in seen:
            seen.add(key)
            out.append((score, placed))
            if len(out) == beam:
                break
    return out


def route(circuit: QuantumCircuit, placement: list[int], device: Device) -> QuantumCircuit:
    """The circuit on the device's qubits: logical qubit i on ``placement[i]``, a CX at distance 2 bridged.

    The result holds the logical qubits first (same ``Qubit`` objects, so parameters and names carry over) and
    one ancilla per other physical qubit; :func:`physical_order` gives the physical qubit of each.
    """
    n = circuit.num_qubits
    ancillas = QuantumRegister(device.num_qubits - n, "ancilla") if device.num_qubits > n else None
    out = QuantumCircuit(circuit.qubits, *([ancillas] if ancillas is not None else []), name=circuit.name,
                         global_phase=circuit.global_phase, metadata=dict(circuit.metadata or {}))
    order = physical_order(placement, device.num_qubits)
    wire = {p: out.qubits[i] for i, p in enumerate(order)}
    for inst in circuit.data:
        qs = [placement[circuit.find_bit(q).index] for q in inst.qubits]
        if inst.operation.num_qubits == 2 and device.dist[qs[0], qs[1]] == 2:
            if inst.operation.name != "cx":
                raise ValueError(f"only CX gates are bridged, not '{inst.operation.name}'")
            a, c = qs
            m = device.middle(a, c)[0]
            for x, y in ((a, m), (m, c), (a, m), (m, c)):
                out.cx(wire[x], wire[y])
        elif inst.operation.num_qubits == 2 and device.dist[qs[0], qs[1]] != 1:
            raise ValueError("placement leaves a two-qubit gate more than 2 couplers apart")
        else:
            out.append(inst.operation, [wire[p] for p in qs], inst.clbits)
    return out


def physical_order(placement: list[int], num_physical: int) -> list[int]:
    """Physical qubit of each qubit of :func:`route`'s circuit: the placement, then the free qubits in order."""
    taken = set(placement)
    free = [p for p in range(num_physical) if p not in taken]
    return list(placement) + free


def transpile_native(circuit: QuantumCircuit, backend: Any, placement: list[int], *,
                     device: Device | None = None, seed: int = 0) -> QuantumCircuit:
    """Route ``circuit`` for ``placement`` (:func:`route`), then optimise it with the preset pass manager at level 3
    with the layout fixed. The returned ISA circuit's ``layout`` maps the logical qubits (its input qubits) to
    their physical qubits; the ancillas are marked as such."""
    from qiskit.transpiler import generate_preset_pass_manager

    device = device or Device.of(backend)
    placed = route(circuit, placement, device)
    pm = generate_preset_pass_manager(optimization_level=3, backend=backend,
                                      initial_layout=physical_order(placement, device.num_qubits),
                                      seed_transpiler=seed)
    isa = pm.run(placed)
    if isa.layout is not None:  # only the original qubits are inputs; the rest are ancillas
        isa._layout = dataclasses.replace(isa.layout, _input_qubit_count=circuit.num_qubits)
    return isa


def variants(circuit: QuantumCircuit) -> list[tuple[str, QuantumCircuit]]:
    """The circuit, and for a QFL circuit (``metadata["qfl_spec"]``) the same unitary in every Gray-code order of
    its index qubits (:func:`~qfl_qiskit.circuits.qfl.build_qfl`'s ``control_order``), with the original's
    parameters, so the routed circuit binds exactly like the logical one."""
    import itertools

    out = [("as built", circuit)]
    meta = circuit.metadata or {}
    if "qfl_spec" not in meta:
        return out
    from qfl_qiskit.circuits.qfl import build_qfl
    from qfl_qiskit.specs.circuit import QFLSpec

    spec = QFLSpec.model_validate(meta["qfl_spec"])
    k = circuit.num_qubits - 1
    if k > 5:  # 720 orders and more: the search would cost more than it saves
        return out
    by_name = {p.name: p for p in circuit.parameters}
    current = tuple(meta.get("control_order", range(k)))
    rebuilt = build_qfl(spec, control_order=current).circuit
    if {p.name for p in rebuilt.parameters} != set(by_name) or len(rebuilt.data) != len(circuit.data):
        return out  # derived from a QFL (a shift plan, a bound or edited copy): only the circuit as it is
    for order in itertools.permutations(range(k)):
        if order == current:
            continue
        alt = build_qfl(spec, control_order=order).circuit
        alt = alt.assign_parameters({p: by_name[p.name] for p in alt.parameters})
        alt.name = circuit.name
        out.append((f"gray order {list(order)}", alt))
    return out


def native_candidates(circuit: QuantumCircuit, backend: Any, *, keep: int = 6) -> list[tuple[str, QuantumCircuit]]:
    """ISA circuits of the best placements over :func:`variants` (cheapest by the placement score), each with a
    label naming its variant and placement; empty when no SWAP-free placement exists."""
    device = Device.of(backend)
    scored = []
    for label, variant in variants(circuit):
        for score, placement in placements(variant, device, keep=2):
            scored.append((score, label, placement, variant))
    scored.sort(key=lambda r: r[0])
    return [(f"{label}, qubits {placement}", transpile_native(variant, backend, placement, device=device))
            for _, label, placement, variant in scored[:keep]]
