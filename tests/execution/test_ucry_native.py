"""The exact simulator's native uniformly controlled RY (one step per chain recorded by ``append_ucry``) against
Qiskit's ``Statevector`` and against the same gates run one by one (values and gradients, 1 to 8 controls, batched,
shared weights), and the fall-back to the general path when the recorded span no longer matches the gates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp, Statevector

from qfl_qiskit.circuits import build_qfl
from qfl_qiskit.circuits.ucry import UCRY_METADATA_KEY, append_ucry, ucry_spans
from qfl_qiskit.execution.torch_sv import compile_circuit
from qfl_qiskit.specs import QFLSpec


def _native_steps(compiled) -> int:
    return sum(op.kind == "ucr" for op in compiled._ops)


def _plain(qc: QuantumCircuit) -> QuantumCircuit:
    """The same gates without the recorded spans: every RY and CX runs on the general path."""
    out = qc.copy()
    out.metadata = {k: v for k, v in (qc.metadata or {}).items() if k != UCRY_METADATA_KEY}
    return out


def _circuit(k: int, extra: int = 1, values: np.ndarray | None = None
             ) -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
    """Inputs x on RX / RY layers around a UCRY whose branch angles are weights w, then a second UCRY driven by x
    with the roles of the qubits changed (controls not at the bottom, target in the middle). With ``values`` (w
    then x, the circuit's parameter order) the same circuit with those numbers as angles: the reference for
    ``Statevector`` (``assign_parameters`` on 2^k-term angles takes minutes at k = 7)."""
    n = k + 1 + extra
    x, w = ParameterVector("x", n), ParameterVector("w", 1 << k)
    xs, ws = (list(x), list(w)) if values is None else (list(values[1 << k:]), list(values[:1 << k]))
    qc = QuantumCircuit(n)
    for q in range(n):
        qc.h(q)
        qc.ry(xs[q], q)
    append_ucry(qc, ws, controls=list(range(k)), target=k)
    for q in range(n):
        qc.rx(0.3 * xs[q] + 0.1, q)
    qc.cz(0, n - 1)
    targets = [q for q in range(n) if q != n // 2]
    angles = [xs[i % n] * (1 + i % 3) - 0.2 * i for i in range(1 << k)]
    append_ucry(qc, angles, controls=targets[::-1][:k], target=n // 2)
    return qc, x, w


def _reference(k: int, values: torch.Tensor) -> np.ndarray:
    return np.array([Statevector(_circuit(k, values=v)[0]).data for v in values.numpy()])


def _observables(n: int) -> list[SparsePauliOp]:
    return [SparsePauliOp("Z" * n), SparsePauliOp("I" * (n - 1) + "X"), SparsePauliOp("Y" + "I" * (n - 2) + "Z"),
            SparsePauliOp.from_list([("X" + "I" * (n - 1), 0.5), ("I" * (n - 2) + "ZY", -1.5)])]


def _values(qc: QuantumCircuit, rows: int, seed: int, shared: list[int]) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    vals = rng.uniform(-np.pi, np.pi, (rows, qc.num_parameters))
    vals[:, shared] = vals[0, shared]  # weights: the same in every row
    return torch.tensor(vals, dtype=torch.float64)


def _weight_columns(qc: QuantumCircuit, w: ParameterVector) -> list[int]:
    return [qc.parameters.data.index(p) for p in w]


@pytest.mark.parametrize("k", range(1, 9))
def test_native_step_matches_statevector_and_the_gate_chain(k):
    qc, x, w = _circuit(k)
    n = qc.num_qubits
    native, plain = compile_circuit(qc), compile_circuit(_plain(qc))
    assert _native_steps(native) == 2 and _native_steps(plain) == 0
    shared = _weight_columns(qc, w)
    values = _values(qc, 3, k, shared)
    assert [p.name for p in qc.parameters] == [p.name for p in [*w, *x]]  # the order _circuit(values=...) reads
    assert np.abs(native.statevector(values).numpy() - _reference(k, values)).max() < 1e-12
    obs = _observables(n)
    for layout in ("auto", "rows", "mixed"):
        ours = compile_circuit(qc, layout=layout)
        for share in ((), shared):
            a = values.clone().requires_grad_(True)
            b = values.clone().requires_grad_(True)
            ea = ours.expectations(a, obs, shared=share)
            eb = plain.expectations(b, obs)
            assert torch.allclose(ea, eb, atol=1e-12)
            weights = torch.linspace(-1, 1, ea.numel(), dtype=torch.float64).reshape(ea.shape)
            (ea * weights).sum().backward()
            (eb * weights).sum().backward()
            ga, gb = a.grad.clone(), b.grad.clone()
            if share:  # shared columns: the batch total on the first row
                gb[0, share] = gb[:, share].sum(0)
                gb[1:, share] = 0.0
            assert torch.allclose(ga, gb, atol=1e-11), (layout, bool(share), (ga - gb).abs().max())


def test_native_step_gradient_matches_finite_differences():
    qc, x, w = _circuit(3)
    compiled = compile_circuit(qc)
    obs = _observables(qc.num_qubits)
    values = _values(qc, 2, 7, [])
    v = values.clone().requires_grad_(True)
    compiled.expectations(v, obs).sum().backward()
    eps = 1e-6
    fd = torch.zeros_like(values)
    for j in range(values.shape[1]):
        step = torch.zeros_like(values)
        step[:, j] = eps
        fd[:, j] = (compiled.expectations(values + step, obs).sum(-1)
                    - compiled.expectations(values - step, obs).sum(-1)) / (2 * eps)
    assert torch.allclose(v.grad, fd, atol=1e-7)


def test_complex64_native_step_is_close():
    qc, _, _ = _circuit(4)
    values = _values(qc, 4, 3, [])
    a = compile_circuit(qc, dtype=torch.complex64).statevector(values.float())
    b = compile_circuit(qc).statevector(values)
    assert a.dtype == torch.complex64
    assert (a.to(torch.complex128) - b).abs().max() < 1e-5


def test_qfl_builder_marks_every_encoding():
    spec = QFLSpec(modalities=6, features=2, degree=3)
    qnn = build_qfl(spec)
    spans = ucry_spans(qnn.circuit)
    assert len(spans) == spec.degree
    compiled = compile_circuit(qnn.circuit)
    assert _native_steps(compiled) == spec.degree
    values = _values(qnn.circuit, 3, 1, [])
    assert torch.allclose(compiled.statevector(values), compile_circuit(_plain(qnn.circuit)).statevector(values),
                          atol=1e-12)


def _edit_cases() -> dict[str, callable]:
    def inserted(qc):  # a gate slipped into the middle of the chain
        from qiskit.circuit import CircuitInstruction
        from qiskit.circuit.library import RZGate
        start = qc.metadata[UCRY_METADATA_KEY][0]["start"]
        qc.data.insert(start + 3, CircuitInstruction(RZGate(0.7), (qc.qubits[2],)))

    def swapped_control(qc):  # one CX from another control
        from qiskit.circuit import CircuitInstruction
        from qiskit.circuit.library import CXGate
        span = qc.metadata[UCRY_METADATA_KEY][0]
        i = next(j for j in range(span["start"], span["stop"]) if qc.data[j].operation.name == "cx")
        ctrl = qc.find_bit(qc.data[i].qubits[0]).index
        other = next(c for c in span["controls"] if c != ctrl)
        qc.data[i] = CircuitInstruction(CXGate(), (qc.qubits[other], qc.qubits[span["target"]]))

    def wrong_target(qc):
        qc.metadata[UCRY_METADATA_KEY][0]["target"] = 0

    def shifted(qc):  # the recorded span starts mid-chain: the CX pattern breaks
        qc.metadata[UCRY_METADATA_KEY][0]["start"] += 2

    def shifted_to_the_first_cx(qc):  # still a whole chain (its first RY angle 0) after one RY: exact, native
        qc.metadata[UCRY_METADATA_KEY][0]["start"] += 1

    def garbage(qc):
        qc.metadata[UCRY_METADATA_KEY] = [{"start": "a"}, None, {"stop": 3}]

    def overlapping(qc):  # the same chain recorded twice: run once
        qc.metadata[UCRY_METADATA_KEY].append(dict(qc.metadata[UCRY_METADATA_KEY][0]))

    return {"inserted": inserted, "swapped_control": swapped_control, "wrong_target": wrong_target,
            "shifted": shifted, "shifted_to_the_first_cx": shifted_to_the_first_cx, "garbage": garbage, "overlapping": overlapping}


@pytest.mark.parametrize("case", sorted(_edit_cases()))
def test_edited_chains_fall_back_to_the_general_path(case):
    qc, _, _ = _circuit(3)
    qc.metadata = {UCRY_METADATA_KEY: [dict(s) for s in qc.metadata[UCRY_METADATA_KEY]]}
    _edit_cases()[case](qc)
    compiled = compile_circuit(qc)
    # an inserted gate also shifts the second chain away from its recorded span: both run gate by gate
    expected = {"overlapping": 2, "shifted_to_the_first_cx": 2, "garbage": 0, "inserted": 0}.get(case, 1)
    assert _native_steps(compiled) == expected
    values = _values(qc, 2, 5, [])
    reference = compile_circuit(_plain(qc)).statevector(values)
    assert torch.allclose(compiled.statevector(values), reference, atol=1e-12)
    for row, v in zip(compiled.statevector(values).numpy(), values.numpy()):
        assert np.abs(row - Statevector(qc.assign_parameters(v.tolist())).data).max() < 1e-12


def test_hand_built_chain_without_marker_runs_gate_by_gate():
    k = 3
    theta = ParameterVector("t", 1 << k)
    marked = QuantumCircuit(k + 1)
    append_ucry(marked, list(theta), controls=list(range(k)), target=k)
    by_hand = QuantumCircuit(k + 1)
    for inst in marked.data:  # the same gates, appended one by one
        by_hand.append(inst.operation, inst.qubits)
    assert not by_hand.metadata
    values = _values(marked, 3, 2, [])
    a, b = compile_circuit(marked), compile_circuit(by_hand)
    assert _native_steps(a) == 1 and _native_steps(b) == 0
    assert torch.allclose(a.statevector(values), b.statevector(values), atol=1e-12)


def test_transpiled_and_inverted_circuits_do_not_trust_stale_spans():
    from qiskit import transpile
    qc, _, _ = _circuit(2)
    for other in (transpile(qc, basis_gates=["rz", "sx", "cx"], optimization_level=1, seed_transpiler=1),
                  qc.inverse()):
        values = _values(other, 2, 4, [])
        compiled = compile_circuit(other)
        for row, v in zip(compiled.statevector(values).numpy(), values.numpy()):
            ref = Statevector(other.assign_parameters(v.tolist())).data
            assert np.abs(row - ref).max() < 1e-10


def test_every_layout_of_the_native_step_is_exercised_and_agrees():
    """Per row in layout BN and batch-wide in NB are planned for the test circuit (whose per-row UCRY follows
    per-row gates, so it runs in BN); per row in layout NB (planar over the batch) for the QFL circuit, whose
    other gates are shared, and it equals the gate chain in values and gradients."""
    qc, _, w = _circuit(3)
    shared = _weight_columns(qc, w)
    forms = set()
    for layout in ("auto", "rows", "mixed"):
        compiled = compile_circuit(qc, layout=layout)
        for share in ((), shared):
            forms |= set(compiled._sharing(share).ucr_form.values())
    assert forms == {"bn", "shared"}
    qnn = build_qfl(QFLSpec(modalities=12, features=4, degree=3))
    native, plain = compile_circuit(qnn.circuit), compile_circuit(_plain(qnn.circuit))
    cols = [qnn.circuit.parameters.data.index(p) for p in qnn.weights]
    assert set(native._sharing(cols).ucr_form.values()) == {"nb"}
    values = _values(qnn.circuit, 5, 11, cols)
    a, b = values.clone().requires_grad_(True), values.clone().requires_grad_(True)
    ea, eb = native.expectations(a, qnn.observables, shared=cols), plain.expectations(b, qnn.observables)
    assert torch.allclose(ea, eb, atol=1e-12)
    ea.sum().backward()
    eb.sum().backward()
    gb = b.grad.clone()
    gb[0, cols] = gb[:, cols].sum(0)
    gb[1:, cols] = 0.0
    assert torch.allclose(a.grad, gb, atol=1e-11)
