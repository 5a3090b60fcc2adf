"""Hardware-native layout and routing for QFL and MMA circuits: placements by interaction count and calibration,
bridges instead of SWAP chains, then Qiskit's own optimisation.

Why not only Qiskit's preset (SABRE): QFL circuits are stars around the value qubit (every S(x) CX targets it), with
very uneven use of the index qubits (Gray-code order: bit 0 half of the CX, bit 1 a quarter...). On heavy-hex
(degree 3) SABRE's SWAP routing moves qubits back and forth and gives the default QFL 77 two-qubit gates where about
58 are reachable. Here:

1. the logical circuit's two-qubit interaction counts are read off (for a QFL, also those of the same unitary in
   other Gray-code orders of its index qubits, computed without building them);
2. placements are searched (beam search from the best-calibrated centres): logical qubits in order of their
   interaction weight, each on a free physical qubit within 4 couplers of its placed partners, scored by the
   expected log-fidelity of every two-qubit gate (a direct CX: its edge's error; a CX L couplers apart: the
   4(L-1) CX of a bridge along the best path), from the backend target's calibration;
3. each candidate is routed without SWAPs: a CX two couplers apart becomes the bridge
   CX(a,m) CX(m,c) CX(a,m) CX(m,c), which equals CX(a,c) whatever the middle qubit holds (it is restored), and
   longer ones its generalisation (:func:`bridge`), so no qubit ever moves and the layout is a plain map;
4. the placed circuit goes through the preset pass manager at level 3 with that layout fixed (basis translation,
   2q-block resynthesis and 1q optimisation); its layout is rewritten so the ISA circuit's ``layout`` maps the
   logical qubits (observables lay out as usual, ``SparsePauliOp.apply_layout``).

The caller (:func:`~qfl_qiskit.transpile.report.transpile_sweep`) keeps the best ESP among these and the preset's
seeds, so the strategy is never worse than the preset.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from qiskit import QuantumCircuit, QuantumRegister

#: Error assumed for a coupler the target gives no error for; errors are capped so broken couplers stay finite.
DEFAULT_ERROR, MAX_ERROR = 0.01, 0.5
#: Longest coupler path a CX is bridged over (a bridge over L couplers costs 4(L-1) CX).
MAX_BRIDGE = 4


def interactions(circuit: QuantumCircuit) -> dict[tuple[int, int], int]:
    """Two-qubit gate counts per (sorted) logical qubit pair."""
    out: dict[tuple[int, int], int] = {}
    for inst in circuit.data:
        if inst.operation.name == "barrier":
            continue
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
    _paths: dict[tuple[int, int], tuple[list[int], float]] = dataclasses.field(default_factory=dict, repr=False,
                                                                            compare=False)

    @classmethod
    def of(cls, backend: Any) -> Device:
        return cls.of_target(backend.target)

    @classmethod
    def of_target(cls, target: Any) -> Device:
        import rustworkx as rx

        graph = target.build_coupling_map().graph.to_undirected(multigraph=False)
        errors: dict[tuple[int, int], float] = {}
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
        neighbors = [sorted(graph.neighbors(n)) for n in range(target.num_qubits)]
        return cls(target.num_qubits, neighbors, np.asarray(rx.distance_matrix(graph), dtype=float), cost)

    def edge(self, a: int, b: int) -> float:
        return self.cost.get((min(a, b), max(a, b)), -math.log(1.0 - DEFAULT_ERROR))

    def path(self, a: int, c: int) -> tuple[list[int], float]:
        """The cheapest shortest path a .. c for a bridged CX (:func:`bridge`), and the bridge's cost.

        The bridge over L couplers uses its first and last coupler twice and the inner ones four times, so the cost
        is 2 e_first + 2 e_last + 4 (sum of the inner e). Cached per pair."""
        key = (a, c)
        if key not in self._paths:
            d = float(self.dist[a, c])
            best: tuple[float, list[int]] = (math.inf, [])
            if d == 1:
                best = (self.edge(a, c), [a, c])
            elif 1 < d <= MAX_BRIDGE:
                stack = [[a]]
                while stack:
                    path = stack.pop()
                    if path[-1] == c:
                        links = list(zip(path, path[1:]))
                        cost = 2 * (self.edge(*links[0]) + self.edge(*links[-1]))
                        best = min(best, (cost + 4 * sum(self.edge(x, y) for x, y in links[1:-1]), path))
                        continue
                    left = d - len(path)  # distance to c after the next step
                    stack.extend(path + [m] for m in self.neighbors[path[-1]] if self.dist[m, c] == left)
            self._paths[key] = (best[1], best[0])
        return self._paths[key]

    def pair_cost(self, a: int, b: int) -> float:
        return self.path(a, b)[1]


def bridge(path: list[int]) -> list[tuple[int, int]]:
    """CX(path[0], path[-1]) on a path of couplers, with every qubit in between restored: the sequence
    S = CX(p0,p1) CX(p1,p2) .. CX(p(L-1),pL) CX(p(L-2),p(L-1)) .. CX(p1,p2), applied twice (4(L-1) CX; a
    breadth-first search over GF(2) circuits finds none shorter for L = 2, 3, 4). Nothing moves, so the layout
    stays a plain map. L = 2 is the usual 4-CX bridge."""
    links = list(zip(path, path[1:]))
    if len(links) == 1:
        return links
    half = links + links[-2:0:-1]
    return half + half


def placements(pairs: dict[tuple[int, int], int], num_qubits: int, device: Device, *, beam: int = 48,
               centres: int = 12, keep: int = 6) -> list[tuple[float, list[int]]]:
    """The best SWAP-free placements (physical qubit of each logical qubit) for a circuit of ``num_qubits`` with
    two-qubit gate counts ``pairs`` (:func:`interactions`), cheapest first.

    Every interacting pair sits at most :data:`MAX_BRIDGE` couplers apart. Returns an empty list when no such
    placement exists (e.g. a circuit wider than the device).
    """
    n = num_qubits
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
    near = np.nonzero(device.dist[anchors[0]] <= MAX_BRIDGE)[0]
    for p in near:
        p = int(p)
        if p not in used and all(device.dist[p, a] <= MAX_BRIDGE for a in anchors[1:]):
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
    """The circuit on the device's qubits: logical qubit i on ``placement[i]``, every CX between qubits that are
    not neighbours bridged (:func:`bridge`).

    The result holds the logical qubits first (same ``Qubit`` objects and registers, so parameters and names carry
    over) and one ancilla per other physical qubit; :func:`physical_order` gives the physical qubit of each. On a
    circuit already laid out on the device (placement 0, 1, ...) this is the ``qfl_bridge`` routing stage.
    """
    n = circuit.num_qubits
    out = circuit.copy_empty_like()
    if device.num_qubits > n:
        out.add_register(QuantumRegister(device.num_qubits - n, "ancilla"))
    order = physical_order(placement, device.num_qubits)
    wire = {p: out.qubits[i] for i, p in enumerate(order)}
    for inst in circuit.data:
        qs = [placement[circuit.find_bit(q).index] for q in inst.qubits]
        if inst.operation.num_qubits == 2 and device.dist[qs[0], qs[1]] > 1:
            if inst.operation.name != "cx":
                raise ValueError(f"only CX gates are bridged, not '{inst.operation.name}'")
            path = device.path(*qs)[0]
            if not path:
                raise ValueError(f"placement leaves a two-qubit gate more than {MAX_BRIDGE} couplers apart")
            for x, y in bridge(path):
                out.cx(wire[x], wire[y])
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
    """The preset pass manager at level 3 with ``placement`` as the initial layout and the ``qfl_bridge`` routing
    stage (:class:`~qfl_qiskit.transpile.plugin.BridgeRouting`) in place of SABRE: basis translation, 2q-block
    resynthesis and 1q optimisation as usual, no SWAP. The ISA circuit's ``layout`` maps the logical qubits."""
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit.transpiler.passmanager_config import PassManagerConfig

    from qfl_qiskit.transpile.plugin import BridgeRoutingPlugin

    pm = generate_preset_pass_manager(optimization_level=3, backend=backend, initial_layout=list(placement),
                                      seed_transpiler=seed)
    pm.routing = BridgeRoutingPlugin().pass_manager(PassManagerConfig.from_backend(backend), 3)
    return pm.run(circuit)


def variants(circuit: QuantumCircuit) -> list[tuple[str, dict[tuple[int, int], int], Callable[[], QuantumCircuit]]]:
    """The circuit, and for a QFL circuit (``metadata["qfl_spec"]``) the same unitary in other Gray-code orders of
    its index qubits (:func:`gray_orders`; :func:`~qfl_qiskit.circuits.qfl.build_qfl`'s ``control_order``).

    Each entry is (label, interaction counts, build): the counts come without building the circuit
    (:func:`~qfl_qiskit.circuits.qfl.qfl_interactions`), and ``build()`` makes it with the original's parameter
    vectors, so the routed circuit binds exactly like the logical one. Only the placements worth routing are built.
    """
    out: list[tuple[str, dict[tuple[int, int], int], Callable[[], QuantumCircuit]]] = [
        ("as built", interactions(circuit), lambda: circuit)]
    meta = circuit.metadata or {}
    if "qfl_spec" not in meta:
        return out
    from qfl_qiskit.circuits.qfl import build_qfl, qfl_interactions
    from qfl_qiskit.specs.circuit import QFLSpec

    spec = QFLSpec.model_validate(meta["qfl_spec"])
    k = circuit.num_qubits - 1
    current = tuple(meta.get("control_order", range(k)))
    rebuilt = build_qfl(spec, control_order=current)
    vectors = _vectors(circuit, rebuilt)
    if vectors is None or len(rebuilt.circuit.data) != len(circuit.data):
        return out  # derived from a QFL (a shift plan, a bound or edited copy): only the circuit as it is

    def builder(order: tuple[int, ...]) -> Callable[[], QuantumCircuit]:
        def build() -> QuantumCircuit:
            alt = build_qfl(spec, control_order=order, parameters=vectors).circuit
            alt.name = circuit.name
            return alt
        return build

    out.extend((f"gray order {list(order)}", qfl_interactions(spec, order), builder(order))
               for order in gray_orders(k) if order != current)
    return out


def _vectors(circuit: QuantumCircuit, rebuilt: Any) -> tuple[Any, Any] | None:
    """The circuit's input and weight ParameterVectors when its parameters are exactly a fresh build's (by name)."""
    params = list(circuit.parameters)
    if sorted(p.name for p in params) != sorted(p.name for p in rebuilt.circuit.parameters):
        return None
    vecs = {}
    for p in params:
        vec = getattr(p, "vector", None)
        if vec is None:
            return None
        vecs[vec.name] = vec
    try:
        return vecs[rebuilt.inputs.name], vecs[rebuilt.weights.name]
    except KeyError:
        return None


def gray_orders(k: int) -> list[tuple[int, ...]]:
    """Gray-code orders of k index qubits to try: all k! up to k = 5; beyond that the 2^(k-1) orders that walk
    outward along the index chain from one qubit (each next qubit adjacent to those already taken), which keep the
    most-used index qubits next to each other in the entangler's chain (M=12, D=4, P=3 on fake_torino: the best of
    these gives 342 two-qubit gates, the built order 375; all 720 orders would cost 20x the time)."""
    import itertools

    if k <= 5:
        return list(itertools.permutations(range(k)))
    out = []
    for start in range(k):
        for steps in itertools.product((0, 1), repeat=k - 1):
            lo = hi = start
            order = [start]
            for right in steps:
                if right and hi + 1 < k:
                    hi += 1
                    order.append(hi)
                elif lo > 0:
                    lo -= 1
                    order.append(lo)
                else:
                    hi += 1
                    order.append(hi)
            out.append(tuple(order))
    return list(dict.fromkeys(out))


def native_candidates(circuit: QuantumCircuit, backend: Any, *, keep: int = 6) -> list[tuple[str, QuantumCircuit]]:
    """ISA circuits of the best placements over :func:`variants` (cheapest by the placement score), each with a
    label naming its variant and placement; empty when no SWAP-free placement exists."""
    device = Device.of(backend)
    built: dict[str, QuantumCircuit] = {}
    out = []
    for _, label, placement, build in ranked_placements(circuit, device, keep=keep):
        if label not in built:
            built[label] = build()
        out.append((f"{label}, qubits {placement}", transpile_native(built[label], backend, placement, device=device)))
    return out


def ranked_placements(circuit: QuantumCircuit, device: Device, *, keep: int = 6
                      ) -> list[tuple[float, str, list[int], Callable[[], QuantumCircuit]]]:
    """(score, variant label, placement, build) of the cheapest placements over :func:`variants`, best first."""
    scored, seen = [], set()
    for label, pairs, build in variants(circuit):
        key = frozenset(pairs.items())
        if key in seen:  # e.g. the last two Gray-code qubits swapped: the same counts, the same placements
            continue
        seen.add(key)
        for score, placement in placements(pairs, circuit.num_qubits, device, keep=2):
            scored.append((score, label, placement, build))
    scored.sort(key=lambda r: r[0])
    return scored[:keep]
