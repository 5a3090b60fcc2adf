from __future__ import annotations

import json

import numpy as np
import pytest
import qiskit.quantum_info as qi
from qiskit_aer.noise import NoiseModel
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qfl_qiskit.errors import BackendError, NoiseError, SpecError
from qfl_qiskit.noise import (
    SNAPSHOT_FORMAT,
    calibration_target,
    live_calibration,
    load_snapshot,
    noise_model,
    snapshot_backend,
)
from qfl_qiskit.specs import BackendNoiseSpec, ParametricNoiseSpec, load_noise_spec

from ..conftest import REPO

MANILA = BackendNoiseSpec(backend="fake_manila")


def quantum_error(model, name, qubits):
    return model._local_quantum_errors[name][tuple(qubits)]


def readout_matrix(model, qubit):
    return np.asarray(model._local_readout_errors[(qubit,)].probabilities)


def infidelity(error):
    return 1.0 - qi.average_gate_fidelity(error)


def cal_error(name, qubits):
    rows = live_calibration("fake_manila")["instructions"][name]
    return next(r["error"] for r in rows if r["qubits"] == list(qubits))


# -- specs -------------------------------------------------------------------------------------------------------


def test_shipped_spec_files_load():
    backend = load_noise_spec(REPO / "noise_models/fake_torino.toml")
    assert isinstance(backend, BackendNoiseSpec) and backend.backend == "fake_torino" and backend.scale == 1.0
    param = load_noise_spec(REPO / "noise_models/parametric_default.toml")
    assert isinstance(param, ParametricNoiseSpec) and param.t2_us <= 2 * param.t1_us
    assert "rz" not in param.gates_1q  # virtual Z stays noiseless
    shipped = sorted((REPO / "noise_models").glob("fake_torino_*.json"))
    if shipped:  # the dated snapshot shipped beside the spec rebuilds a model for any qubit subset
        spec = backend.model_copy(update={"snapshot": str(shipped[-1])})
        assert load_snapshot(shipped[-1])["num_qubits"] == 133
        assert noise_model(spec, qubits=[0, 1, 15]).noise_qubits == [0, 1, 2]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('kind = "parametric"\ndepolarizing_1q = 0.01\ndepolarizing_2q = 0.02\ncolour = 1\n', "unknown key 'colour'"),
        ('kind = "parametric"\ndepolarizing_1q = 1.5\ndepolarizing_2q = 0.02\n', "depolarizing_1q"),
        ('kind = "parametric"\ndepolarizing_1q = 0.01\ndepolarizing_2q = 0.02\nt1_us = 50\nt2_us = 150\n',
         "2 * t1_us"),
        ('kind = "parametric"\ndepolarizing_1q = 0.01\ndepolarizing_2q = 0.02\nt2_us = 50\n', "needs t1_us"),
        ('kind = "parametric"\ndepolarizing_1q = 0.01\ndepolarizing_2q = 0.02\nreadout_error = 0.7\n',
         "readout_error"),
        ('kind = "backend"\nbackend = "fake_fez"\nscale = -1\n', "scale"),
        ('kind = "backend"\n', "missing required key 'backend'"),
        ('kind = "thermal"\n', "unknown kind 'thermal'"),
        ('backend = "fake_fez"\n', "missing key 'kind'"),
        ('kind = "backend"\nbackend = ', "not valid TOML"),
    ],
)
def test_bad_spec_files_give_one_line(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_noise_spec(path)
    message = str(info.value)
    assert needle in message and "\n" not in message and str(path) in message


# -- backend models ----------------------------------------------------------------------------------------------


def test_backend_model_is_aers_own_device_model_and_cached():
    model = noise_model(MANILA)
    assert model == NoiseModel.from_backend(FakeManilaV2())
    assert noise_model(MANILA) is model  # cached
    assert noise_model(MANILA, qubits=[0, 1]) is not model


def test_snapshot_round_trip_rebuilds_the_identical_model(tmp_path):
    path = snapshot_backend("fake_manila", tmp_path / "snaps")
    assert path.name == "fake_manila_2024-05-27.json"  # the calibration date, not today
    data = json.loads(path.read_text())
    assert data["format"] == SNAPSHOT_FORMAT and data["backend"] == "fake_manila" and data["num_qubits"] == 5
    assert data["calibration_time"].startswith("2024-05-27")
    assert {"qiskit", "qiskit-aer"} <= set(data["packages"])
    assert [0, 1] in data["coupling_map"] and len(data["qubits"]) == 5 and data["qubits"][0]["t1"] > 0
    assert {"cx", "sx", "measure"} <= set(data["instructions"])
    from_file = noise_model(BackendNoiseSpec(backend="fake_manila", snapshot=str(path)))
    assert from_file is not noise_model(MANILA)
    assert from_file == noise_model(MANILA) == NoiseModel.from_backend(FakeManilaV2())
    subset = noise_model(BackendNoiseSpec(backend="fake_manila", snapshot=str(path), scale=1.7), qubits=[2, 1])
    assert subset == noise_model(BackendNoiseSpec(backend="fake_manila", scale=1.7), qubits=[2, 1])


def test_snapshot_errors(tmp_path):
    path = snapshot_backend("fake_manila", tmp_path)
    with pytest.raises(NoiseError, match="snapshot of 'fake_manila', not of 'fake_lima'"):
        noise_model(BackendNoiseSpec(backend="fake_lima", snapshot=str(path)))
    with pytest.raises(NoiseError, match="not found"):
        noise_model(BackendNoiseSpec(backend="fake_manila", snapshot=str(tmp_path / "nope.json")))
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(NoiseError, match="not a calibration snapshot"):
        load_snapshot(bad)
    with pytest.raises(BackendError):
        snapshot_backend("fake_nowhere", tmp_path)


@pytest.mark.parametrize("scale", [0.5, 2.0, 3.0])
def test_scaling_multiplies_every_error_rate(scale):
    base, scaled = noise_model(MANILA), noise_model(BackendNoiseSpec(backend="fake_manila", scale=scale))
    # readout: off-diagonals times lambda
    for q in range(5):
        ro, ro_scaled = readout_matrix(base, q), readout_matrix(scaled, q)
        assert ro_scaled[0, 1] == pytest.approx(scale * ro[0, 1], rel=1e-12)
        assert ro_scaled[1, 0] == pytest.approx(scale * ro[1, 0], rel=1e-12)
    # 2q gates: Aer gives depolarizing + relaxation the average infidelity e of the gate, or relaxation alone when
    # that is already larger than e; either way the effect scales with lambda
    matched = 0
    for qubits in [(0, 1), (1, 0), (1, 2), (2, 3), (3, 4)]:
        e, before = cal_error("cx", qubits), infidelity(quantum_error(base, "cx", qubits))
        after = infidelity(quantum_error(scaled, "cx", qubits))
        if before == pytest.approx(e, rel=1e-9):
            matched += 1
            assert after == pytest.approx(scale * e, rel=1e-9)
        else:
            assert before > e and after / before == pytest.approx(scale, rel=0.05)
    assert matched >= 2
    # relaxation alone (reset carries no gate error): T1, T2 / lambda makes its infidelity ~lambda times larger
    relax = infidelity(quantum_error(base, "reset", (0,)))
    relax_scaled = infidelity(quantum_error(scaled, "reset", (0,)))
    assert relax_scaled / relax == pytest.approx(scale, rel=0.05)
    target = calibration_target(live_calibration("fake_manila"), scale=scale)
    cal = live_calibration("fake_manila")["qubits"][3]
    assert target.qubit_properties[3].t1 == pytest.approx(cal["t1"] / scale)
    assert target.qubit_properties[3].t2 == pytest.approx(cal["t2"] / scale)


def test_scale_zero_is_noiseless_and_large_scales_clip():
    assert noise_model(BackendNoiseSpec(backend="fake_manila", scale=0.0)) is None
    huge = noise_model(BackendNoiseSpec(backend="fake_manila", scale=1000.0))
    assert np.allclose(readout_matrix(huge, 0), 0.5)  # readout no longer depends on the state
    for qubits in [(0, 1), (2, 3)]:
        assert infidelity(quantum_error(huge, "cx", qubits)) <= 0.75 + 1e-9  # completely depolarizing at most
    assert infidelity(quantum_error(huge, "sx", (0,))) <= 0.5 + 1e-9


def test_qubit_subset_is_remapped_with_per_qubit_noise():
    full = noise_model(MANILA)
    sub = noise_model(MANILA, qubits=[3, 2])
    assert sub.noise_qubits == [0, 1]
    assert quantum_error(sub, "cx", (0, 1)) == quantum_error(full, "cx", (3, 2))
    assert quantum_error(sub, "cx", (1, 0)) == quantum_error(full, "cx", (2, 3))
    assert quantum_error(sub, "sx", (0,)) == quantum_error(full, "sx", (3,))
    assert quantum_error(sub, "sx", (0,)) != quantum_error(full, "sx", (0,))
    assert np.array_equal(readout_matrix(sub, 0), readout_matrix(full, 3))
    assert np.array_equal(readout_matrix(sub, 1), readout_matrix(full, 2))
    assert (0, 2) not in sub._local_readout_errors and "cx" in sub.noise_instructions


def test_qubit_subset_of_a_156_qubit_backend_is_small_and_fast():
    sub = noise_model(BackendNoiseSpec(backend="fake_fez"), qubits=[117, 124, 125, 126])
    assert sub.noise_qubits == [0, 1, 2, 3]
    fez = live_calibration("fake_fez")
    e = next(r["error"] for r in fez["instructions"]["cz"] if r["qubits"] == [124, 125])
    assert infidelity(quantum_error(sub, "cz", (1, 2))) == pytest.approx(e, rel=1e-6)


@pytest.mark.parametrize("qubits", [[0, 0], [7], []])
def test_bad_qubits(qubits):
    with pytest.raises(NoiseError):
        noise_model(MANILA, qubits=qubits)


# -- parametric models -------------------------------------------------------------------------------------------


def test_parametric_model_errors_and_scaling():
    spec = ParametricNoiseSpec(depolarizing_1q=0.01, depolarizing_2q=0.04, readout_error=0.03)
    model = noise_model(spec)
    assert {"sx", "ry", "cx", "cz", "measure"} <= set(model.noise_instructions)
    assert "rz" not in model.noise_instructions
    one = model._default_quantum_errors["ry"]
    two = model._default_quantum_errors["cz"]
    assert infidelity(one) == pytest.approx(0.01 / 2)  # depolarizing p on d=2: infidelity p (1 - 1/d)
    assert infidelity(two) == pytest.approx(0.04 * 3 / 4)
    ro = np.asarray(model._default_readout_error.probabilities)
    assert ro[0, 1] == pytest.approx(0.03) and ro[1, 0] == pytest.approx(0.03)
    doubled = noise_model(spec.model_copy(update={"scale": 2.0}))
    assert infidelity(doubled._default_quantum_errors["ry"]) == pytest.approx(0.01)
    assert np.asarray(doubled._default_readout_error.probabilities)[0, 1] == pytest.approx(0.06)
    clipped = noise_model(spec.model_copy(update={"scale": 500.0}))
    assert np.asarray(clipped._default_readout_error.probabilities)[0, 1] == pytest.approx(0.5)
    assert infidelity(clipped._default_quantum_errors["ry"]) == pytest.approx(0.5)  # p clipped at 1
    assert noise_model(spec.model_copy(update={"scale": 0.0})) is None
    assert noise_model(ParametricNoiseSpec(depolarizing_1q=0.0, depolarizing_2q=0.0)) is None


def test_parametric_thermal_relaxation_scales_with_rates():
    spec = ParametricNoiseSpec(depolarizing_1q=0.0, depolarizing_2q=0.0, t1_us=100.0, t2_us=80.0,
                               gate_time_1q_ns=50.0, gate_time_2q_ns=300.0)
    model = noise_model(spec)
    relax_1q = infidelity(model._default_quantum_errors["sx"])
    relax_2q = infidelity(model._default_quantum_errors["cx"])
    assert 0 < relax_1q < relax_2q  # longer gate, more relaxation
    faster = noise_model(spec.model_copy(update={"scale": 3.0}))
    assert infidelity(faster._default_quantum_errors["sx"]) / relax_1q == pytest.approx(3.0, rel=0.01)
    without_t2 = noise_model(spec.model_copy(update={"t2_us": None}))  # T2 = 2 T1: less dephasing
    assert infidelity(without_t2._default_quantum_errors["sx"]) < relax_1q
