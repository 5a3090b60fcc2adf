"""Our estimators are Qiskit V2 estimators: the same PUBs in every accepted form give what Qiskit's
``StatevectorEstimator`` gives (shapes exactly; values to 1e-10 for exact estimators, within 4 standard errors for
sampling ones), on logical and ISA circuits; and V2 estimators of Qiskit, Aer and Runtime plug into QuantumLayer."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.primitives import BaseEstimatorV2, StatevectorEstimator
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import SparsePauliOp, Statevector

from qfl_qiskit.circuits import build_qfl
from qfl_qiskit.execution import AerEstimator, ExactEstimator, estimate, layout_observables
from qfl_qiskit.mitigation import MitigatedEstimator
from qfl_qiskit.qnn import QuantumLayer
from qfl_qiskit.specs import MitigationSpec, QFLSpec
from qfl_qiskit.transpile import resolve_backend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

A, B = Parameter("a"), Parameter("b")


def _circuit() -> QuantumCircuit:
    qc = QuantumCircuit(2, name="two")
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 1)
    qc.rz(A - 2 * B, 1)
    return qc


QC = _circuit()
RNG = np.random.default_rng(4)
V1 = np.array([0.3, -0.7])
V4 = RNG.uniform(-np.pi, np.pi, (4, 2))
V23 = RNG.uniform(-np.pi, np.pi, (2, 3, 2))
PLAIN = QuantumCircuit(2)
PLAIN.h(0)
PLAIN.cx(0, 1)

PUB_FORMS = {
    "string-1d": (QC, "ZI", V1),
    "list-elementwise": (QC, ["ZI", "IZ", "XX", "YY"], V4),
    "column-vs-rows": (QC, [["ZI"], ["XY"], ["ZZ"]], V4),
    "sparse-pauli-op": (QC, SparsePauliOp(["ZZ", "XI"], [0.5, -0.25]), V4),
    "dict-observable": (QC, {"ZI": 0.5, "XX": 0.2}, V23),
    "parameter-dict": (QC, [["ZI"], ["IZ"]], {A: V4[:, 0], B: V4[:, 1]}),
    "parameter-name-dict": (QC, "ZZ", {("a", "b"): V23}),
    "bindings-array": (QC, ["ZI", "IZ"], BindingsArray({(A, B): V4[:2]})),
    "broadcast-3d": (QC, np.array([[["ZI"]], [["XX"]]], dtype=object), V23),
    "no-parameters": (PLAIN, ["ZZ", "XX", "ZI"]),
    "precision-element": (QC, "ZI", V4, 0.0),
    "estimator-pub": EstimatorPub.coerce((QC, ["ZI", "IZ"], V4[:2])),
}


def _exact_estimators():
    return {"exact": ExactEstimator(), "exact-complex64": None, "aer": AerEstimator(),
            "mitigated-none": MitigatedEstimator(AerEstimator(), MitigationSpec())}


@pytest.fixture(scope="module")
def reference():
    est = StatevectorEstimator()
    return {name: est.run([pub]).result()[0] for name, pub in PUB_FORMS.items()}


@pytest.mark.parametrize("name", ["exact", "aer", "mitigated-none"])
def test_every_pub_form_matches_statevector_estimator(name, reference):
    est = _exact_estimators()[name]
    assert isinstance(est, BaseEstimatorV2)
    result = est.run(list(PUB_FORMS.values())).result()
    assert result.metadata["version"] == 2 and len(result) == len(PUB_FORMS)
    for (form, _), res in zip(PUB_FORMS.items(), result):
        ref = reference[form]
        assert res.data.evs.shape == ref.data.evs.shape == res.data.shape, form
        assert res.data.stds.shape == ref.data.stds.shape, form
        np.testing.assert_allclose(res.data.evs, ref.data.evs, atol=1e-10, err_msg=form)
        assert not np.any(res.data.stds) and res.metadata["target_precision"] == 0.0


def test_run_precision_keyword_and_sampling_within_four_standard_errors(reference):
    exact = ExactEstimator(seed=1).run([PUB_FORMS["list-elementwise"]], precision=0.01).result()[0]
    ref = reference["list-elementwise"].data.evs
    assert exact.metadata["target_precision"] == 0.01 and np.all(exact.data.stds == 0.01)
    assert 0 < np.abs(exact.data.evs - ref).max() < 0.05  # StatevectorEstimator's convention: N(0, precision^2)
    sampled = AerEstimator(seed=3).run(list(PUB_FORMS.values()), precision=0.02).result()
    for (form, _), res in zip(PUB_FORMS.items(), sampled):
        ref = reference[form].data.evs
        if form == "precision-element":  # its own precision 0 wins over run's: exact values
            np.testing.assert_allclose(res.data.evs, ref, atol=1e-10)
            continue
        assert res.data.evs.shape == ref.shape
        assert np.all(np.abs(res.data.evs - ref) <= 4 * res.data.stds + 1e-9), form
        assert np.any(res.data.stds > 0.005)


def test_the_issue_reproducer_layout_is_respected():
    qc = QuantumCircuit(2)
    qc.x(0)
    isa = transpile(qc, basis_gates=["x", "cx"], coupling_map=[[0, 1], [1, 0]], initial_layout=[1, 0])
    obs = [SparsePauliOp("IZ"), SparsePauliOp("ZI")]
    want = StatevectorEstimator().run([(isa, obs)]).result()[0].data.evs
    logical = np.array([Statevector(qc).expectation_value(op).real
                        for op in layout_observables(qc, [SparsePauliOp("IZ"), SparsePauliOp("ZI")])])
    np.testing.assert_allclose(want, [1.0, -1.0])  # physical qubit 1 holds the flipped logical qubit 0
    for est in (ExactEstimator(), AerEstimator(), MitigatedEstimator(AerEstimator(), MitigationSpec())):
        np.testing.assert_allclose(est.run([(isa, obs)]).result()[0].data.evs, want, atol=1e-12)
    # laid-out observables on the ISA circuit = logical observables on the logical circuit
    laid = layout_observables(isa, [SparsePauliOp("IZ"), SparsePauliOp("ZI")])
    np.testing.assert_allclose(ExactEstimator().run([(isa, list(laid))]).result()[0].data.evs, logical, atol=1e-12)


@pytest.mark.parametrize("backend", ["fake_manila", "fake_kolkata", "fake_sherbrooke", "fake_fez"])
def test_isa_circuits_with_non_trivial_layouts_equal_statevector(backend):
    qnn = build_qfl(QFLSpec(modalities=2, features=2, degree=1, entanglement="full", observables=4))
    target = resolve_backend(backend)
    n = qnn.circuit.num_qubits
    start = {"fake_manila": [4, 3, 2, 1], "fake_kolkata": [13, 12, 10, 7], "fake_sherbrooke": [61, 60, 53, 41],
             "fake_fez": [100, 99, 98, 97]}[backend]
    isa = transpile(qnn.circuit, target, initial_layout=start[:n], optimization_level=1, seed_transpiler=1)
    assert isa.num_qubits == target.num_qubits
    assert list(isa.layout.final_index_layout()) != list(range(n))
    rng = np.random.default_rng(2)
    values = rng.uniform(-np.pi, np.pi, (3, qnn.circuit.num_parameters))
    want = np.array([[Statevector(qnn.circuit.assign_parameters(v)).expectation_value(op).real
                      for op in qnn.observables] for v in values])
    order = [list(qnn.circuit.parameters).index(p) for p in isa.parameters]
    laid = layout_observables(isa, qnn.observables)
    obs = np.empty((len(laid), 1), dtype=object)  # (K, 1) against bindings (B,): evs (K, B)
    for i, op in enumerate(laid):  # item by item: numpy would turn the operators into matrices
        obs[i, 0] = op
    ests = [ExactEstimator(), AerEstimator()]
    if isa.num_qubits <= 7:
        ests.append(StatevectorEstimator())
    for est in ests:
        evs = est.run([(isa, obs, values[:, order])]).result()[0].data.evs  # (K, B)
        np.testing.assert_allclose(evs.T, want, atol=1e-9, err_msg=type(est).__name__)


def _grad_reference(qnn, x):
    layer = QuantumLayer(qnn, weight_seed=5)
    xs = torch.tensor(x, requires_grad=True)
    out = layer(xs)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return out.detach(), layer.weights.grad.clone(), xs.grad.clone()


def _grads(layer, x):
    xs = torch.tensor(x, requires_grad=True)
    out = layer(xs)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return out.detach(), layer.weights.grad.clone(), xs.grad.clone()


@pytest.fixture(scope="module")
def small_qnn():
    return build_qfl(QFLSpec(modalities=2, features=1, degree=1, observables=3, observable_seed=2))


@pytest.mark.parametrize("which", ["statevector", "aer-v2", "exact", "mitigated-aer"])
def test_quantum_layer_gradients_through_v2_estimators_equal_autograd(which, small_qnn):
    from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2

    est = {"statevector": StatevectorEstimator(), "aer-v2": AerEstimatorV2(options={"default_precision": 0.0}),
           "exact": ExactEstimator(), "mitigated-aer": MitigatedEstimator(AerEstimator(), MitigationSpec())}[which]
    x = np.random.default_rng(0).uniform(-1, 1, (3, small_qnn.num_inputs))
    out, gw, gx = _grad_reference(small_qnn, x)
    layer = QuantumLayer(small_qnn, estimator=est, gradient="param_shift", weight_seed=5)
    o, w, g = _grads(layer, x)
    assert layer.calls == 1
    np.testing.assert_allclose(o, out, atol=1e-10)
    np.testing.assert_allclose(w, gw, atol=1e-10)
    np.testing.assert_allclose(g, gx, atol=1e-10)


def test_quantum_layer_through_runtime_local_mode_is_within_its_shot_noise(small_qnn):
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.executor_estimator import Estimator

    sim = AerSimulator()
    isa = generate_preset_pass_manager(optimization_level=1, backend=sim, seed_transpiler=0).run(small_qnn.circuit)
    est = Estimator(mode=sim)
    est.options.resilience_level = 0  # no twirling: plain sampling
    est.options.simulator.seed_simulator = 11
    x = np.random.default_rng(0).uniform(-1, 1, (2, small_qnn.num_inputs))
    out, gw, _ = _grad_reference(small_qnn, x)
    precision = 0.004
    layer = QuantumLayer(small_qnn, estimator=est, gradient="param_shift", weight_seed=5, circuit=isa,
                         precision=precision)
    o, w, _ = _grads(layer, x)
    plan = layer._plan_for()
    weights = layer._weight_columns
    # d/dw_j sums (e+ - e-)/2 * A[g, j] * c_k over bindings b, gates g, observables k (c_k: the linspace weights)
    c2 = float((torch.linspace(-1, 1, 3, dtype=torch.float64) ** 2).sum())
    std_w = precision * np.sqrt(x.shape[0] * c2 * 0.5 * (plan.matrix[:, weights] ** 2).sum(axis=0))
    perm = layer._perm.numpy()[weights] - small_qnn.num_inputs
    assert np.all(np.abs(o - out).numpy() < 5 * precision)
    assert np.all(np.abs((w - gw).numpy()[perm]) < 5 * std_w)


def test_estimator_qnn_with_torch_connector_on_our_estimator_equals_quantum_layer(small_qnn):
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    x = np.random.default_rng(0).uniform(-1, 1, (3, small_qnn.num_inputs))
    out, gw, gx = _grad_reference(small_qnn, x)
    layer = QuantumLayer(small_qnn, weight_seed=5)
    qnn = EstimatorQNN(circuit=small_qnn.circuit, observables=list(small_qnn.observables),
                       input_params=list(small_qnn.inputs), weight_params=list(small_qnn.weights),
                       estimator=ExactEstimator(), default_precision=0.0, input_gradients=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TorchConnector(qnn, initial_weights=layer.weights.detach().numpy())
        o, w, g = _grads_connector(model, x)
    # TorchConnector hands values through float32 tensors: agreement to its precision, not to 1e-15
    np.testing.assert_allclose(o, out.numpy(), atol=1e-6)
    np.testing.assert_allclose(w, gw.numpy(), atol=1e-5)
    np.testing.assert_allclose(g, gx.numpy(), atol=1e-5)


def _grads_connector(model, x):
    xs = torch.tensor(x, requires_grad=True)
    out = model(xs)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return out.detach().double().numpy(), model.weight.grad.double().numpy(), xs.grad.double().numpy()


def test_torch_save_and_load_of_a_whole_model(small_qnn):
    model = torch.nn.Sequential(QuantumLayer(small_qnn, weight_seed=3), torch.nn.Linear(3, 2).double())
    x = torch.tensor(np.random.default_rng(1).uniform(-1, 1, (4, small_qnn.num_inputs)))
    before = model(x)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    torch.testing.assert_close(again(x), before, rtol=0, atol=0)
    again[0].weights.data += 0.1
    assert not torch.equal(again(x), before)  # a real copy with its own weights


def test_mitigation_spec_is_importable_where_users_look():
    from qfl_qiskit.mitigation import MitigationSpec as FromMitigation
    from qfl_qiskit.specs import MitigationSpec as FromSpecs

    assert FromMitigation is FromSpecs is MitigationSpec


def test_runtime_adapter_in_local_mode_matches_within_four_standard_errors(reference):
    from qiskit_aer import AerSimulator

    from qfl_qiskit.execution import RuntimeEstimator

    # a noiseless simulator as Runtime's local-testing mode, resilience level 0: plain sampling, so the values are
    # those of StatevectorEstimator up to shot noise (a fake device would add its calibration noise)
    est = RuntimeEstimator(AerSimulator(), precision=0.02, seed=3, options={"resilience_level": 0})
    assert isinstance(est, BaseEstimatorV2)
    result = est.run(list(PUB_FORMS.values())).result()
    assert len(est.last_job_ids) == 1  # every PUB of the call in one job
    for (form, _), res in zip(PUB_FORMS.items(), result):
        ref = reference[form].data.evs
        assert res.data.evs.shape == ref.shape, form
        assert np.all(np.abs(res.data.evs - ref) <= 4 * res.data.stds + 1e-9), form
