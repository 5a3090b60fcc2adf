from __future__ import annotations

from qfl_qiskit.execution import estimate

import warnings

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

from qfl_qiskit.circuits import build_mma, build_qfl
from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution import aer as aer_module
from qfl_qiskit.execution.aer import AerEstimator
from qfl_qiskit.execution.base import QflEstimator, layout_observables
from qfl_qiskit.noise import snapshot_backend
from qfl_qiskit.specs import BackendNoiseSpec, MMASpec, ParametricNoiseSpec, QFLSpec
from qfl_qiskit.transpile import resolve_backend, transpile_sweep

FEZ = BackendNoiseSpec(backend="fake_fez")


def exact(circuit, observables, values):
    """Reference expectation values with qiskit's Statevector, shape (..., K)."""
    flat = values.reshape(-1, values.shape[-1])
    out = [[Statevector(circuit.assign_parameters(v)).expectation_value(op).real for op in observables] for v in flat]
    return np.asarray(out).reshape(values.shape[:-1] + (len(observables),))


@pytest.fixture(scope="module")
def qfl():
    return build_qfl(QFLSpec(modalities=2, features=2, observables=4))


@pytest.fixture(scope="module")
def qfl_values(qfl):
    return np.random.default_rng(7).uniform(-np.pi, np.pi, (6, qfl.circuit.num_parameters))


@pytest.fixture(scope="module")
def chain():
    """A 3-qubit circuit with large <Z> values, transpiled for the 156-qubit fake_fez."""
    theta = ParameterVector("t", 3)
    qc = QuantumCircuit(3, name="chain")
    for q in range(3):
        qc.ry(theta[q], q)
    qc.cx(0, 1)
    qc.cx(1, 2)
    isa, _ = transpile_sweep(qc, resolve_backend("fake_fez"), seeds=1)
    ops = [SparsePauliOp(p) for p in ("IIZ", "IZI", "ZII", "ZZI")]
    values = np.random.default_rng(3).uniform(-0.6, 0.6, (8, 3))
    return qc, isa, ops, values


def laid(isa, ops):
    """Logical observables laid out for an ISA circuit (Qiskit's convention)."""
    return layout_observables(isa, ops)


def test_exact_matches_statevector_qfl_and_mma(qfl, qfl_values):
    est = AerEstimator()
    assert isinstance(est, QflEstimator) and est.name == "aer"
    values_3d = qfl_values.reshape(2, 3, -1)
    mma = build_mma(MMASpec(modalities=3, qubits_per_modality=2), (True, False, True))
    mma_values = np.random.default_rng(1).uniform(-1, 1, (4, mma.circuit.num_parameters))
    r_qfl, r_qfl3, r_mma = estimate(est, [(qfl.circuit, qfl.observables, qfl_values),
                                    (qfl.circuit, qfl.observables, values_3d),
                                    (mma.circuit, mma.observables, mma_values)])
    assert r_qfl.evs.shape == (6, 4) and r_qfl3.evs.shape == (2, 3, 4) and r_mma.evs.shape == (4, 6)
    assert np.abs(r_qfl.evs - exact(qfl.circuit, qfl.observables, qfl_values)).max() < 1e-10
    assert np.abs(r_qfl3.evs - exact(qfl.circuit, qfl.observables, values_3d)).max() < 1e-10
    assert np.abs(r_mma.evs - exact(mma.circuit, mma.observables, mma_values)).max() < 1e-10
    assert not np.any(r_qfl.stds) and r_qfl.metadata["method"] == "statevector"


def test_all_pubs_go_in_one_primitive_call(qfl, qfl_values, monkeypatch):
    from qiskit_aer.primitives import EstimatorV2

    calls = []
    original = EstimatorV2.run
    def counting(self, pubs, **kwargs):
        calls.append(len(pubs))
        return original(self, pubs, **kwargs)

    monkeypatch.setattr(EstimatorV2, "run", counting)
    estimate(AerEstimator(), [(qfl.circuit, qfl.observables, qfl_values)] * 3)
    assert calls == [3]


def test_isa_circuit_on_156_qubits_is_compacted_with_laid_out_observables(qfl, qfl_values, monkeypatch):
    isa, _ = transpile_sweep(qfl.circuit, resolve_backend("fake_fez"), seeds=1)
    assert isa.num_qubits == 156
    compactions = []
    real = aer_module.compact_circuit
    monkeypatch.setattr(aer_module, "compact_circuit", lambda c: compactions.append(c) or real(c))
    est = AerEstimator()
    first = estimate(est, [(isa, laid(isa, qfl.observables), qfl_values)])[0]
    second = estimate(est, [(isa, laid(isa, qfl.observables), qfl_values[:2])])[0]
    assert np.abs(first.evs - exact(qfl.circuit, qfl.observables, qfl_values)).max() < 1e-9
    assert np.allclose(second.evs, first.evs[:2], atol=1e-12)
    physical = first.metadata["physical_qubits"]
    assert first.metadata["simulated_qubits"] == len(physical) == 4 and set(physical) <= set(range(156))
    assert len(compactions) == 1  # compacted once, reused for the second run


def test_isa_noisy_with_backend_calibration_contracts_towards_zero(chain):
    qc, isa, ops, values = chain
    ideal = exact(qc, ops, values)
    noisy = estimate(AerEstimator(noise=FEZ), [(isa, laid(isa, ops), values)])[0]
    assert noisy.metadata["method"] == "density_matrix" and noisy.metadata["simulated_qubits"] == 3
    assert noisy.metadata["readout_error"].startswith("exact")
    assert np.mean(np.abs(noisy.evs)) < np.mean(np.abs(ideal))
    assert np.abs(noisy.evs - ideal).max() > 1e-3
    sampled = estimate(AerEstimator(noise=FEZ, shots=4000, seed=2), [(isa, laid(isa, ops), values)])[0]
    assert sampled.metadata["readout_error"] == "sampled"
    assert np.all(np.abs(sampled.evs - noisy.evs) < 4.5 * sampled.stds)


def test_snapshot_noise_simulates_like_the_live_backend(chain, tmp_path):
    _, isa, ops, values = chain
    path = snapshot_backend("fake_fez", tmp_path)
    live = estimate(AerEstimator(noise=FEZ), [(isa, laid(isa, ops), values)])[0].evs
    frozen = estimate(AerEstimator(noise=BackendNoiseSpec(backend="fake_fez", snapshot=str(path))), [(isa, laid(isa, ops), values)])
    assert np.abs(frozen[0].evs - live).max() < 1e-12


def test_error_grows_with_the_noise_scale(chain):
    qc, isa, ops, values = chain
    ideal = exact(qc, ops, values)
    errors = []
    for scale in (0.0, 0.5, 1.0, 2.0, 4.0):
        res = estimate(AerEstimator(noise=FEZ.model_copy(update={"scale": scale})), [(isa, laid(isa, ops), values)])[0]
        errors.append(np.abs(res.evs - ideal).mean())
    assert errors[0] < 1e-12
    assert all(a < b for a, b in zip(errors, errors[1:])), errors


def test_shots_are_honest_samples(qfl, qfl_values):
    shots = 4000
    res = estimate(AerEstimator(shots=shots, seed=11), [(qfl.circuit, qfl.observables, qfl_values)])[0]
    ideal = exact(qfl.circuit, qfl.observables, qfl_values)
    assert res.evs.shape == res.stds.shape == (6, 4)
    assert np.all(np.abs(res.evs - ideal) < 4 * res.stds)
    assert np.abs(res.evs - ideal).max() > 1e-4  # sampled, not exact values plus nothing
    # single Pauli-string observables: the standard error of a mean of +-1 outcomes
    expected = np.sqrt(1 - ideal**2) / np.sqrt(shots)
    assert np.allclose(res.stds, expected, rtol=0.05, atol=1e-4)
    assert res.metadata["measurement_settings"] >= 1


def test_shot_estimates_converge_to_exact_noisy_values_with_readout_error(chain):
    """Exact noisy values apply readout errors to the observable; sampled ones measure through them."""
    qc, _, _, values = chain
    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.02, 1), ["ry"])
    noise.add_all_qubit_quantum_error(depolarizing_error(0.05, 2), ["cx"])
    noise.add_all_qubit_readout_error(ReadoutError([[0.95, 0.05], [0.2, 0.8]]))  # asymmetric
    ops = [SparsePauliOp("IIZ"), SparsePauliOp(["ZZI", "XIX"], [0.5, 0.5]), SparsePauliOp(["IYZ", "III"], [1, 0.3])]
    exact_noisy = estimate(AerEstimator(noise=noise), [(qc, ops, values)])[0]
    sampled = estimate(AerEstimator(noise=noise, shots=8000, seed=5), [(qc, ops, values)])[0]
    z = np.abs(sampled.evs - exact_noisy.evs) / sampled.stds
    assert z.max() < 4.5, z
    ro_free = NoiseModel()
    ro_free.add_all_qubit_quantum_error(depolarizing_error(0.02, 1), ["ry"])
    ro_free.add_all_qubit_quantum_error(depolarizing_error(0.05, 2), ["cx"])
    without = estimate(AerEstimator(noise=ro_free), [(qc, ops, values)])[0]
    assert np.abs(without.evs - exact_noisy.evs).max() > 0.05  # readout error really is in the exact values


def test_parametric_noise_on_isa_circuit(chain):
    qc, isa, ops, values = chain
    spec = ParametricNoiseSpec(depolarizing_1q=0.01, depolarizing_2q=0.05, t1_us=100, t2_us=100,
                               readout_error=0.02)
    res = estimate(AerEstimator(noise=spec), [(isa, laid(isa, ops), values)])[0]
    assert np.mean(np.abs(res.evs)) < np.mean(np.abs(exact(qc, ops, values)))


def test_gpu_request_without_gpu_warns_once_and_runs(qfl, qfl_values, monkeypatch):
    if "GPU" in aer_module.available_devices():
        pytest.skip("a GPU is available here")
    monkeypatch.setattr(aer_module, "_gpu_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = AerEstimator(device="GPU"), AerEstimator(device="GPU")
        res = estimate(first, [(qfl.circuit, qfl.observables, qfl_values)])[0]
    gpu_warnings = [w for w in caught if "GPU" in str(w.message)]
    assert len(gpu_warnings) == 1 and "\n" not in str(gpu_warnings[0].message)
    assert first.device == second.device == "CPU" and res.metadata["device"] == "CPU"
    assert np.abs(res.evs - exact(qfl.circuit, qfl.observables, qfl_values)).max() < 1e-10
    assert AerEstimator(device="auto").device == "CPU"


def test_bad_inputs_raise_execution_error(qfl, qfl_values, chain):
    est = AerEstimator()
    with pytest.raises(ExecutionError, match="parameters"):
        estimate(est, [(qfl.circuit, qfl.observables, qfl_values[:, :-1])])
    nan = qfl_values.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ExecutionError, match="NaN"):
        estimate(est, [(qfl.circuit, qfl.observables, nan)])
    with pytest.raises(ExecutionError, match="qubits"):
        estimate(est, [(qfl.circuit, [SparsePauliOp("ZZ")], qfl_values)])
    qc, isa, ops, values = chain
    with pytest.raises(ExecutionError, match="layout_observables"):  # logical observables for an ISA circuit
        estimate(est, [(isa, [SparsePauliOp("ZZZ")], values)])
    with pytest.raises(ExecutionError, match="transpile it for fake_fez"):
        estimate(AerEstimator(noise=FEZ), [(qc, ops, values)])
    with pytest.raises(ExecutionError, match="trajectories"):
        estimate(AerEstimator(noise=FEZ, method="statevector"), [(isa, laid(isa, ops), values)])
    full = aer_module.noise_model(BackendNoiseSpec(backend="fake_manila"))
    with pytest.raises(ExecutionError, match="pass the noise spec"):
        estimate(AerEstimator(noise=full), [(isa, laid(isa, ops), values)])
    for kwargs in ({"shots": 1}, {"shots": 2.5}, {"method": "stabilizer"}, {"device": "TPU"}):
        with pytest.raises(ExecutionError):
            AerEstimator(**kwargs)


def test_parameterized_u_gates_of_old_bases_run_and_match_bound_circuits():
    # fake_burlington's basis is u1/u2/u3/cx: Aer's runtime parameter binding refuses those gates when they hold
    # parameters, so such circuits are bound per experiment (same values as binding them by hand)
    import warnings

    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.execution import AerEstimator, estimate, layout_observables
    from qfl_qiskit.specs import QFLSpec
    from qfl_qiskit.specs.noise import BackendNoiseSpec
    from qfl_qiskit.transpile import resolve_backend, transpile_sweep

    warnings.filterwarnings("ignore")
    qnn = build_qfl(QFLSpec(modalities=2, features=1, degree=1))
    isa, _ = transpile_sweep(qnn.circuit, resolve_backend("fake_burlington"), seeds=1, strategy="preset")
    assert {"u1", "u2", "u3"} & set(isa.count_ops())
    values = np.random.default_rng(0).uniform(-np.pi, np.pi, (3, len(isa.parameters)))
    obs = layout_observables(isa, list(qnn.observables))
    est = AerEstimator(noise=BackendNoiseSpec(backend="fake_burlington"), shots=None, seed=0)
    batched = estimate(est, [(isa, obs, values)])[0].evs
    bound = [estimate(est, [(isa.assign_parameters(v), obs)])[0].evs for v in values]
    np.testing.assert_allclose(batched, np.array(bound), atol=1e-10)
