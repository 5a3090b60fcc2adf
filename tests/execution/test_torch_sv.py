"""The batched torch statevector simulator against Qiskit's ``Statevector`` (states, expectation values, gradients,
batch shapes, errors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter, ParameterVector
from qiskit.circuit.library import real_amplitudes
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from benchmarks.bench_gradients import reference
from qfl_qiskit.circuits import build_mma, build_qfl
from qfl_qiskit.errors import CircuitError
from qfl_qiskit.execution.torch_sv import (
    CompiledCircuit,
    UnsupportedGateError,
    compile_circuit,
    pauli_expectations,
)
from qfl_qiskit.specs import MMASpec, QFLSpec

ONE_Q_FIXED = ["h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "sxdg", "id"]
ONE_Q_ANGLE = {"rx": 1, "ry": 1, "rz": 1, "p": 1, "u": 3}
TWO_Q_FIXED = ["cx", "cy", "cz", "swap", "ecr", "ch"]
TWO_Q_ANGLE = ["rzz", "rxx", "ryy", "rzx", "crx", "cry", "crz", "cp"]


def _bound(circuit: QuantumCircuit, values: np.ndarray) -> QuantumCircuit:
    return circuit.assign_parameters(np.asarray(values).tolist()) if circuit.num_parameters else circuit


def _reference_states(circuit: QuantumCircuit, values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1, values.shape[-1])
    return np.array([Statevector(_bound(circuit, v)).data for v in flat]).reshape(*values.shape[:-1], -1)


def _reference_evs(circuit: QuantumCircuit, observables, values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1, values.shape[-1])
    out = [[Statevector(_bound(circuit, v)).expectation_value(op).real for op in observables] for v in flat]
    return np.array(out).reshape(*values.shape[:-1], len(observables))


# -- agreement with Statevector ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(10))
def test_random_circuits_match_statevector(seed):
    qc = random_circuit(4 + seed % 2, 6, max_operands=3, seed=seed)  # 3-qubit gates get unrolled by definition
    ref = Statevector(qc).data
    state = compile_circuit(qc).statevector(torch.zeros(0, dtype=torch.float64))
    assert state.dtype == torch.complex128
    assert np.abs(state.numpy() - ref).max() < 1e-10
    state64 = compile_circuit(qc, dtype=torch.complex64).statevector(torch.zeros(0))
    assert state64.dtype == torch.complex64
    assert np.abs(state64.numpy() - ref).max() < 1e-5


@st.composite
def linear_angle_circuits(draw):
    """Random circuits over every supported gate, angles random affine combinations of several parameters."""
    n = draw(st.integers(1, 4))
    p = draw(st.integers(1, 4))
    theta = ParameterVector("t", p)
    coeff = st.sampled_from([-2.0, -1.0, -0.5, 0.25, 1.0, 3.0])

    def angle():
        used = draw(st.lists(st.integers(0, p - 1), min_size=0, max_size=3, unique=True))
        return sum((draw(coeff) * theta[i] for i in used), draw(st.floats(-3, 3)))

    qc = QuantumCircuit(n)
    for _ in range(draw(st.integers(1, 16))):
        width = draw(st.sampled_from([w for w in (1, 2, 3) if w <= n]))
        qubits = draw(st.permutations(range(n)))[:width]
        if width == 3:
            qc.ccx(*qubits)
            continue
        names = ONE_Q_FIXED + list(ONE_Q_ANGLE) if width == 1 else TWO_Q_FIXED + TWO_Q_ANGLE
        name = draw(st.sampled_from(names))
        nangles = ONE_Q_ANGLE.get(name, 1 if name in TWO_Q_ANGLE else 0)
        getattr(qc, name)(*[angle() for _ in range(nangles)], *qubits)
    if draw(st.booleans()):
        qc.global_phase = angle()
    for t in theta:  # every parameter in the circuit
        qc.ry(t, 0)
    values = np.array(draw(st.lists(st.floats(-4, 4), min_size=2 * p, max_size=2 * p))).reshape(2, p)
    return qc, values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linear_angle_circuits())
def test_property_linear_combination_angles_match_statevector(case):
    qc, values = case
    compiled = compile_circuit(qc)
    assert compiled.num_parameters == len(qc.parameters)
    state = compiled.statevector(torch.tensor(values)).numpy()
    assert np.abs(state - _reference_states(qc, values)).max() < 1e-10
    ops = [SparsePauliOp("Z" * qc.num_qubits), SparsePauliOp.from_list([("Y" + "X" * (qc.num_qubits - 1), 0.7)])]
    evs = compiled.expectations(torch.tensor(values), ops).numpy()
    assert np.abs(evs - _reference_evs(qc, ops, values)).max() < 1e-10


@pytest.mark.parametrize(
    "qnn",
    [build_qfl(QFLSpec(modalities=2, features=2, degree=2)), build_mma(MMASpec(), (True, False, True))],
    ids=["qfl", "mma-partial"],
)
def test_builder_circuits_match_statevector(qnn):
    rng = np.random.default_rng(0)
    values = qnn.parameter_values(rng.uniform(-np.pi, np.pi, (3, qnn.num_inputs)),
                                  rng.uniform(-np.pi, np.pi, qnn.num_weights))
    compiled = compile_circuit(qnn.circuit)
    state = compiled.statevector(torch.tensor(values)).numpy()
    assert np.abs(state - _reference_states(qnn.circuit, values)).max() < 1e-10
    evs = compiled.expectations(torch.tensor(values), qnn.observables).numpy()
    assert evs.shape == (3, len(qnn.observables))
    assert np.abs(evs - _reference_evs(qnn.circuit, qnn.observables, values)).max() < 1e-10
    assert np.ptp(evs, axis=0).max() > 1e-3  # the inputs matter: not a constant output


def test_library_real_amplitudes_and_parameter_order():
    x = ParameterVector("x", 4)
    qc = QuantumCircuit(4)
    for i in range(4):
        qc.ry(x[i], i)
    qc.compose(real_amplitudes(4, reps=2), inplace=True)
    compiled = compile_circuit(qc)
    assert (compiled.num_qubits, compiled.num_parameters) == (4, 16)
    values = np.random.default_rng(5).uniform(-2, 2, (2, 16))
    assert np.abs(compiled.statevector(torch.tensor(values)).numpy() - _reference_states(qc, values)).max() < 1e-10
    # insertion order b, a; Qiskit sorts parameters by name, and so must the values
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(1)
    qc.rx(b, 0)
    qc.rz(a, 0)
    state = compile_circuit(qc).statevector(torch.tensor([0.3, 1.2])).numpy()
    assert np.allclose(state, Statevector(qc.assign_parameters({a: 0.3, b: 1.2})).data, atol=1e-12)
    assert not np.allclose(state, Statevector(qc.assign_parameters({a: 1.2, b: 0.3})).data, atol=1e-3)


def test_parameterized_global_phase_is_in_the_state_not_in_expectations():
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2, global_phase=2 * a - b + 0.5)
    qc.h(0)
    qc.rx(b, 1)
    compiled = compile_circuit(qc)
    values = np.array([[0.7, 1.1], [-0.2, 1.1]])  # same b, different a: only the global phase differs
    state = compiled.statevector(torch.tensor(values)).numpy()
    assert np.abs(state - _reference_states(qc, values)).max() < 1e-12
    assert not np.allclose(state[0], state[1])
    evs = compiled.expectations(torch.tensor(values), [SparsePauliOp("ZX")]).numpy()
    assert np.allclose(evs[0], evs[1]) and abs(evs[0, 0] - np.cos(1.1)) < 1e-12  # <X0 Z1> = 1 * cos(b)


# -- observables ---------------------------------------------------------------------------------------------------
def test_y_phase_convention_analytically():
    t = Parameter("t")
    qc = QuantumCircuit(1)
    qc.rx(t, 0)
    evs = compile_circuit(qc).expectations(torch.tensor([0.4]), [SparsePauliOp("Y"), SparsePauliOp("Z")])
    assert np.allclose(evs.numpy(), [-np.sin(0.4), np.cos(0.4)], atol=1e-14)  # RX(t)|0>: <Y> = -sin t


@pytest.mark.parametrize("seed", [11, 12])
def test_multi_term_observables_with_y_and_complex_coefficients(seed):
    qc = random_circuit(4, 5, seed=seed)
    ops = [SparsePauliOp.from_list([("XYZI", 0.3), ("YYIX", 0.5 - 1.2j), ("ZZZZ", 2.0)]),
           SparsePauliOp("IYIY"), SparsePauliOp.from_list([("XIII", 1.0), ("IIIX", -1.0), ("YIIZ", 0.25j)]),
           SparsePauliOp.from_list([("IIII", 0.5), ("ZXYZ", -0.8 + 0.1j)])]
    ref = [Statevector(qc).expectation_value(op).real for op in ops]
    compiled = compile_circuit(qc)
    evs = compiled.expectations(torch.zeros(0, dtype=torch.float64), ops).numpy()
    assert evs.shape == (4,) and np.abs(evs - ref).max() < 1e-10
    state = torch.tensor(Statevector(qc).data)
    assert np.abs(pauli_expectations(state, ops, 4).numpy() - ref).max() < 1e-12  # one state (2^n,)
    batched = pauli_expectations(torch.stack([state, state.conj()]), ops, 4)
    assert batched.shape == (2, 4) and np.abs(batched[0].numpy() - ref).max() < 1e-12


def test_real_path_expectations_with_y_terms():
    x = ParameterVector("x", 3)
    qc = QuantumCircuit(3)
    for i in range(3):
        qc.ry(x[i], i)
    qc.cx(0, 1)
    qc.cz(1, 2)
    compiled = compile_circuit(qc)
    ops = [SparsePauliOp.from_list([("YYI", 1.0), ("XYZ", 0.3j), ("IIZ", -0.5 + 2j)]), SparsePauliOp("YIY")]
    values = np.random.default_rng(1).uniform(-2, 2, (4, 3))
    evs = compiled.expectations(torch.tensor(values), ops).numpy()
    assert np.abs(evs - _reference_evs(qc, ops, values)).max() < 1e-12
    assert np.abs(evs).max() > 1e-2


# -- gradients, batches, dtypes ------------------------------------------------------------------------------------
def _finite_differences(compiled: CompiledCircuit, observables, v0: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    def f(x: np.ndarray) -> float:
        return compiled.expectations(torch.tensor(x), observables).sum().item()

    out = []
    for i in range(len(v0)):
        step = np.zeros_like(v0)
        step[i] = eps
        out.append((f(v0 + step) - f(v0 - step)) / (2 * eps))
    return np.array(out)


def test_autograd_matches_finite_differences_on_qfl():
    qnn = build_qfl(QFLSpec(modalities=2, features=2, degree=2))
    compiled = compile_circuit(qnn.circuit)
    rng = np.random.default_rng(2)
    v0 = qnn.parameter_values(rng.uniform(-2, 2, qnn.num_inputs), rng.uniform(-2, 2, qnn.num_weights))
    v = torch.tensor(v0, requires_grad=True)
    compiled.expectations(v, qnn.observables).sum().backward()
    fd = _finite_differences(compiled, qnn.observables, v0)
    assert np.abs(v.grad.numpy() - fd).max() < 1e-6
    assert np.abs(fd).max() > 1e-3


def test_autograd_matches_finite_differences_on_real_gate_circuit():
    x = ParameterVector("x", 4)
    qc = QuantumCircuit(4)
    for i in range(4):
        qc.ry(x[i], i)
    qc.compose(real_amplitudes(4, reps=2), inplace=True)
    compiled = compile_circuit(qc)
    obs = [SparsePauliOp("IIIZ"), SparsePauliOp("XXYY")]
    v0 = np.random.default_rng(4).uniform(-2, 2, 16)
    v = torch.tensor(np.stack([v0, -v0]), requires_grad=True)
    compiled.expectations(v, obs)[0].sum().backward()
    fd = _finite_differences(compiled, obs, v0)
    assert np.abs(v.grad[0].numpy() - fd).max() < 1e-6 and np.abs(fd).max() > 1e-3
    assert np.all(v.grad[1].numpy() == 0)  # batch rows are independent


def test_batch_shapes_agree():
    qnn = build_mma(MMASpec())
    compiled = compile_circuit(qnn.circuit)
    rng = np.random.default_rng(3)
    values = qnn.parameter_values(rng.uniform(-1, 1, (2, 3, qnn.num_inputs)), rng.uniform(-1, 1, qnn.num_weights))
    k, dim = len(qnn.observables), 2**qnn.circuit.num_qubits
    full = compiled.expectations(torch.tensor(values), qnn.observables)
    flat = compiled.expectations(torch.tensor(values.reshape(6, -1)), qnn.observables)
    single = compiled.expectations(torch.tensor(values[1, 2]), qnn.observables)
    assert full.shape == (2, 3, k) and flat.shape == (6, k) and single.shape == (k,)
    assert torch.allclose(full.reshape(6, k), flat, atol=1e-13) and torch.allclose(full[1, 2], single, atol=1e-13)
    assert not torch.allclose(full[0, 0], full[1, 2])
    states = compiled.statevector(torch.tensor(values))
    assert states.shape == (2, 3, dim)
    assert torch.allclose(states[1, 2], compiled.statevector(torch.tensor(values[1, 2])), atol=1e-13)


def _shared_vs_plain(compiled: CompiledCircuit, observables, inputs: torch.Tensor, weights: torch.Tensor,
                     shared: list[int], layouts: tuple[CompiledCircuit, ...] = ()):
    """Values and gradients (weights, inputs) with the shared-columns fast path and without it (and with the fast
    path of the circuits compiled with other layouts, appended)."""
    out = []
    for compiled, cols in [(compiled, shared), (compiled, []), *((c, shared) for c in layouts)]:
        w = weights.clone().requires_grad_(True)
        x = inputs.clone().requires_grad_(True)
        values = torch.empty(x.shape[0], compiled.num_parameters, dtype=torch.float64)
        per_row = [c for c in range(compiled.num_parameters) if c not in shared]
        values = torch.zeros_like(values).index_copy(1, torch.tensor(per_row, dtype=torch.long), x)
        values = values.index_copy(1, torch.tensor(shared, dtype=torch.long), w.expand(x.shape[0], -1))
        evs = compiled.expectations(values, observables, shared=cols)
        (evs * torch.linspace(0.5, 1.5, evs.numel(), dtype=torch.float64).reshape(evs.shape)).sum().backward()
        out.append((evs.detach().numpy(), w.grad.numpy(), x.grad.numpy()))
    return out


@pytest.mark.parametrize(
    "qnn",
    [build_qfl(QFLSpec(modalities=2, features=2, degree=2)), build_mma(MMASpec(), (True, False, True)),
     reference(7, 3)],
    ids=["qfl", "mma-partial", "real-amplitudes"],
)
def test_shared_columns_give_the_same_values_and_gradients_in_every_layout(qnn):
    compiled = compile_circuit(qnn.circuit)
    weights = {p for p in qnn.weights}
    shared = [i for i, p in enumerate(compiled.parameters) if p in weights]
    rng = np.random.default_rng(6)
    x = torch.tensor(rng.uniform(-2, 2, (5, compiled.num_parameters - len(shared))))
    w = torch.tensor(rng.uniform(-2, 2, len(shared)))
    others = tuple(compile_circuit(qnn.circuit, layout=layout) for layout in ("rows", "mixed"))
    fast, (plain, plain_gw, plain_gx), *rest = _shared_vs_plain(compiled, qnn.observables, x, w, shared, others)
    assert np.ptp(plain, axis=0).max() > 1e-3 and np.abs(plain_gw).max() > 1e-3 and np.abs(plain_gx).max() > 1e-3
    for evs, gw, gx in (fast, *rest):  # auto, rows, mixed
        assert np.abs(evs - plain).max() < 1e-12
        assert np.abs(gw - plain_gw).max() < 1e-12 and np.abs(gx - plain_gx).max() < 1e-12
    steps = {layout: c._sharing(shared).program.steps for layout, c in zip(("rows", "mixed"), others)}
    assert not any(s[0] == "layout" for s in steps["rows"]) and any(s[0] == "layout" for s in steps["mixed"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linear_angle_circuits(), st.data())
def test_property_shared_columns_match_per_row_evaluation(case, data):
    qc, values = case
    compiled = compile_circuit(qc)
    p = compiled.num_parameters
    shared = sorted(data.draw(st.sets(st.integers(0, p - 1), max_size=p)))
    x = torch.tensor(values[:, [c for c in range(p) if c not in shared]])
    w = torch.tensor(values[0, shared])
    ops = [SparsePauliOp("Z" * qc.num_qubits), SparsePauliOp.from_list([("Y" + "X" * (qc.num_qubits - 1), 0.7)])]
    others = tuple(compile_circuit(qc, layout=layout) for layout in ("rows", "mixed"))
    (plain, plain_gw, plain_gx), *rest = _shared_vs_plain(compiled, ops, x, w, shared, others)[1:]
    for evs, gw, gx in [_shared_vs_plain(compiled, ops, x, w, shared)[0], *rest]:  # auto, rows, mixed
        assert np.abs(evs - plain).max() < 1e-10
        assert np.abs(gw - plain_gw).max(initial=0) < 1e-10 and np.abs(gx - plain_gx).max(initial=0) < 1e-10


def test_shared_columns_must_be_equal_across_rows_and_in_range():
    qnn = build_qfl(QFLSpec(modalities=2, features=2))
    compiled = compile_circuit(qnn.circuit)
    p = compiled.num_parameters
    values = torch.zeros(3, p, dtype=torch.float64)
    values[2, 1] = 0.5
    with pytest.raises(ValueError, match="columns declared shared differ between rows"):
        compiled.expectations(values, qnn.observables, shared=[0, 1])
    with pytest.raises(ValueError, match=f"outside 0..{p - 1}"):
        compiled.expectations(values, qnn.observables, shared=[p])
    assert compiled.expectations(values, qnn.observables, shared=[0]).shape == (3, len(qnn.observables))


def test_retained_graphs_keep_their_own_workspaces():
    # the simulator reuses state buffers between runs; a graph still alive (retain_graph) must not see them change
    qnn = build_qfl(QFLSpec(modalities=2, features=2, degree=2))
    compiled = compile_circuit(qnn.circuit)
    rng = np.random.default_rng(8)
    a, b = (torch.tensor(rng.uniform(-2, 2, (4, compiled.num_parameters)), requires_grad=True) for _ in range(2))
    out_a = compiled.expectations(a, qnn.observables).sum()
    out_b = compiled.expectations(b, qnn.observables).sum()  # a second run while a's graph is alive
    out_a.backward(retain_graph=True)
    first = a.grad.clone()
    for _ in range(3):  # more runs and backward passes in between
        c = torch.tensor(rng.uniform(-2, 2, (4, compiled.num_parameters)), requires_grad=True)
        compiled.expectations(c, qnn.observables).sum().backward()
    a.grad = None
    out_a.backward()
    out_b.backward()
    assert torch.equal(a.grad, first) and np.abs(first.numpy()).max() > 1e-3
    b_fresh = b.detach().clone().requires_grad_(True)
    compiled.expectations(b_fresh, qnn.observables).sum().backward()
    assert torch.equal(b.grad, b_fresh.grad)


def test_buffer_pool_reuses_only_returned_buffers():
    from qfl_qiskit.execution.sv_program import BufferPool, Lease

    pool = BufferPool(limit_bytes=1 << 10, per_shape=1)
    x = pool.take((2, 8), torch.float64)
    y = pool.take((2, 8), torch.float64)
    assert x.data_ptr() != y.data_ptr()  # x is still out
    pool.give(x)
    assert pool.take((2, 8), torch.float64) is x
    lease = Lease(pool, y)
    assert pool.take((2, 8), torch.float64) is not y
    del lease
    assert pool.take((2, 8), torch.float64) is y
    big = pool.take((2, 1024), torch.float64)  # 16 KiB > limit: not kept
    pool.give(big)
    assert pool.take((2, 1024), torch.float64) is not big


def test_complex64_is_close_and_float32():
    qnn = build_qfl(QFLSpec(modalities=2, features=2))
    values = torch.tensor(qnn.parameter_values(np.full(qnn.num_inputs, 0.3), np.linspace(-1, 1, qnn.num_weights)))
    a = compile_circuit(qnn.circuit).expectations(values, qnn.observables)
    b = compile_circuit(qnn.circuit, dtype=torch.complex64).expectations(values, qnn.observables)
    assert a.dtype == torch.float64 and b.dtype == torch.float32
    assert np.allclose(a.numpy(), b.numpy(), atol=1e-5) and not np.array_equal(a.numpy(), b.numpy())


# -- errors --------------------------------------------------------------------------------------------------------
def test_unsupported_operations_are_named():
    assert issubclass(UnsupportedGateError, CircuitError) and issubclass(UnsupportedGateError, ValueError)
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with pytest.raises(UnsupportedGateError, match="'measure'"):
        compile_circuit(qc)
    opaque = QuantumCircuit(2)
    opaque.h(1)
    opaque.append(Gate("foo", 1, []), [0])
    with pytest.raises(UnsupportedGateError, match="cannot simulate gate 'foo'.*supported: .*rzz"):
        compile_circuit(opaque)
    reset = QuantumCircuit(1)
    reset.reset(0)
    with pytest.raises(UnsupportedGateError, match="'reset'"):
        compile_circuit(reset)
    a = Parameter("a")
    nonlinear = QuantumCircuit(1)
    nonlinear.rx(a * a, 0)
    # a non-affine angle is supported (a derived column): <Z> after rx(a^2) is cos(a^2)
    value = compile_circuit(nonlinear).expectations(torch.tensor([[0.7]], dtype=torch.float64),
                                                    [SparsePauliOp("Z")])
    assert abs(float(value) - np.cos(0.49)) < 1e-12


def test_bad_values_and_observables():
    qnn = build_qfl(QFLSpec(modalities=2, features=2))
    compiled = compile_circuit(qnn.circuit)
    p = qnn.circuit.num_parameters
    with pytest.raises(ValueError, match=f"last dimension \\({p + 1},\\).*{p} parameters"):
        compiled.expectations(torch.zeros(p + 1), qnn.observables)
    with pytest.raises(ValueError, match=f"{p} parameters"):
        compiled.statevector(torch.zeros(3, p - 1))
    for bad in (np.nan, np.inf):
        values = torch.zeros(2, p, dtype=torch.float64)
        values[1, 0] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            compiled.expectations(values, qnn.observables)
    with pytest.raises(ValueError, match="observable on 3 qubits for a 4-qubit circuit"):
        compiled.expectations(torch.zeros(p), [SparsePauliOp("ZZZ")])
    with pytest.raises(ValueError, match="expected 2\\^3"):
        pauli_expectations(torch.zeros(4, dtype=torch.complex128), [SparsePauliOp("ZZZ")], 3)


def test_small_states_run_single_threaded_and_restore_the_setting():
    from qfl_qiskit.execution.sv_program import PARALLEL_FROM, _threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with _threads(PARALLEL_FROM // 2):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with _threads(PARALLEL_FROM):
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), _threads(8):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2  # restored after an error too
    finally:
        torch.set_num_threads(before)


def test_angles_with_unusual_parameter_names_are_read_exactly():
    """Affine angles are read from their text (fast path) and checked at a random point; names that make the text
    ambiguous ("a + b", "2", "x*y", "-c") must still give the exact angle, by the symbolic fall-back."""
    names = ["a + b", "2", "x*y", "-c", "θ[1]"]
    ps = [Parameter(n) for n in names]
    qc = QuantumCircuit(2)
    qc.h([0, 1])
    qc.ry(ps[0] + 2 * ps[1] - 0.5, 0)
    qc.rx(3 * ps[2] - ps[3], 1)
    qc.rz(ps[1] * ps[4] + 0.25, 0)  # not affine: a derived column
    qc.cx(0, 1)
    qc.ry(-ps[4] + 1e-7 * ps[0] + 1e20 * ps[1] * 1e-20, 1)
    values = np.random.default_rng(5).uniform(-2, 2, (3, len(ps)))
    ours = compile_circuit(qc).statevector(torch.tensor(values)).numpy()
    for row, v in zip(ours, values):
        ref = Statevector(qc.assign_parameters(dict(zip(qc.parameters, v)))).data
        assert np.abs(row - ref).max() < 1e-10
